"""Baseline files no test uses are listed, and pruned on request (--accel-prune-baselines): only the files of test
functions a run that collected their test file whole no longer has; whatever a selection left out is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_accel.options import OPT_MISSING, OPT_PRUNE
from tests.helpers import HOST_DEVICE_CONFTEST, baseline_files

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
    result.stdout.fnmatch_lines(["*1 baseline file(s) beside this run's belong to no test it collected*"
                                 "--accel-prune-baselines*",
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


def test_a_file_that_is_no_baseline_is_listed_and_kept(pytester: pytest.Pytester) -> None:
    """Regression: a user's notes.json (and a damaged baseline) in a device's folder was deleted as unused."""
    pytester.makepyfile(test_toy=TWO_TESTS)
    pytester.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=2)
    folder = baseline_files(pytester.path)[0].parent
    (folder / "notes.json").write_text("{}")
    (folder / "test_gone.json").write_text('{"schema_version": 1, "device_key": "cpu-x"')  # cut short
    result = pytester.runpytest(OPT_PRUNE)
    result.assert_outcomes(passed=2)
    assert (folder / "notes.json").read_text() == "{}" and (folder / "test_gone.json").exists()
    result.stdout.fnmatch_lines(["*do not read as baseline documents*"])
    assert "deleted" not in result.stdout.str()


def test_files_of_tests_that_did_not_run_are_not_listed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=TWO_TESTS, test_other=TWO_TESTS)
    pytester.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=4)
    result = pytester.runpytest("test_toy.py", OPT_PRUNE)
    result.assert_outcomes(passed=2)
    assert len(baseline_files(pytester.path)) == 4  # test_other.py did not run: its files are not "unused"
    assert "used by no test" not in result.stdout.str()


#: A project shaped like the suites: a conftest option narrows a parameter (as --yolo-dtypes does), tests with
#: markers and batch sizes, and a second test file in a sub-folder; on a device without torch (its xdist workers
#: start without it).
PROJECT_CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--dtypes", default="fp32,fp16")

def pytest_generate_tests(metafunc):
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", metafunc.config.getoption("--dtypes").split(","))
""" + HOST_DEVICE_CONFTEST
PROJECT_TEST_C = """
import os
import pytest
from pytest_accel.metrics import Metric

@pytest.mark.parametrize("batch", [1, 2])
def test_c(accel, dtype, batch):
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"))

@pytest.mark.slow
def test_d(accel):
    assert not os.environ.get("BREAK_TEST_D")
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"))
"""
PROJECT_TEST_E = """
from pytest_accel.metrics import Metric

def test_e(accel):
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"))
"""


#: the project's recorded baseline files (relative path -> content), recorded by the first test that needs them
_RECORDED: dict[Path, bytes] = {}


def _recorded_project(pytester: pytest.Pytester) -> list[Path]:
    pytester.makeconftest(PROJECT_CONFTEST)
    pytester.makeini("[pytest]\naddopts = --device=host\nmarkers =\n    slow: a slow test\n")
    pytester.makepyfile(test_c=PROJECT_TEST_C)
    (pytester.path / "sub").mkdir()
    (pytester.path / "sub" / "test_e.py").write_text(PROJECT_TEST_E)
    if not _RECORDED:
        pytester.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=6)
        _RECORDED.update((p.relative_to(pytester.path), p.read_bytes()) for p in baseline_files(pytester.path))
    for relative, content in _RECORDED.items():
        (pytester.path / relative).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / relative).write_bytes(content)
    files = baseline_files(pytester.path)
    assert len(files) == 6
    return files


@pytest.mark.parametrize(
    "selection",
    [
        pytest.param(["test_c.py::test_c[fp32-host-1]"], id="node-id"),
        pytest.param(["test_c.py::test_d"], id="node-id-of-a-function"),
        pytest.param(["-k", "test_c and fp16"], id="keyword"),
        pytest.param(["-m", "slow"], id="mark"),
        pytest.param(["--deselect", "test_c.py::test_d"], id="deselect"),
        pytest.param(["--dtypes=fp32"], id="a-subset-of-dtypes"),
        pytest.param(["test_c.py"], id="a-single-file"),
        pytest.param(["sub"], id="a-sub-folder"),
        pytest.param(["--ignore=sub"], id="ignore"),
    ],
)
def test_pruning_never_deletes_the_baseline_of_a_test_that_was_not_run(pytester: pytest.Pytester,
                                                                       selection: list[str]) -> None:
    """Whatever selects fewer tests than the project has, their baseline files stay (the black-box attack:
    `pytest "test_c.py::test_c[cpu-1]" --accel-prune-baselines` deleted every other test's file)."""
    files = _recorded_project(pytester)
    assert pytester.runpytest(*selection, OPT_PRUNE).ret == pytest.ExitCode.OK  # the selection ran tests
    assert baseline_files(pytester.path) == files


