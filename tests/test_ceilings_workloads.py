"""The ceiling workloads: the matmul sweep stops where the rate flattens (or a product is too slow) and re-times
the best size; the STREAM kernels count the bytes they must move; both run for real on `cpu` and `ort:cpu`; FLOPs
come from PyTorch's counter; the HTML page draws a roofline per device."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from pytest_accel.datasheet.measured import count_torch, count_training_step
from pytest_accel.devices import Device
from pytest_accel.devices.onnxruntime import OrtBackend
from pytest_accel.devices.torch import TorchBackend
from pytest_accel.errors import WorkloadUnsupported
from pytest_accel.workloads.ceilings import STREAM_WORDS, measure_stream, sweep_matmul


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _virtual_runner(clock: VirtualClock, tflops_at: Callable[[int], float]) -> Callable[..., Any]:
    """Products that take 2 n^3 / rate seconds of the virtual clock, at the rate ``tflops_at(n)``."""
    def make(device: Device, size: int, dtype: str) -> tuple[Callable[[], Any], str]:
        def run() -> None:
            clock.now += 2 * size**3 / (tflops_at(size) * 1e12)
        return run, dtype
    return make


def test_the_sweep_stops_when_the_rate_flattens_and_re_times_the_best_size() -> None:
    cpu = TorchBackend().open("cpu")
    clock = VirtualClock()
    rates = {256: 1.0, 512: 2.0, 1024: 4.0, 2048: 4.1, 4096: 3.9, 8192: 8.0}
    sweep = sweep_matmul(cpu, "fp32", clock=clock, make_runner=_virtual_runner(clock, rates.__getitem__))
    assert [p.size for p in sweep.points] == [256, 512, 1024, 2048, 4096]  # 2048 and 4096 raise it < 5%: flat
    assert sweep.flattened and sweep.ceiling is not None and sweep.ceiling.size == 2048
    assert sweep.ceiling.flops_per_s == pytest.approx(4.1e12)


def test_the_sweep_stops_at_a_product_slower_than_the_budget() -> None:
    cpu = TorchBackend().open("cpu")
    clock = VirtualClock()
    sweep = sweep_matmul(cpu, "fp32", clock=clock, max_call_seconds=0.5,
                         make_runner=_virtual_runner(clock, lambda n: n / 1024))  # rising all the way
    assert not sweep.flattened and "would take about" in sweep.stopped
    assert all(p.seconds <= 0.5 for p in sweep.points)  # the size over the budget is never run
    assert sweep.ceiling is not None and sweep.ceiling.size == sweep.points[-1].size


@pytest.mark.workload
@pytest.mark.parametrize("spec", ["cpu", "ort:cpu"])
def test_the_sweep_and_stream_run_for_real(spec: str) -> None:
    device = TorchBackend().open(spec) if spec == "cpu" else OrtBackend().open(spec)
    sweep = sweep_matmul(device, "fp32", sizes=(64, 128, 256), point_seconds=0.02, ceiling_seconds=0.05)
    assert sweep.ceiling is not None and sweep.ceiling.flops_per_s > 0 and sweep.precision == "fp32"
    results = measure_stream(device, elements=1 << 18, seconds=0.05)
    kernels = {r.kernel for r in results}
    assert kernels == ({"copy", "add", "triad"} if spec == "cpu" else {"add"})
    for r in results:
        assert r.bytes_per_s == pytest.approx(STREAM_WORDS[r.kernel] * 4 * r.elements / r.seconds) and r.seconds > 0


def test_an_onnx_device_declines_a_dtype_it_cannot_be_asked_for() -> None:
    with pytest.raises(WorkloadUnsupported, match="bf16 is measured on PyTorch devices"):
        sweep_matmul(OrtBackend().open("ort:cpu"), "bf16", sizes=(64,))


def test_flops_are_counted_by_pytorch_and_traffic_follows_the_layers() -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    work = count_torch(model, [torch.zeros(8, 32)])
    assert work.flops == 2 * 8 * (32 * 16 + 16 * 4)  # what the two matrix products do
    parameters = 4 * (32 * 16 + 16 + 16 * 4 + 4)
    assert work.traffic_bytes == parameters + 4 * 8 * 32 + 2 * 4 * 8 * (16 + 16 + 4)
    step = count_training_step(model, torch.zeros(8, 32), torch.zeros(8, dtype=torch.long),
                               torch.nn.CrossEntropyLoss())
    assert step.flops == 3 * work.flops - 2 * 8 * 32 * 16  # backward: twice the forward, less the input's gradient
    assert all(p.grad is None for p in model.parameters())
