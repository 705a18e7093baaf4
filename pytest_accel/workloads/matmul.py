"""A square fp32 matrix multiply on any device: the smallest real workload, used by the smoke suite.

Inputs are fixed by seed; the reference product is computed in float64 with numpy on the host.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from pytest_accel.devices import Device, ExecutionPrecision, OnnxModelRuntime, OrtRuntime, TorchRuntime
from pytest_accel.errors import WorkloadUnsupported


def inputs(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((size, size), dtype=np.float32),
        rng.standard_normal((size, size), dtype=np.float32),
    )


def reference_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) @ b.astype(np.float64)


class Matmul:
    """``run()`` multiplies the device-resident inputs; ``result()`` brings one product back to the host."""

    def __init__(self, device: Device, size: int) -> None:
        self.device = device
        self.a, self.b = inputs(size)
        self.run: Callable[[], Any]
        #: what the device's compiler says the product really ran in, where it says (OnnxModelRuntime devices)
        self.execution: ExecutionPrecision | None = None
        if isinstance(device, TorchRuntime):
            import torch

            class Product(torch.nn.Module):
                def forward(self, left: Any, right: Any) -> Any:
                    return torch.mm(left, right)

            a = torch.from_numpy(self.a).to(device.torch_device)
            b = torch.from_numpy(self.b).to(device.torch_device)
            product = device.prepare_module(Product())  # as every model: the backend may compile or instrument it
            self.run = lambda: product(a, b)
            self._to_host = lambda out: out.cpu().numpy()
        elif isinstance(device, OrtRuntime):
            from pytest_accel.devices.onnxruntime import matmul_model

            session = device.create_session(matmul_model(size))
            feeds = {"a": self.a, "b": self.b}
            self.run = lambda: session.run(None, feeds)[0]
            self._to_host = lambda out: out
        elif isinstance(device, OnnxModelRuntime):
            from pytest_accel.devices.onnxruntime import matmul_model

            feeds = {"a": self.a, "b": self.b}
            compiled = device.compile_onnx(matmul_model(size), sample_feeds=feeds)
            self.execution = compiled.execution_precision()
            self.run = lambda: compiled.run(feeds)[0]
            self._to_host = lambda out: out
        else:
            raise WorkloadUnsupported(
                f"the matmul workload runs on PyTorch devices, ONNX Runtime devices and devices that compile ONNX "
                f"models; {device.spec} runs {device.runtime!r}"
            )

    @property
    def precision(self) -> str:
        """The precision the product really runs in: the compiler's report where there is one, else the device's."""
        if self.execution is not None and self.execution.dominant:
            return self.execution.dominant
        return self.device.effective_precision("fp32")

    def result(self) -> np.ndarray:
        out = self.run()
        self.device.synchronize()
        return np.asarray(self._to_host(out), dtype=np.float64)

    def flops(self) -> int:
        n = self.a.shape[0]
        return 2 * n**3