def test_stopping_early_keeps_the_baselines_of_the_tests_not_run(pytester: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    files = _recorded_project(pytester)
    monkeypatch.setenv("BREAK_TEST_D", "1")
    result = pytester.runpytest("-x", "-m", "slow or not slow", OPT_PRUNE, "test_c.py::test_d", "test_c.py",
                                "sub")
    assert result.ret == 1
    assert baseline_files(pytester.path) == files
    result = pytester.runpytest("--maxfail=1", OPT_PRUNE)
    assert result.ret == 1
    assert baseline_files(pytester.path) == files


def test_last_failed_keeps_the_baselines_of_the_tests_it_did_not_collect(pytester: pytest.Pytester,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    files = _recorded_project(pytester)
    monkeypatch.setenv("BREAK_TEST_D", "1")
    pytester.runpytest().assert_outcomes(passed=5, failed=1)
    monkeypatch.delenv("BREAK_TEST_D")
    result = pytester.runpytest("--lf", OPT_PRUNE)
    result.assert_outcomes(passed=1)
    assert baseline_files(pytester.path) == files


def test_a_narrowed_run_says_in_one_line_why_it_kept_the_files(pytester: pytest.Pytester) -> None:
    files = _recorded_project(pytester)
    result = pytester.runpytest("test_c.py::test_d", OPT_PRUNE)
    result.stdout.fnmatch_lines(["4 baseline file(s) beside this run's were used by no test, kept: the run selected "
                                 "tests by node id*", f"*({OPT_PRUNE} deletes none of them)"])  # wrapped at 160
    result = pytester.runpytest("--dtypes=fp32", OPT_PRUNE)
    result.stdout.fnmatch_lines(["2 baseline file(s) beside this run's were used by no test, kept: their test "
                                 "function was collected in this run, with other parameters*",
                                 "*test_c-fp16-host-1.json", "*test_c-fp16-host-2.json"])
    assert "deleted" not in result.stdout.str()
    assert baseline_files(pytester.path) == files


def test_a_whole_run_deletes_only_the_files_of_removed_test_functions(pytester: pytest.Pytester) -> None:
    files = _recorded_project(pytester)
    stale = files[0].with_name("test_gone-fp32-1.json")
    stale.write_bytes(files[0].read_bytes())
    (pytester.path / "sub" / "test_e.py").write_text(PROJECT_TEST_E.replace("def test_e", "def test_renamed"))
    result = pytester.runpytest("--dtypes=fp32", OPT_PRUNE)  # narrowed parameters do not protect removed tests
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"2 unused baseline file(s) deleted ({OPT_PRUNE}):"])
    left = baseline_files(pytester.path)
    assert stale not in left and not any(p.name == "test_e.json" for p in left)
    assert sum(p.name.startswith("test_c-fp16") for p in left) == 2, "their test still exists with fp16"


@pytest.mark.workload  # xdist starts worker processes
def test_under_xdist_pruning_keeps_what_a_narrowed_run_did_not_collect_and_deletes_what_is_gone(
        pytester: pytest.Pytester) -> None:
    files = _recorded_project(pytester)
    pytester.runpytest("-n", "2", "-p", "no:cacheprovider", "--dtypes=fp16", "-k", "not test_e", OPT_PRUNE)
    assert baseline_files(pytester.path) == files
    stale = files[0].with_name("test_gone.json")
    stale.write_bytes(files[0].read_bytes())
    result = pytester.runpytest("-n", "2", "-p", "no:cacheprovider", "--dtypes=fp16", OPT_PRUNE)
    result.stdout.fnmatch_lines([f"1 unused baseline file(s) deleted ({OPT_PRUNE}):"])
    assert baseline_files(pytester.path) == files
