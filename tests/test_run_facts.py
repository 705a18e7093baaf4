"""What every report of a run shares is worked out once: the unused baseline files (one search on disk), the device
speed-ups are over and each speed-up (one pairing for the terminal, Markdown, scorecard and HTML), and the report
sections a metric is listed in (declared by its kind or its workload, never guessed from its summary)."""

from __future__ import annotations

import re

import pytest

from pytest_accel.options import OPT_DEVICE
from pytest_accel.report.facts import SpeedKey, SpeedRow, Speedups
from pytest_accel.session import AccelSession
from tests.helpers import load_json

LATENCY = SpeedKey("toy", "test_latency", "toy.latency")
RATE = SpeedKey("toy", "test_latency", "toy.throughput")


def test_speedups_are_over_the_first_device_asked_that_measured_speed() -> None:
    rows = [SpeedRow("cpu", LATENCY, 0.02, "lower"), SpeedRow("ort:cpu", LATENCY, 0.005, "lower"),
            SpeedRow("ort:cpu", RATE, 200.0, "higher"), SpeedRow("cpu", RATE, 50.0, "higher"),
            SpeedRow("ov:CPU", SpeedKey("toy", "test_other", "toy.latency"), 0.01, "lower")]
    speedups = Speedups.pair(rows, ["gone", "cpu", "ort:cpu", "ov:CPU"])
    assert speedups.reference == "cpu"  # "gone" was asked for first but measured nothing
    assert speedups.over("ort:cpu", LATENCY) == pytest.approx(4.0)  # times inverted
    assert speedups.over("ort:cpu", RATE) == pytest.approx(4.0)  # rates as they are
    assert not speedups.paired("cpu", LATENCY)  # the reference is not sped up over itself
    assert not speedups.paired("ov:CPU", SpeedKey("toy", "test_other", "toy.latency"))  # the reference lacks it
    reordered = Speedups.pair(rows, ["ort:cpu", "cpu"])
    assert reordered.reference == "ort:cpu" and reordered.over("cpu", LATENCY) == pytest.approx(0.25)
    broken = Speedups.pair([SpeedRow("cpu", LATENCY, 0.02, "lower"), SpeedRow("ort:cpu", LATENCY, None, "lower")],
                           ["cpu", "ort:cpu"])
    assert broken.paired("ort:cpu", LATENCY) and broken.over("ort:cpu", LATENCY) is None


SUITE = """
import time
from pytest_accel.metrics import Metric

def test_latency(device, accel):
    pause = 0.002 if device.spec == "cpu" else 0.0004
    accel.check(*accel.measure_latency("toy", lambda: time.sleep(pause)).metrics())

def test_sections(device, accel):
    ops = {"compute_ops": {"fp32": 10}}
    accel.check(Metric("toy.declared", 0.0, "", "info", "lower", summary=dict(ops), sections=("precision",)),
                Metric("toy.undeclared", 0.0, "", "info", "lower", summary=dict(ops)))
"""


def test_every_report_shows_one_pairing_and_one_unused_search(pytester: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The run asks for ort:cpu first: every report's speed-ups are over it, with the same factor; the unused
    baseline files are searched once and listed alike by the terminal and the JSON report."""
    pytester.makepyfile(test_toy=SUITE)
    stale = pytester.path / "baselines"
    calls: list[int] = []
    original = AccelSession.unused_baseline_files

    def counted(self: AccelSession) -> list:
        calls.append(1)
        return original(self)

    monkeypatch.setattr(AccelSession, "unused_baseline_files", counted)
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = [f"{OPT_DEVICE}=ort:cpu", f"{OPT_DEVICE}=cpu", "--accel-profile=quick", "--benchmark-disable",
            f"--accel-baseline-dir={stale}", "--accel-scorecard=cards", "--accel-report=r.json",
            "--accel-summary=full", "--accel-gate=accuracy", "--accel-missing-baseline=record"]
    assert pytester.runpytest(*args).ret == 0
    [ort_folder] = stale.glob("ort-cpu-*")
    (ort_folder / "toy" / "test_removed.json").write_bytes((ort_folder / "toy" / "test_latency.json").read_bytes())
    calls.clear()
    result = pytester.runpytest(*args[:-1])
    assert result.ret == 0 and len(calls) == 1

    report = load_json(pytester.path / "r.json")
    assert [p.rpartition("/")[2] for p in report["baselines_unused"]] == ["test_removed.json"]
    result.stdout.fnmatch_lines(["1 baseline file(s) beside this run's belong to no test it collected*",
                                 "*test_removed.json"])

    result.stdout.fnmatch_lines(["side by side (speed-up over ort:cpu *"])
    row = r"toy::test_latency\s+toy\.latency\s+\S+ [mu]s\s+\S+ [mu]s \((\d+\.\d\d)x\)"
    terminal = re.search(row, result.stdout.str())
    assert terminal is not None, result.stdout.str()
    factor = terminal.group(1)
    assert float(factor) < 1, "cpu sleeps longer than ort:cpu, so it is slower than the reference"
    markdown = summary.read_text()
    assert f"({factor}x)" in markdown and "speed-up over ort:cpu" in markdown
    [cpu_card] = (pytester.path / "cards").glob("cpu-*.json")
    speed = {row["metric"]: row for row in load_json(cpu_card)["speed"]}
    assert speed["toy.latency"]["speedup_over"] == "ort:cpu" and f"{speed['toy.latency']['speedup']:.2f}" == factor

    rows = [SpeedRow(r["device"], SpeedKey(r["suite"], r["test"], m["name"]), m["value"], m["direction"])
            for r in report["results"] for m in r["metrics"] if m["kind"] in ("latency", "throughput")]
    from_report = Speedups.pair(rows, report["options"]["devices"])
    assert from_report.reference == "ort:cpu"
    assert f"{from_report.over('cpu', SpeedKey('toy', 'test_latency', 'toy.latency')):.2f}" == factor

    precision = {row["metric"] for row in load_json(cpu_card)["precision"]}
    assert precision == {"toy.declared"}, "an undeclared summary key must not place a metric"
