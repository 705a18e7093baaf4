"""One spelling of "this workload cannot run here" (a skip with its reason), and baselines kept apart per input
through the ``accel_variant`` fixture."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_accel.options import OPT_DEVICE, OPT_MISSING
from tests.helpers import baseline_files

REPO = Path(__file__).parents[1]
EXAMPLE = REPO / "examples" / "accel_hostblas" / "accel_hostblas.py"


def test_unsupported_workload_skips_with_its_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_accel.errors import WorkloadUnsupported

        @pytest.fixture
        def model(device):
            raise WorkloadUnsupported(f"no kernels for {device.spec}")

        def test_in_fixture(model):
            pass

        def test_in_body(device):
            raise WorkloadUnsupported("int8 is not offered here")
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_*.py:*: no kernels for cpu",
                                 "SKIPPED [[]1[]] test_*.py:*: int8 is not offered here"])


def test_the_example_backend_skips_the_matmul_suite(pytester: pytest.Pytester) -> None:
    """An out-of-tree device whose runtime the workload does not know: skipped with the reason, not an error."""
    shutil.copy(EXAMPLE, pytester.path / "accel_hostblas.py")
    (pytester.path / "suites").mkdir()
    shutil.copy(REPO / "suites" / "test_matmul.py", pytester.path / "suites" / "test_matmul.py")
    pytester.makeconftest(
        "from accel_hostblas import HostBlasBackend\n"
        "def pytest_accel_register_backends(registry):\n    registry.register(HostBlasBackend())\n"
    )
    result = pytester.runpytest("suites/test_matmul.py", f"{OPT_DEVICE}=hostblas", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*the matmul workload runs on PyTorch devices, ONNX Runtime devices and devices "
                                 "that compile ONNX models; hostblas runs 'numpy'*"])


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
