"""ONNX Runtime sessions never fall back to the CPU silently: the nodes that would are named."""

from __future__ import annotations

import pytest

from pytest_accel.devices.onnxruntime import OrtBackend, OrtFallbackError
from pytest_accel.workloads.matmul import _onnx_matmul

# The Azure provider ships in the CPU wheel and runs no local operator: every node would fall back.
NO_OP_PROVIDER = "ort:AzureExecutionProvider"


def test_fallback_names_the_nodes() -> None:
    device = OrtBackend().open(NO_OP_PROVIDER)
    with pytest.raises(OrtFallbackError, match=r"AzureExecutionProvider cannot run 1 of 1 nodes, which would fall "
                                               r"back to the CPU: matmul \(MatMul\)"):
        device.create_session(_onnx_matmul(8))


def test_cpu_provider_places_every_node_on_itself() -> None:
    device = OrtBackend().open("ort:cpu")
    placement = device.node_placement(_onnx_matmul(8))
    assert placement == {"matmul": ("CPUExecutionProvider", "MatMul")}
    device.create_session(_onnx_matmul(8))


def test_a_suite_on_a_falling_back_provider_fails_readably(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_accel.devices.onnxruntime import OrtFallbackError
        from pytest_accel.workloads.matmul import Matmul

        def test_matmul(device):
            try:
                Matmul(device, 8)
            except OrtFallbackError as error:
                pytest.fail(str(error), pytrace=False)
        """
    )
    result = pytester.runpytest(f"--device={NO_OP_PROVIDER}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["AzureExecutionProvider cannot run 1 of 1 nodes, which would fall back to the CPU: "
                                 "matmul (MatMul)"])
