"""The gate-check calibration: each run of a batch is judged against the other unchanged runs, giving the false-alarm
and detection rates per metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pytest_accel.gatecheck_runner import Run, judge, lines, summarise


def _report(folder: Path, name: str, value: float, probe: float = 0.001) -> Path:
    entry = {"name": "w.latency", "kind": "latency", "unit": "s", "direction": "lower", "value": value,
             "tolerance": 0.05, "run": {"value": value, "probe": probe, "spread": 0.05}}
    path = folder / name
    path.write_text(json.dumps({"schema": "pytest-accel/report", "schema_version": 1, "results": [
        {"nodeid": "t.py::test_w[cpu]", "device": "cpu", "suite": "t", "test": "test_w", "metrics": [entry]}]}))
    return path


def test_gate_check_judges_each_run_against_the_other_unchanged_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    runs = []
    for index in range(8):
        base = 0.010 * (1 + 0.01 * rng.standard_normal())
        runs.append(Run(0.0, index, _report(tmp_path, f"u{index}.json", base), 0, 1.0))
        runs.append(Run(0.2, index, _report(tmp_path, f"s{index}.json", base * 1.2), 0, 1.0))
    summary = summarise(runs, judge(runs, alpha=0.01))
    assert summary["run_false_alarm_rate"] == 0 and summary["detection_rate"] == {"0.2": 1.0}
    [metric] = summary["metrics"].values()
    assert metric["smallest_slowdown_caught_95"] == 0.2 and metric["judged_unchanged_runs"] == 8
    assert 0 < metric["run_cv"] < 0.03


def test_means_of_runs_catch_what_single_runs_miss_and_say_how_many_runs_a_runner_needs(tmp_path: Path) -> None:
    """Process-to-process luck of 4% (a shared runner's): a 10% slowdown is caught in only some single runs, but in
    most means of 5 runs, whose limit is t * s * sqrt(1/5 + 1/n) instead of t * s * sqrt(1 + 1/n)."""
    rng = np.random.default_rng(3)
    runs = []
    for index in range(12):
        runs.append(Run(0.0, index, _report(tmp_path, f"u{index}.json", 0.010 * np.exp(0.04 * rng.standard_normal())),
                        0, 1.0))
        runs.append(Run(0.1, index, _report(tmp_path, f"s{index}.json",
                                            0.011 * np.exp(0.04 * rng.standard_normal())), 0, 1.0))
    summary = summarise(runs, judge(runs, alpha=0.01), 0.01)
    single = summary["detection_rate"]["0.1"]
    means = summary["mean_of_runs"]
    assert set(means) == {"2", "3", "5"}
    assert means["5"]["detection_rate"]["0.1"] >= 0.9 > single, (single, means)
    assert all(figures["false_alarm_rate"] == 0 for figures in means.values()), means
    [metric] = summary["metrics"].values()
    assert metric["runs_for_10_percent"] is not None and 2 <= metric["runs_for_10_percent"] <= 8, metric
    assert any(line.startswith("mean of 5 runs (pytest-accel repeat --runs 5): false alarms 0%")
               for line in lines(summary))
