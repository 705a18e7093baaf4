"""pytest-accel report over many reports (a fleet): every device of every machine side by side, speed-ups over a
reference system, results of other suite versions or inputs kept apart and said so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_accel.cli import main

#: three device models (three device keys) on the virtual clock; SPEED_<NAME> scales a device's work
FLEET_CONFTEST = """
import os
import random
import time

import pytest

from pytest_accel.devices import Backend, Device, DeviceInfo

_real_perf_counter = time.perf_counter
_now = [1000.0]
_jitter = random.Random(0)
MODELS = {"alpha": "Alpha 100", "beta": "Beta 200", "gamma": "Gamma 300"}


def pytest_configure(config):
    time.perf_counter = lambda: _now[0]


def pytest_unconfigure(config):
    time.perf_counter = _real_perf_counter


@pytest.fixture
def spin(device):
    factor = float(os.environ.get("SPEED_" + device.spec.upper(), "1"))

    def run(seconds):
        _now[0] += seconds * factor * (1 + 0.02 * (2 * _jitter.random() - 1))

    return run


class ModelDevice(Device):
    runtime = "python"

    def describe(self):
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="acme", model=MODELS[self.spec])


class ModelBackend(Backend):
    name = "models"
    grammar = "alpha|beta|gamma"

    def parse(self, spec):
        return spec if spec in MODELS else None

    def discover(self):
        return list(MODELS)

    def open(self, spec):
        return ModelDevice(spec, self.name)


def pytest_accel_register_backends(registry):
    registry.register(ModelBackend())
"""

FLEET_TEST = """
import pytest
from pytest_accel.metrics import Metric

@pytest.mark.parametrize("dtype", ["fp32"])
def test_model(accel, spin, dtype):
    accel.check(*accel.measure_latency("toy.model", lambda: spin(0.004)).metrics(),
                Metric("toy.map", 0.834, "", "accuracy", "higher"),
                Metric("toy.error", 1e-6, "", "parity", "lower", limit=1e-3))
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, machine: str, device: str,
         name: str) -> Path:
    monkeypatch.setenv("PYTEST_ACCEL_MACHINE", machine)
    report = pytester.path / "reports" / name / f"{name}.json"
    result = pytester.runpytest(f"--device={device}", "--accel-profile=quick", "-p", "no:benchmark",
                                f"--accel-report={report}", "-p", "no:randomly",
                                f"--accel-scorecard={report.parent}")
    result.assert_outcomes(passed=1)
    return report


