"""Third-party backends: from a conftest through the hook, and from an installed entry point."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_accel.options import OPT_DEVICE, OPT_MISSING

#: The example out-of-tree backend ("host BLAS": numpy on the CPU); the tests run real work on it.
EXAMPLE = Path(__file__).parents[1] / "examples" / "accel_hostblas"
BACKEND_MODULE = (EXAMPLE / "accel_hostblas.py").read_text()


WORKLOAD_TEST = """
import numpy as np
from pytest_accel.metrics import Metric

def test_blas(device, accel):
    assert device.runtime == "numpy"
    a = np.random.default_rng(0).standard_normal((96, 96))
    accel.check(*accel.measure_latency("blas", lambda: a @ a).metrics())
"""


def test_backend_from_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(accel_hostblas=BACKEND_MODULE, test_blas=WORKLOAD_TEST)
    pytester.makeconftest(
        """
        from accel_hostblas import HostBlasBackend

        def pytest_accel_register_backends(registry):
            registry.register(HostBlasBackend())
        """
    )
    result = pytester.runpytest("-v", f"{OPT_DEVICE}=hostblas", f"{OPT_MISSING}=record")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["accel device hostblas: hostblas-numpy-host-blas (numpy host blas, numpy *)",
                                 "*test_blas?hostblas? PASSED*"])
    assert (pytester.path / "baselines" / "hostblas-numpy-host-blas" / "blas" / "test_blas.json").is_file()


def test_unknown_spec_lists_the_conftest_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(accel_hostblas=BACKEND_MODULE)
    pytester.makeconftest(
        "from accel_hostblas import HostBlasBackend\n"
        "def pytest_accel_register_backends(registry):\n    registry.register(HostBlasBackend())\n"
    )
    result = pytester.runpytest(f"{OPT_DEVICE}=hostblass")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --device='hostblass' is not a device *; registered: torch: *; "
                                 "onnxruntime: *; hostblas: hostblas; *openvino: ov:*; or 'auto'*"])


def _install_entry_point(site: Path, value: str) -> None:
    site.mkdir()
    (site / "accel_hostblas.py").write_text(BACKEND_MODULE)
    dist = site / "acme_hostblas-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-hostblas\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[pytest_accel.backends]\nhostblas = {value}\n")


@pytest.mark.workload
def test_backend_from_an_installed_entry_point(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    site = pytester.path / "site"
    _install_entry_point(site, "accel_hostblas:HostBlasBackend")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    pytester.makepyfile(test_blas=WORKLOAD_TEST)
    result = pytester.runpytest_subprocess("-v", f"{OPT_DEVICE}=hostblas", f"{OPT_DEVICE}=cpu")
    result.assert_outcomes(passed=1, failed=1)  # the workload asserts a numpy runtime: cpu (torch) fails it
    result.stdout.fnmatch_lines(["*test_blas?hostblas? PASSED*", "*test_blas?cpu? FAILED*"])


@pytest.mark.workload
def test_broken_entry_point_is_named(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    site = pytester.path / "site"
    _install_entry_point(site, "accel_hostblas:NoSuchBackend")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-accel: entry point hostblas = accel_hostblas:NoSuchBackend (group "
                                 "pytest_accel.backends) failed to load: *NoSuchBackend*"])
