"""An out-of-tree pytest-accel backend: numpy's BLAS on the host, as a device of its own.

The smallest complete backend: it parses its spec, discovers and opens its device, describes the hardware and
offers a calibration probe. Installing this package registers it through the ``pytest_accel.backends`` entry point;
``pytest suites --device=hostblas`` then runs every test whose workload supports the ``numpy`` runtime.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from pytest_accel.devices import Backend, Device, DeviceInfo


class HostBlasDevice(Device):
    runtime = "numpy"

    def describe(self) -> DeviceInfo:
        return DeviceInfo(
            backend=self.backend_name, spec=self.spec, vendor="numpy", model="host blas",
            runtime={"numpy": np.__version__},
        )

    def calibration_probe(self) -> Callable[[], None]:
        matrix = np.ones((64, 64), dtype=np.float32)

        def probe() -> None:
            matrix @ matrix

        return probe


class HostBlasBackend(Backend):
    name = "hostblas"
    grammar = "hostblas"

    def parse(self, spec: str) -> str | None:
        return spec if spec == "hostblas" else None

    def discover(self) -> list[str]:
        return ["hostblas"]

    def open(self, spec: str) -> Device:
        return HostBlasDevice(spec, self.name)
