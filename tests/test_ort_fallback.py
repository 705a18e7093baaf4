"""ONNX Runtime sessions never fall back to the CPU silently: the nodes that would are named."""

from __future__ import annotations

import pytest

from pytest_accel.devices.onnxruntime import OrtBackend, OrtFallbackError, matmul_model

# The Azure provider ships in the CPU wheel and runs no local operator: every node would fall back.
NO_OP_PROVIDER = "ort:AzureExecutionProvider"


def test_fallback_names_the_nodes() -> None:
    device = OrtBackend().open(NO_OP_PROVIDER)
    with pytest.raises(OrtFallbackError, match=r"AzureExecutionProvider cannot run 1 of 1 nodes, which would fall "
                                               r"back to the CPU: matmul \(MatMul\)"):
        device.create_session(matmul_model(8))


def test_cpu_provider_places_every_node_on_itself() -> None:
    device = OrtBackend().open("ort:cpu")
    placement = device.node_placement(matmul_model(8))
    assert placement == {"matmul": ("CPUExecutionProvider", "MatMul")}
    device.create_session(matmul_model(8))


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
    result.stdout.fnmatch_lines(["*pytest-accel: AzureExecutionProvider cannot run 1 of 1 nodes, which would fall "
                                 "back to the CPU: matmul (MatMul)"] * 2)
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*def test_in_body*")
