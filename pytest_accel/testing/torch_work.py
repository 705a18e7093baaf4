"""The work the contract's default hooks run on PyTorch devices: a matmul in a dtype, and matmuls queued
asynchronously with a completion event. torch is imported when a check runs, never at import."""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING, Any, Callable

import pytest

if TYPE_CHECKING:
    import numpy as np

#: how long the default PyTorch asynchronous work keeps the device busy
_ASYNC_WORK_SECONDS = 0.1

_TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def torch_matmul(device: Any, a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray | None:
    if dtype not in _TORCH_DTYPES:
        return None
    torch = importlib.import_module("torch")
    torch_dtype = getattr(torch, _TORCH_DTYPES[dtype])
    left, right = (torch.from_numpy(x).to(device.torch_device, torch_dtype) for x in (a, b))
    return (left @ right).float().cpu().numpy()


def queue_torch_matmuls(device: Any) -> Callable[[], bool]:
    """Queue about :data:`_ASYNC_WORK_SECONDS` of matmuls on a PyTorch accelerator; done is read from an event.

    The amount is sized with the event's own ``synchronize``, so the backend's ``synchronize`` is first called by
    the check itself."""
    torch = importlib.import_module("torch")
    target = device.torch_device
    if target.type == "cpu":
        pytest.skip("PyTorch runs CPU ops on the calling thread: work has finished when the call returns, so "
                    "synchronize() has nothing to wait for (a no-op is right)")
    try:
        finished = torch.Event(device=target)
    except Exception as error:  # noqa: BLE001 - a device type without event support
        pytest.skip(f"torch.Event is not available for {target.type} ({error}): override launch_async_work")
    matrix = torch.randn(1024, 1024, device=target)
    product = torch.empty_like(matrix)

    def queue(count: int) -> None:
        for _ in range(count):
            torch.mm(matrix, matrix, out=product)
        finished.record()

    queue(1)
    finished.synchronize()
    start = time.perf_counter()
    queue(8)
    finished.synchronize()
    per_product = max((time.perf_counter() - start) / 8, 1e-6)
    queue(max(1, min(20_000, round(_ASYNC_WORK_SECONDS / per_product))))
    return lambda: bool(finished.query())
