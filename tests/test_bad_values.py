"""No NaN passes and none is written; tolerances a kind cannot mean are rejected where they enter."""

from __future__ import annotations

import math

import pytest

from pytest_accel.metrics import METRIC_KINDS, Metric
from pytest_accel.options import OPT_MISSING, OPT_REPORT, OPT_TOLERANCE, OPT_UPDATE
from pytest_accel.records import baseline_record
from pytest_accel.verdicts import Policy, compare
from tests.helpers import baseline_files, load_json

GATE = frozenset(METRIC_KINDS)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_fails_and_is_never_a_baseline(bad: float) -> None:
    stored = baseline_record(Metric("m.acc", 0.8, "", "accuracy", "higher"), 0.01)
    for policy in (Policy(GATE), Policy(GATE, update=True), Policy(GATE, record_missing=True)):
        for against in (stored, None):
            verdict = compare(Metric("m.acc", bad, "", "accuracy", "higher"), against, 0.01, "default", policy)
            assert verdict.status == "regression" and verdict.fails_test and not verdict.writes_baseline
            assert "not finite numbers" in verdict.detail


def test_a_nan_in_timing_samples_fails() -> None:
    metric = Metric("m.latency", 0.01, "s", "latency", "lower", samples=[0.01] * 19 + [math.nan])
    assert compare(metric, None, 0.05, "default", Policy(GATE)).status == "regression"


NAN_TEST = """
from pytest_accel.metrics import Metric

def test_accuracy(accel):
    accel.check(Metric("toy.accuracy", float("nan"), "", "accuracy", "higher"),
                Metric("toy.note", float("nan"), "", "info", "higher"))
"""


def test_nan_fails_the_test_writes_nothing_and_reports_null(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=NAN_TEST)
    result = pytester.runpytest(OPT_UPDATE, f"{OPT_REPORT}=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*toy.accuracy ?accuracy?: obtained nan*not finite numbers*"])
    assert baseline_files(pytester.path) == []
    [entry, note] = load_json(pytester.path / "r.json")["results"][0]["metrics"]
    assert entry["value"] is None and entry["verdict"] == "regression" and note["verdict"] == "info"


def test_a_stored_nan_is_a_one_line_error(accuracy_project: pytest.Pytester) -> None:
    accuracy_project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    [path] = baseline_files(accuracy_project.path)
    path.write_text(path.read_text().replace('"value": 0.9', '"value": NaN'))
    result = accuracy_project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*baseline file *test_accuracy.json is not valid JSON (NaN is not a number JSON "
                                 "allows*"])
    path.write_text(path.read_text().replace('"value": NaN', '"value": 1e999'))  # valid JSON, infinite
    result = accuracy_project.runpytest()
    result.stdout.fnmatch_lines(["*baseline file *test_accuracy.json holds the number inf, which JSON cannot; fix it, "
                                 "delete it, or re-record it with --accel-update-baselines"])


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("accuracy=5", "accuracy=5 is no tolerance for accuracy metrics: as a relative drop it must be below 1*"),
        ("throughput=1", "throughput=1 is no tolerance for throughput metrics*"),
        ("convergence=1.5",
         "convergence=1.5 is no tolerance for convergence metrics: as a p-value bound it must be below 1*"),
    ],
)
def test_meaningless_tolerances_are_rejected(pytester: pytest.Pytester, given: str, message: str) -> None:
    result = pytester.runpytest(f"{OPT_TOLERANCE}={given}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {OPT_TOLERANCE}: {message}"])


def test_lower_is_better_kinds_may_allow_more_than_double(accuracy_project: pytest.Pytester) -> None:
    assert accuracy_project.runpytest(f"{OPT_TOLERANCE}=latency=2", f"{OPT_TOLERANCE}=startup=3").ret == 0


def test_a_metric_name_tolerance_is_checked_against_its_kind(accuracy_project: pytest.Pytester) -> None:
    result = accuracy_project.runpytest(f"{OPT_TOLERANCE}=toy.accuracy=2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*pytest-accel: --accel-tolerance: toy.accuracy=2 is no tolerance for accuracy metrics*"]
    )
