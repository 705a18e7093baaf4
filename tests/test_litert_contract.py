"""The LiteRT backend against the backend authors' contract (pytest_accel.testing.BackendContract), on its CPU path
(and on the Intel OpenVINO NPU plugin, where the OpenVINO release it links to is installed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pytest_accel.devices import Device
from pytest_accel.devices.litert import LiteRtBackend
from pytest_accel.testing import BackendContract
from tests.test_litert import INTEL, NO_PLUGIN_RUNTIME, PLUGIN_OPENVINO, _openvino_version

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pytest-accel[litert])")


@pytest.mark.workload
class TestLiteRt(BackendContract):
    backend = LiteRtBackend()
    valid_specs = ["litert:cpu", "litert:cpu/threads=1", "litert:gpu", "litert:npu", INTEL]
    invalid_specs = ["cpu", "ort:cpu", "ov:NPU", "litert"]
    absent_spec = "litert:gpu"
    device_spec = "litert:cpu"
    distinct_specs = ["litert:cpu", "litert:cpu/threads=1"]

    def run_matmul(self, device: Device, a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray | None:
        """``a @ b`` as a LiteRT fully connected layer (weights ``b.T``) compiled for the device."""
        from pytest_accel.devices.litert import LiteRtDevice
        from pytest_accel.devices.litert_model import probe_model

        if dtype != "fp32" or not isinstance(device, LiteRtDevice) or a.shape != b.shape or a.shape[0] != a.shape[1]:
            return None
        compiled: Any = device.compile_model(probe_model(b.T), "the contract's matmul")
        return compiled.run([a])[0]


@pytest.mark.workload
@pytest.mark.skipif(_openvino_version() != PLUGIN_OPENVINO,
                    reason=NO_PLUGIN_RUNTIME)
class TestLiteRtIntelPlugin(TestLiteRt):
    absent_spec = "litert:npu:qualcomm"
    device_spec = INTEL
    distinct_specs = [INTEL, "litert:cpu"]
