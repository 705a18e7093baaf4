"""Baseline files no test uses are listed, and pruned on request (--accel-prune-baselines); files of tests that did
not run are not "unused"."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_MISSING, OPT_PRUNE
from tests.helpers import baseline_files

TWO_TESTS = """
from pytest_accel.metrics import Metric

def test_kept(accel):
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"))

def test_removed(accel):
    accel.check(Metric("toy.accuracy", 0.8, "", "accuracy", "higher"))
"""


def test_a_removed_test_leaves_a_listed_file_that_prune_deletes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=TWO_TESTS)
    pytester.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=2)
    assert len(baseline_files(pytester.path)) == 2

    pytester.makepyfile(test_toy=TWO_TESTS.replace("def test_removed", "def test_other"))
    result = pytester.runpytest(f"{OPT_MISSING}=record")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*1 baseline file(s) beside this run's were used by no test*--accel-prune-baselines*",
                                 "*baselines/cpu-*/toy/test_removed.json"])
    assert len(baseline_files(pytester.path)) == 3, "listing deletes nothing"

    result = pytester.runpytest("-k", "kept", OPT_PRUNE)  # a partial selection prunes nothing in that file
    result.assert_outcomes(passed=1)
    assert len(baseline_files(pytester.path)) == 3

    result = pytester.runpytest(OPT_PRUNE)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*1 unused baseline file(s) deleted (--accel-prune-baselines):",
                                 "*baselines/cpu-*/toy/test_removed.json"])
    assert [p.name for p in baseline_files(pytester.path)] == ["test_kept.json", "test_other.json"]


def test_files_of_tests_that_did_not_run_are_not_listed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=TWO_TESTS, test_other=TWO_TESTS)
    pytester.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=4)
    result = pytester.runpytest("test_toy.py", OPT_PRUNE)
    result.assert_outcomes(passed=2)
    assert len(baseline_files(pytester.path)) == 4  # test_other.py did not run: its files are not "unused"
    assert "used by no test" not in result.stdout.str()
