"""This test suite's own tiers: its conftest imports no heavy library, option tests run without the heavy stack
installed, and a test outside the `workload` marker that runs pytest in a fresh process, uses the workloads' cache
or takes more than the quick tier's CPU time a test fails, saying to mark it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import CPU_LIMIT_ENV, KEPT_LOADED
from tests.helpers import REPO

HEAVY = (*KEPT_LOADED, "scipy", "mediapipe", "pynvml", "matplotlib", "openvino")

#: hides the heavy stack from the whole interpreter, as on a machine where it is not installed
NOT_INSTALLED = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnxruntime", "onnx", "ultralytics"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NotInstalled())
import pytest
sys.exit(pytest.main(["tests/test_options.py", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]))
"""


def test_the_tests_conftest_imports_no_heavy_library() -> None:
    code = "import sys, tests.conftest; print(' '.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.workload
def test_option_tests_run_without_the_heavy_stack_installed() -> None:
    result = subprocess.run([sys.executable, "-c", NOT_INSTALLED], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "error" not in result.stdout


#: this suite's conftest, as a project's: its fixtures and hooks, imported from the module already loaded
CONFTEST = "from tests.conftest import *  # noqa: F403\n"

UNMARKED = """
import time

import pytest


def test_fresh_process(pytester):
    pytester.makepyfile("def test_nothing():\\n    pass\\n")
    pytester.runpytest_subprocess()


def test_cache(workload_cache):
    pass


def test_busy():
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass


@pytest.mark.workload
def test_marked_cache(workload_cache):
    pass


@pytest.mark.workload
def test_marked_busy():
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass


def test_quick():
    pass
"""


def test_unmarked_heavy_tests_fail_saying_to_mark_them(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_LIMIT_ENV, "0.2")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_tiers=UNMARKED)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=3, failed=2, errors=1)  # the cache refuses in its setup
    result.stdout.fnmatch_lines_random([
        "*test_tiers.py::test_fresh_process runs pytest in a fresh process without @pytest.mark.workload: mark it*",
        "*test_tiers.py::test_cache uses the workloads' cache without @pytest.mark.workload: mark it*",
        "*test_tiers.py::test_busy took * s of CPU time (setup and call), over the quick tier's 0.2 s a test: mark "
        "it @pytest.mark.workload*",
    ])
    outcomes = {r.nodeid.split("::")[-1]: r.outcome for r in result.reprec.getreports("pytest_runtest_logreport")
                if r.when == "call"}
    assert outcomes == {"test_fresh_process": "failed", "test_busy": "failed", "test_marked_cache": "passed",
                        "test_marked_busy": "passed", "test_quick": "passed"}, outcomes
