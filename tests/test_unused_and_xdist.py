"""Baseline files no test uses are listed (and pruned on request); pytest-xdist workers' results reach the
controller's summary, report and baselines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_accel.options import OPT_DEVICE, OPT_MISSING, OPT_PRUNE, OPT_REPORT
from tests.helpers import baseline_files, load_json

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


MATMUL_SUITE = Path(__file__).parents[1] / "suites" / "test_matmul.py"


@pytest.mark.workload
def test_the_matmul_suite_under_xdist_reports_every_result(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    shutil.copy(MATMUL_SUITE, pytester.path / "test_matmul.py")
    report = tmp_path / "report.json"
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", f"{OPT_DEVICE}=cpu",
                                           f"{OPT_DEVICE}=ort:cpu", f"{OPT_MISSING}=record", f"{OPT_REPORT}={report}")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 4 and "failed" not in outcomes, result.stdout.str()
    document = load_json(report)
    nodeids = {r["nodeid"] for r in document["results"]}
    assert len(nodeids) == outcomes["passed"], nodeids
    assert {r["device"] for r in document["results"]} == {"cpu", "ort:cpu"}
    written = {Path(w["path"]) for w in document["baselines_written"]}
    assert written == set(baseline_files(pytester.path)) and len(written) == 2  # latency; parity is a bound
    # the workers finish in either order; the matrix's columns keep the order the devices were given in
    result.stdout.fnmatch_lines(["  metric * cpu * ort:cpu", "  matmul::test_matmul_parity",
                                 "    max_rel_error  *e-* *e-*"])
    result.stdout.fnmatch_lines([f"{len(written)} baseline file(s) written ({OPT_MISSING}=record):"])

    again = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", f"{OPT_DEVICE}=cpu",
                                          f"{OPT_DEVICE}=ort:cpu", f"{OPT_MISSING}=fail", "--accel-gate=parity")
    assert again.ret == 0, again.stdout.str()
    assert "had no baseline" not in again.stdout.str()
