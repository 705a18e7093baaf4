"""The gate-check calibration: each run of a batch is judged against the other unchanged runs, giving the false-alarm
and detection rates per metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pytest_accel.gatecheck_runner import Run, judge, summarise


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
