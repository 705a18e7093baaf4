"""One spelling of "this workload cannot run here": WorkloadUnsupported, in a fixture or a test body, is a skip with its
reason; an out-of-tree device whose runtime a suite does not know is skipped, not an error."""

from __future__ import annotations

import shutil

import pytest

from pytest_accel.options import OPT_DEVICE
from tests.helpers import REPO, SMOKE_TESTS

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
    result = pytester.runpytest("suites/test_matmul.py", f"{OPT_DEVICE}=hostblas", "-rs", "-p", "no:cacheprovider",
                                "-k", SMOKE_TESTS)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*the matmul workload runs on PyTorch devices, ONNX Runtime devices and devices "
                                 "that compile ONNX models; hostblas runs 'numpy'*"])
