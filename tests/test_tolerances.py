"""Tolerance precedence: marker > --accel-tolerance > ini accel_tolerance_<kind> > default; and their validation."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_MISSING, OPT_TOLERANCE
from tests.helpers import literal

MARKED_TEST = """
from pathlib import Path
import pytest
from pytest_accel.metrics import Metric

@pytest.mark.accel_tolerance({MARK})
def test_accuracy(accel):
    value = float(Path(__file__).with_name("value.txt").read_text())
    accel.check(Metric("toy.accuracy", value, "", "accuracy", "higher"))
"""


@pytest.fixture
def five_percent_worse(accuracy_project: pytest.Pytester) -> pytest.Pytester:
    """A project whose accuracy baseline is 0.90 and whose current value is 0.855 (-5%)."""
    accuracy_project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    accuracy_project.path.joinpath("value.txt").write_text("0.855")
    return accuracy_project


def _mark(project: pytest.Pytester, mark: str) -> None:
    project.path.joinpath("test_toy.py").write_text(MARKED_TEST.replace("{MARK}", mark))


def test_default_fails_a_five_percent_drop(five_percent_worse: pytest.Pytester) -> None:
    result = five_percent_worse.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tolerance 0.01 (default)*"])


def test_ini_beats_default(five_percent_worse: pytest.Pytester) -> None:
    five_percent_worse.makeini("[pytest]\naccel_tolerance_accuracy = 0.1\n")
    five_percent_worse.runpytest().assert_outcomes(passed=1)


def test_cli_beats_ini(five_percent_worse: pytest.Pytester) -> None:
    five_percent_worse.makeini("[pytest]\naccel_tolerance_accuracy = 0.1\n")
    result = five_percent_worse.runpytest(f"{OPT_TOLERANCE}=accuracy=0.02")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*tolerance 0.02 ({OPT_TOLERANCE})*"])


def test_metric_name_beats_kind_on_the_cli(five_percent_worse: pytest.Pytester) -> None:
    result = five_percent_worse.runpytest(f"{OPT_TOLERANCE}=accuracy=0.02", f"{OPT_TOLERANCE}=toy.accuracy=0.1")
    result.assert_outcomes(passed=1)


def test_marker_beats_cli(five_percent_worse: pytest.Pytester) -> None:
    _mark(five_percent_worse, "accuracy=0.1")
    five_percent_worse.runpytest(f"{OPT_TOLERANCE}=accuracy=0.02").assert_outcomes(passed=1)
    _mark(five_percent_worse, "accuracy=0.02")
    result = five_percent_worse.runpytest(f"{OPT_TOLERANCE}=accuracy=0.1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tolerance 0.02 (marker accel_tolerance)*"])


def test_marker_by_metric_name(five_percent_worse: pytest.Pytester) -> None:
    _mark(five_percent_worse, "{'toy.accuracy': 0.1}")
    five_percent_worse.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("latency=abc", "ERROR: --accel-tolerance: latency='abc' is not a number; expected a non-negative number*"),
        ("latency=-1", "ERROR: --accel-tolerance: latency='-1' must be a finite number >= 0"),
        ("latency", "ERROR: --accel-tolerance='latency': expected KEY=VALUE, e.g. latency=0.2"),
        ("latncy=0.1", "ERROR: --accel-tolerance=latncy=0.1: 'latncy' is neither a metric kind (accuracy, *) nor a "
                       "metric name (which contains a dot, e.g. matmul.latency)"),
    ],
)
def test_malformed_cli_tolerance(pytester: pytest.Pytester, value: str, message: str) -> None:
    result = pytester.runpytest(f"{OPT_TOLERANCE}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_malformed_ini_tolerance(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naccel_tolerance_latency = ten percent\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini accel_tolerance_latency: latency='ten percent' is not a number*"])


def test_malformed_marker_tolerance_fails_that_test(accuracy_project: pytest.Pytester) -> None:
    _mark(accuracy_project, "speed=0.1")
    result = accuracy_project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [literal("*pytest-accel: @pytest.mark.accel_tolerance on test_toy.py::test_accuracy[cpu]: 'speed' is neither "
                 "a metric kind*")]
    )
