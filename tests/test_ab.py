"""pytest-accel ab: the same tests run by two stacks in interleaved fresh processes; B/A per timed metric with its
interval, accuracy and parity compared, the documents written and an exit code that gates.

The toy project runs on a virtual clock (tests/conftest.py's CLOCKED_CONFTEST): each round takes what it is asked
to take, with 2% of jitter, so the verdicts follow the injected change and not how busy the machine is."""

from __future__ import annotations

import json

import pytest

from pytest_accel.ab import AbError, parse_env
from pytest_accel.cli import main
from tests.conftest import CLOCKED_CONFTEST

PROJECT = """
import os
from pytest_accel.metrics import Metric

def test_speed(accel, spin):
    factor = float(os.environ.get("TOY_FACTOR", "1"))
    accel.check(*accel.measure_latency("toy.same", lambda: spin(0.002)).metrics(),
                *accel.measure_latency("toy.changed", lambda: spin(0.002 * factor)).metrics())

def test_error(accel):
    accel.check(Metric("toy.error", float(os.environ.get("TOY_ERROR", "0.001")), "", "parity", "lower", limit=0.01))
"""


@pytest.mark.workload  # fresh pytest processes
def test_b_slower_and_outside_a_bound_fails_while_the_unchanged_metric_shows_no_difference(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makepyfile(test_toy=PROJECT)
    pytester.makeconftest(CLOCKED_CONFTEST)
    pytester.makeini("[pytest]\naddopts = --device=spin --accel-profile=quick --benchmark-disable\n")
    out = pytester.path / "ab-out"
    # 8 pairs: the fewest with which a signed-rank test can flag 3 slower metrics of 6 at a family-wise 5%
    status = main(["ab", "--pairs", "8", "--alpha", "0.05", "--b-env", "TOY_FACTOR=1.15",
                   "--b-env", "TOY_ERROR=0.02",
                   "--threshold", "0.05", "--out", str(out), "--", str(pytester.path), f"--rootdir={pytester.path}"])
    printed = capsys.readouterr()
    assert status == 1, printed.out + printed.err
    document = json.loads((out / "ab.json").read_text())
    speed = {f["name"]: f for f in document["speed"] if f["name"].endswith(".latency")}
    assert speed["toy.changed.latency"]["verdict"] == "slower" and speed["toy.changed.latency"]["fails"]
    assert speed["toy.changed.latency"]["low"] > 1.05 and speed["toy.changed.latency"]["ratio"] == pytest.approx(
        1.15, rel=0.03)
    assert speed["toy.same.latency"]["verdict"] == "no difference detected" and not speed["toy.same.latency"]["fails"]
    [error] = document["quality"]
    assert error["verdict"] == "outside its bound in 8 of 8 runs of B" and error["fails"]
    assert len(list((out / "runs").glob("run-*-A.json"))) == len(list((out / "runs").glob("run-*-B.json"))) == 8
    assert sorted(p.name[:7] for p in (out / "runs").glob("*.json"))[:4] == ["run-000", "run-001", "run-002",
                                                                            "run-003"]
    assert "| device | test | metric |" in (out / "ab.md").read_text()
    assert "toy.changed.latency" in (out / "ab.html").read_text()
    assert "slower by 1" in printed.out and "B fails the comparison" in printed.out
    # one interpreter, two sets of variables: no version differs, and the comparison says so
    assert document["differences"] == [] and "what differs: nothing the runs' reports name" in printed.out
    assert not (pytester.path / "baselines").exists(), "an A/B writes no baselines into the project"
    # judged again from the same runs at another threshold: B's 15% passes a 20% threshold, its error still fails
    (out / "ab.json").unlink()
    assert main(["ab", "--pairs", "8", "--alpha", "0.05", "--threshold", "0.2", "--out", str(out), "--reuse"]) == 1
    again = json.loads((out / "ab.json").read_text())
    assert not any(f["fails"] for f in again["speed"]) and again["quality"][0]["fails"]


def test_bad_arguments_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ab", "--pairs", "2", "--", "tests"]) == 2
    assert "--pairs 2: at least 3 pairs are needed" in capsys.readouterr().err
    assert main(["ab", "--pairs", "3"]) == 2
    assert "no tests given" in capsys.readouterr().err
    assert main(["ab", "--a-python", "/no/such/python", "--", "tests"]) == 2
    assert "interpreter '/no/such/python' does not run" in capsys.readouterr().err
    assert main(["ab", "--alpha", "2", "--", "tests"]) == 2
    assert "--alpha 2.0 must lie in (0, 1)" in capsys.readouterr().err
    assert main(["ab", "--out", "/proc/no-such-folder", "--", "tests"]) == 2
    err = capsys.readouterr().err
    assert "--out /proc/no-such-folder: not writable" in err and err.count("\n") == 1, err
    with pytest.raises(AbError, match="--b-env 'NOPE': expected NAME=VALUE"):
        parse_env(["NOPE"], "--b-env")


def test_what_differs_between_the_stacks_is_read_from_their_reports(tmp_path) -> None:
    from pytest_accel.ab import RunOutcome, stack_differences

    def report(name: str, onnxruntime: str, extra: dict) -> RunOutcome:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({
            "schema": "pytest-accel/report", "schema_version": 1, "results": [],
            "software": {"python": "3.11.7", "platform": name, "onnxruntime": onnxruntime, **extra},
            "devices": {"ort:cpu": {"runtime": {"onnxruntime": onnxruntime}, "driver_version": None}}}))
        return RunOutcome(0, name, 0, 1.0, path)

    outcomes = [report("A", "1.31.1", {}), report("B", "1.32.0", {"openvino": "2026.4.1"})]
    assert stack_differences(outcomes) == ("onnxruntime 1.31.1 -> 1.32.0", "openvino (none) -> 2026.4.1")
