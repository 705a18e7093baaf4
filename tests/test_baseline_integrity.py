"""Baselines only from valid runs, metrics that disappear are noticed, damaged-but-valid JSON is named in one line,
and a run with nothing gated says so."""

from __future__ import annotations

import json

import pytest

from pytest_accel.options import OPT_MISSING, OPT_UPDATE
from tests.helpers import baseline_files, load_json

BOUND_AND_SPEED = """
from pathlib import Path
from pytest_accel.metrics import Metric

def test_run(accel):
    error = float(Path(__file__).with_name("error.txt").read_text())
    accel.check(Metric("toy.error", error, "", "parity", "lower", limit=0.1),
                Metric("toy.memory", 100.0, "B", "memory", "lower"))
"""


@pytest.mark.parametrize("mode", [OPT_UPDATE, f"{OPT_MISSING}=record"])
def test_a_failing_bound_writes_no_baseline(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_toy=BOUND_AND_SPEED)
    pytester.path.joinpath("error.txt").write_text("0.5")
    result = pytester.runpytest(mode)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no baseline written: a failing bound or reference check invalidates this run*"])
    assert baseline_files(pytester.path) == []
    pytester.path.joinpath("error.txt").write_text("0.01")
    pytester.runpytest(mode).assert_outcomes(passed=1)
    [path] = baseline_files(pytester.path)
    assert "toy.memory" in load_json(path)["metrics"]


TWO_METRICS = """
from pytest_accel.metrics import Metric

def test_accuracy(accel):
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"),
                Metric("toy.recall", 0.8, "", "accuracy", "higher"))
"""
ONE_METRIC = """
from pytest_accel.metrics import Metric

def test_accuracy(accel):
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"))
"""


def test_a_metric_that_disappears_is_reported_and_fails_under_missing_fail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=TWO_METRICS)
    pytester.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    pytester.makepyfile(test_toy=ONE_METRIC)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["1 baseline metric(s) no longer produced by their tests:",
                                 "  baselines/cpu-*/toy/test_accuracy.json: toy.recall"])
    result = pytester.runpytest(f"{OPT_MISSING}=fail")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_accuracy.json holds metric(s) this test no longer produces: toy.recall*"])


def run_with_stored_latency_field(project: pytest.Pytester, field: str, value: object) -> pytest.RunResult:
    """Record the toy latency baseline, set one field of its stored metric, run again: the run must fail."""
    project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    [path] = baseline_files(project.path)
    document = json.loads(path.read_text())
    document["metrics"]["toy.latency"][field] = value
    path.write_text(json.dumps(document))
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    return result


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("samples", [0.0, 0.0], "field 'samples[[]0[]]' is 0.0; expected a positive number of seconds*"),
        ("probe_samples", ["0.001", "0.001"], "field 'probe_samples[[]0[]]' is '0.001'; expected a positive number*"),
        ("probe_samples", [0.0, 0.0], "field 'probe_samples[[]0[]]' is 0.0; expected a positive number*"),
        ("value", -0.002, "field 'value' is -0.002; expected a positive number * (a measured latency is never "
                          "negative)"),
        ("history", [{"value": 0}], "field 'history[[]0[]].value' is 0; expected a positive number*"),
        ("tolerance", "0.1", "field 'tolerance' is '0.1'; expected null or a number from 0*"),
    ],
)
def test_damaged_but_valid_json_is_named(clocked_latency_project: pytest.Pytester, field: str, value: object,
                                         message: str) -> None:
    result = run_with_stored_latency_field(clocked_latency_project, field, value)
    result.stdout.fnmatch_lines([f"*baseline file *test_latency.json metric 'toy.latency' {message}; fix it*"])
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize(("field", "stored"), [("kind", "throughput"), ("unit", "ms"), ("direction", "higher")])
def test_a_stored_metric_of_another_kind_unit_or_direction_is_no_baseline(
    clocked_latency_project: pytest.Pytester, field: str, stored: str
) -> None:
    result = run_with_stored_latency_field(clocked_latency_project, field, stored)
    result.stdout.fnmatch_lines([f"*metric 'toy.latency' is stored with {field} '{stored}' but measured with {field}*"])


def test_gated_metrics_without_baseline_are_said_prominently(accuracy_project: pytest.Pytester) -> None:
    result = accuracy_project.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["!! 1 gated metric(s) had no baseline, so nothing gated them, on device key(s) "
                                 "cpu-* (1)*", "*--accel-missing-baseline=fail*"])  # wrapped at 160