@pytest.fixture
def three_machines(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    pytester.makeconftest(FLEET_CONFTEST)
    pytester.makepyfile(test_fleet=FLEET_TEST)
    monkeypatch.setenv("SPEED_BETA", "0.5")  # twice as fast as alpha
    monkeypatch.setenv("SPEED_GAMMA", "2")  # half as fast
    return [_run(pytester, monkeypatch, "runner-cpu", "alpha", "alpha"),
            _run(pytester, monkeypatch, "runner-gpu", "beta", "beta"),
            _run(pytester, monkeypatch, "runner-npu", "gamma", "gamma")]


def _fleet(out: Path) -> dict:
    return json.loads((out / "fleet.json").read_text())


@pytest.mark.workload  # three pytest runs in process, each timing a second on the virtual clock
def test_three_device_keys_side_by_side_with_speedups_over_the_chosen_reference(
        pytester: pytest.Pytester, three_machines: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = pytester.path / "fleet"
    assert main(["report", *map(str, three_machines), "-o", str(out), "--reference", "beta"]) == 0
    assert "3 report(s), 3 systems on 3 machine(s); speed-ups over runner-gpu/beta" in capsys.readouterr().out
    fleet = _fleet(out)
    assert [s["label"] for s in fleet["systems"]] == ["runner-cpu/alpha", "runner-gpu/beta", "runner-npu/gamma"]
    assert len({s["key"] for s in fleet["systems"]}) == 3
    latency = next(r for r in fleet["rows"] if r["metric"] == "toy.model.latency")
    speedups = {label: value["speedup"] for label, value in latency["values"].items()}
    assert speedups["runner-gpu/beta"] == 1.0
    assert speedups["runner-cpu/alpha"] == pytest.approx(0.5, rel=0.05)
    assert speedups["runner-npu/gamma"] == pytest.approx(0.25, rel=0.05)
    accuracy = next(r for r in fleet["rows"] if r["metric"] == "toy.map")
    assert {v["value"] for v in accuracy["values"].values()} == {0.834}
    assert all("speedup" not in v for v in accuracy["values"].values())  # accuracy is no speed
    assert fleet["kept_apart"] == []
    assert fleet["systems"][0]["scorecard"] is None  # the reports alone: no scorecards named
    markdown = (out / "fleet.md").read_text()
    assert "| fleet::test_model-fp32 | toy.model.latency |" in markdown
    assert "(1.00x)" in markdown and "(0.50x)" in markdown
    page = (out / "fleet.html").read_text()
    for section in ("Machines and devices", "Side by side", "runner-npu/gamma", "<svg"):
        assert section in page


@pytest.mark.workload
def test_another_suite_version_or_other_inputs_are_kept_apart_and_said_so(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, three_machines: list[Path]) -> None:
    older = json.loads(three_machines[2].read_text())
    older["pytest_accel"] = "0.0.9"
    three_machines[2].write_text(json.dumps(older))
    other_input = json.loads(three_machines[1].read_text())
    for result in other_input["results"]:  # another model on the same dtype, as a run with --yolo-model names it
        result["test"] = "test_model-fp32@mymodel-3f2a_data-1c9e_640"
    three_machines[1].write_text(json.dumps(other_input))
    out = pytester.path / "fleet"
    assert main(["report", str(pytester.path / "reports"), "-o", str(out)]) == 0
    fleet = _fleet(out)
    tests = {row["test"] for row in fleet["rows"]}
    assert tests == {"test_model-fp32 (pytest-accel 0.1.0)", "test_model-fp32 (pytest-accel 0.0.9)",
                     "test_model-fp32@mymodel-3f2a_data-1c9e_640"}
    assert any("ran under pytest-accel 0.0.9, 0.1.0" in note for note in fleet["kept_apart"])
    assert any("fleet::test_model (fp32) ran on different inputs" in note for note in fleet["kept_apart"])
    latency = [r for r in fleet["rows"] if r["metric"] == "toy.model.latency"]
    assert all(len(row["values"]) == 1 for row in latency)  # nothing compared across what differs
    assert "Kept apart" in (out / "fleet.md").read_text()


@pytest.mark.workload
def test_a_folder_lists_what_is_not_a_report_and_the_same_device_twice_stays_two_systems(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, three_machines: list[Path]) -> None:
    (pytester.path / "reports" / "notes.json").write_text('{"not": "a report"}')
    again = _run(pytester, monkeypatch, "runner-cpu", "alpha", "alpha-again")
    out = pytester.path / "fleet"
    assert main(["report", str(pytester.path / "reports"), "-o", str(out)]) == 0
    fleet = _fleet(out)
    assert sorted(s["label"] for s in fleet["systems"]) == ["runner-cpu/alpha", "runner-cpu/alpha#2",
                                                            "runner-gpu/beta", "runner-npu/gamma"]
    assert any("notes.json" in note for note in fleet["skipped"])
    assert again.exists()
    # each run's scorecard, found beside its report, on its system
    cards = {s["label"]: s["scorecard"] for s in fleet["systems"]}
    assert cards["runner-gpu/beta"] == {"passed": 1, "failed": 0, "xfailed": 0, "xpassed": 0, "unsupported": 0,
                                        "skipped": 0}
    assert "| 1 passed, 0 failed |" in (out / "fleet.md").read_text()


def test_bad_input_is_one_line(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    empty = pytester.mkdir("empty")
    (empty / "x.json").write_text("[]")
    assert main(["report", str(empty), "-o", str(pytester.path / "out")]) == 2
    assert f"{empty}: no pytest-accel report in this folder (1 JSON file(s) read)" in capsys.readouterr().err
    not_report = pytester.path / "a.json"
    not_report.write_text("{}")
    assert main(["report", str(not_report), str(not_report), "-o", str(pytester.path / "out")]) == 2
    assert "not a pytest-accel report" in capsys.readouterr().err


@pytest.mark.workload
def test_a_reference_that_names_no_system_lists_the_systems(
        pytester: pytest.Pytester, three_machines: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *map(str, three_machines), "-o", str(pytester.path / "f"), "--reference", "tpu"]) == 2
    assert ("--reference 'tpu' names no system; expected one of: runner-cpu/alpha, runner-gpu/beta, "
            "runner-npu/gamma") in capsys.readouterr().err
