"""pytest-accel's backend contract, run against this package's backend as a vendor runs it against their own."""

from __future__ import annotations

import numpy as np
from accel_hostblas import HostBlasBackend

from pytest_accel.devices import Device
from pytest_accel.testing import BackendContract


class TestHostBlasContract(BackendContract):
    backend = HostBlasBackend()
    valid_specs = ["hostblas"]
    invalid_specs = ["hostblas:0", "HostBlas", "cpu", "ort:cpu"]
    absent_spec = None  # the host's BLAS is always there

    def run_matmul(self, device: Device, a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray | None:
        """numpy is this device's runtime, which the kit cannot know: the dtype check's matmul is given here."""
        return a @ b if dtype == "fp32" else None
