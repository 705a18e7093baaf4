"""ONNX Runtime sessions never run compute on the CPU silently: shape bookkeeping may stay there (GPU providers
place it there by design), compute nodes that land there are named, and a provider ONNX Runtime dropped is a
failure.

No GPU provider runs here. The Azure provider ships in the CPU wheel and runs no local operator, so every node of a
session on it lands on the CPU, as compute would on a provider that lacks a kernel; ONNX Runtime's CPU build drops
a requested CUDA provider with only a warning, as a GPU build does when the CUDA libraries fail to load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_accel.devices.onnxruntime import OrtBackend, OrtDevice, OrtFallbackError, ShapeRange, matmul_model
from pytest_accel.devices.ort_placement import compute_on_cpu, graph_nodes, profile_options, profiled_placement
from pytest_accel.errors import DeviceFailure

NO_OP_PROVIDER = "ort:AzureExecutionProvider"


def shape_then_compute_model() -> bytes:
    """y = Relu(Reshape(x, Concat(Gather(Shape(x), 0), [-1]))): shape bookkeeping feeding two compute nodes."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="batch", axis=0),
        helper.make_node("Unsqueeze", ["batch", "zero_axis"], ["batch_1d"], name="batch_1d"),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"], name="flatten"),
        helper.make_node("Relu", ["flat"], ["y"], name="relu"),
    ]
    initializers = [
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("zero_axis", TensorProto.INT64, [1], [0]),
        helper.make_tensor("minus_one", TensorProto.INT64, [1], [-1]),
    ]
    graph = helper.make_graph(
        nodes, "shape_then_compute",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def test_compute_on_the_cpu_is_named() -> None:
    device = OrtBackend().open(NO_OP_PROVIDER)
    with pytest.raises(OrtFallbackError, match=r"AzureExecutionProvider cannot run 1 of 1 nodes, which fell back to "
                                               r"the CPU: matmul \(MatMul\)"):
        device.create_session(matmul_model(8))


def test_shape_bookkeeping_is_allowed_and_only_compute_is_named() -> None:
    device = OrtBackend().open(NO_OP_PROVIDER)
    with pytest.raises(OrtFallbackError) as raised:
        device.create_session(shape_then_compute_model())
    message = str(raised.value)
    assert "flatten (Reshape)" in message and "relu (Relu)" in message
    assert not any(f"{name} (" in message for name in ("shape", "batch", "batch_1d", "target"))


def test_the_graph_analysis_separates_bookkeeping_from_compute() -> None:
    graph = graph_nodes(shape_then_compute_model())
    assert graph.host_side == {"shape", "batch", "batch_1d", "target"}
    assert graph.names == graph.host_side | {"flatten", "relu"}


@pytest.mark.workload
def test_yolo_export_keeps_its_shape_arithmetic_apart(workload_cache: Path) -> None:
    """The real detector export, every node run on the CPU and judged as if another provider were under test:
    every convolution is compute, the anchor grid built from Shape/Range/Cast is bookkeeping."""
    from pytest_accel.workloads.detection.model import BUNDLED_WEIGHTS, DetectorSource

    model = str(DetectorSource(BUNDLED_WEIGHTS, 320, workload_cache).onnx_path())
    device = OrtBackend().open("ort:cpu")
    options = device.session_options()
    with profile_options(options):
        session = device.ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        placement = profiled_placement(session, {"images": np.zeros((2, 3, 320, 320), np.float32)})
    compute = compute_on_cpu(placement, graph_nodes(model))
    compute_ops = {node.op for node in compute}
    bookkeeping = {node.name for node in placement} - {node.name for node in compute}
    assert "Conv" in compute_ops or any("Conv" in node.name for node in compute)
    assert not compute_ops & {"Shape", "Range"}, "shape arithmetic counted as compute"
    assert any(name.endswith("/Shape") for name in bookkeeping) and any("Range" in name for name in bookkeeping)
    assert len(compute) > 100  # the network itself: every node the optimiser left or fused


def test_a_dynamic_model_is_probed_with_real_sized_inputs() -> None:
    """A model with symbolic dimensions gets its first, checked run on the sample inputs; without them a readable
    failure, not ONNX Runtime's shape error from a 1x..x1 input."""
    device = OrtBackend().open(NO_OP_PROVIDER)
    with pytest.raises(OrtFallbackError):
        device.create_session(shape_then_compute_model(), sample_feeds={"x": np.ones((3, 4, 4), np.float32)})


def test_a_provider_onnx_runtime_dropped_is_a_failure() -> None:
    device = OrtDevice("ort:cuda", "CUDAExecutionProvider")  # this CPU build has no CUDA provider to load
    with (
        pytest.warns(UserWarning, match="not in available provider names"),  # all ONNX Runtime itself says
        pytest.raises(DeviceFailure, match=r"dropped CUDAExecutionProvider when creating the session \(it runs on "
                                           r"CPUExecutionProvider\)"),
    ):
        device.create_session(matmul_model(8))


def test_cuda_runs_fp32_without_tf32_unless_asked() -> None:
    device = OrtDevice("ort:cuda", "CUDAExecutionProvider")
    assert device.providers()[0] == ("CUDAExecutionProvider", {"use_tf32": "0"}) and device.fp32_math == "ieee"
    device.set_fp32_math(allow_tf32=True)
    assert device.providers()[0][1]["use_tf32"] == "1" and device.fp32_math == "tf32"


def test_tensorrt_is_set_up_as_its_users_run_it(tmp_path: Path) -> None:
    device = OrtDevice("ort:tensorrt", "TensorrtExecutionProvider", cache_dir=tmp_path)
    shapes = {"images": ShapeRange((1, 3, 320, 320), (1, 3, 320, 320), (32, 3, 320, 320))}
    tensorrt, cuda, cpu = device.providers(shapes)
    name, options = tensorrt
    assert name == "TensorrtExecutionProvider" and cuda[0] == "CUDAExecutionProvider" and cpu == "CPUExecutionProvider"
    cache = str(tmp_path / "onnxruntime" / "tensorrt")
    assert options["trt_engine_cache_enable"] == "True" and options["trt_engine_cache_path"] == cache
    assert options["trt_timing_cache_enable"] == "True" and options["trt_timing_cache_path"] == cache
    assert options["trt_profile_min_shapes"] == "images:1x3x320x320"
    assert options["trt_profile_opt_shapes"] == "images:1x3x320x320"
    assert options["trt_profile_max_shapes"] == "images:32x3x320x320"
    assert device.fp32_math == "tf32"  # TensorRT's default tactics


def test_the_calibration_probe_session_is_made_once() -> None:
    device = OrtBackend().open("ort:cpu")
    assert device.calibration_probe() is device.calibration_probe()


def test_a_suite_on_a_falling_back_provider_fails_readably(pytester: pytest.Pytester) -> None:
    """The plugin turns the fallback into a one-line failure, in a fixture (an error) and in a test body alike."""
    pytester.makepyfile(
        """
        import pytest
        from pytest_accel.workloads.matmul import Matmul

        @pytest.fixture
        def matmul(device):
            return Matmul(device, 8)

        def test_in_fixture(matmul):
            pass

        def test_in_body(device):
            Matmul(device, 8)
        """
    )
    result = pytester.runpytest(f"--device={NO_OP_PROVIDER}")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(["*pytest-accel: AzureExecutionProvider cannot run 1 of 1 nodes, which fell back to "
                                 "the CPU: matmul (MatMul)*"] * 2)
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*def test_in_body*")
