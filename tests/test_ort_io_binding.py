"""Model-only timing on ONNX Runtime binds device-resident inputs and outputs, so no host copies are timed.

No GPU here: ONNX Runtime's I/O binding takes the same path for the CPU device type, so the binding code runs for
real on ``ort:cpu`` with ``io_binding`` forced on, and must give exactly what the host-array path gives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_accel.devices.onnxruntime import OrtBackend, OrtDevice
from pytest_accel.workloads.detection.dataset import ensure_dataset
from pytest_accel.workloads.detection.evaluation import golden_inputs
from pytest_accel.workloads.detection.images import load_bgr
from pytest_accel.workloads.detection.model import BUNDLED_WEIGHTS, DetectorSource
from pytest_accel.workloads.detection.pipeline import DEPLOY_CONF, detect
from pytest_accel.workloads.detection.runners import BoundBatch, OrtRunner
from pytest_accel.workloads.detection.splits import load_split


@pytest.fixture(scope="module")
def source(shared_workload_cache: Path) -> DetectorSource:
    return DetectorSource(BUNDLED_WEIGHTS, 320, shared_workload_cache)


@pytest.fixture(scope="module")
def batch(source: DetectorSource) -> np.ndarray:
    _, samples = load_split(ensure_dataset(source.cache_dir))
    return golden_inputs(samples, source.imgsz, 2).tensor


def test_gpu_providers_bind_device_memory_and_the_cpu_does_not() -> None:
    assert OrtDevice("ort:cuda", "CUDAExecutionProvider").io_device_type == "cuda"
    assert OrtDevice("ort:tensorrt", "TensorrtExecutionProvider").io_device_type == "cuda"
    assert OrtBackend().open("ort:cpu").io_device_type is None


@pytest.mark.workload
def test_bound_run_gives_the_host_path_outputs(source: DetectorSource, batch: np.ndarray) -> None:
    host_device = OrtBackend().open("ort:cpu")
    bound_device = OrtBackend().open("ort:cpu")
    assert isinstance(bound_device, OrtDevice)
    bound_device.io_binding = True
    host, bound = OrtRunner(host_device, source, "fp32"), OrtRunner(bound_device, source, "fp32", max_batch=2)

    prepared = bound.to_device(batch)
    assert isinstance(prepared, BoundBatch)
    output = bound.forward(prepared)
    assert isinstance(output, bound.ort.OrtValue), "model-only output stays an OrtValue on the device"
    expected = host.to_host(host.forward(host.to_device(batch)))
    np.testing.assert_array_equal(bound.to_host(output), expected)
    np.testing.assert_array_equal(bound.to_host(bound.forward(prepared)), expected)  # the binding is reusable


@pytest.mark.workload
def test_end_to_end_still_copies_and_detects_the_same(source: DetectorSource) -> None:
    _, samples = load_split(ensure_dataset(source.cache_dir))
    image = load_bgr(samples[0].path)
    host_device, bound_device = OrtBackend().open("ort:cpu"), OrtBackend().open("ort:cpu")
    assert isinstance(bound_device, OrtDevice)
    bound_device.io_binding = True
    host = detect(OrtRunner(host_device, source, "fp32"), [image], source.imgsz, DEPLOY_CONF)
    bound = detect(OrtRunner(bound_device, source, "fp32"), [image], source.imgsz, DEPLOY_CONF)
    assert len(host[0]) > 0
    np.testing.assert_array_equal(bound[0], host[0])
