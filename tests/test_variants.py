"""Baselines kept apart per input through the ``accel_variant`` fixture; without one, the default file."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_MISSING
from tests.helpers import baseline_files

VARIANT_TEST = """
import pytest
from pytest_accel.metrics import Metric

@pytest.fixture
def accel_variant():
    return "{variant}"

def test_accuracy(accel):
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"))
"""


def test_accel_variant_names_the_baseline_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=VARIANT_TEST.format(variant="other-model"))
    pytester.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    [path] = baseline_files(pytester.path)
    assert path.name == "test_accuracy@other-model.json"  # as the summary shows it

    pytester.makepyfile(test_toy=VARIANT_TEST.format(variant="third-model"))
    result = pytester.runpytest(f"{OPT_MISSING}=fail")
    result.assert_outcomes(failed=1)  # another variant: the first file is not its baseline
    result.stdout.fnmatch_lines(["*baseline: baselines/cpu-*/toy/test_accuracy@third-model.json",
                                 "  toy::test_accuracy@third-model", "    accuracy * 0.9 ·"])


def test_without_a_variant_the_default_file_is_used(accuracy_project: pytest.Pytester) -> None:
    accuracy_project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    assert [p.name for p in baseline_files(accuracy_project.path)] == ["test_accuracy.json"]
