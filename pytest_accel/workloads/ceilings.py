"""Workloads that find a device's ceilings: a matrix-multiply sweep per dtype (compute) and STREAM kernels (memory).

The sweep grows square products until the rate flattens (less than :data:`FLAT` above the best so far, twice, from
:data:`MIN_FLAT_SIZE` on) or the next product would take longer than the budget allows; the ceiling is the best
rate, re-timed. The STREAM kernels follow McCalpin's STREAM: copy (``b = a``), add (``c = a + b``) and triad
(``a = b + s*c``) on arrays far larger than the caches, counting the bytes the kernel must read and write (copy 2,
add and triad 3 words per element). A runtime whose compiled models copy their inputs and outputs on every run
cannot run them (the figure would time the copies).

Both time each call between device synchronisations and take the median over calls, so an asynchronous device is
timed on the work it finished, not on the calls it accepted.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from pytest_accel.devices import Device, OnnxModelRuntime, OrtRuntime, TorchRuntime
from pytest_accel.errors import WorkloadUnsupported

SWEEP_SIZES = (256, 512, 1024, 2048, 4096, 8192, 16384)
#: a size whose rate is less than 5% above the best so far has not raised the ceiling
FLAT = 0.05
#: the rate must stop rising at two sizes in a row to count as flat (one can dip on a cache boundary)
FLAT_SIZES = 2
#: the sweep reaches this size before it may call the rate flat: smaller products are overhead-bound on any device,
#: and the first sizes pay for thread pools waking up
MIN_FLAT_SIZE = 1024
#: seconds of calls per point of the sweep, and for the ceiling's final timing
POINT_SECONDS = 0.2
CEILING_SECONDS = 0.5
#: a size whose product would take longer than this (judged from the last at n^3) is not tried: larger ones would
#: take the run's time, not raise the ceiling
MAX_CALL_SECONDS = 0.5
#: bytes each STREAM array holds on the host CPU at least (4x the caches of most CPUs); other devices get
#: :data:`DEVICE_STREAM_BYTES`, beyond the largest last-level caches of current accelerators (256 MiB)
HOST_STREAM_BYTES = 128 * 2**20
DEVICE_STREAM_BYTES = 1024 * 2**20
STREAM_WORDS = {"copy": 2, "add": 3, "triad": 3}
_TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def time_calls(fn: Callable[[], Any], device: Device, seconds: float, clock: Callable[[], float] = time.perf_counter,
               min_calls: int = 3) -> list[float]:
    """Seconds per call, each between synchronisations, for about ``seconds`` after one warm-up call."""
    fn()
    device.synchronize()
    times: list[float] = []
    spent = 0.0
    while spent < seconds or len(times) < min_calls:
        start = clock()
        fn()
        device.synchronize()
        elapsed = clock() - start
        times.append(elapsed)
        spent += elapsed
        if elapsed <= 0 and len(times) > 1000:
            raise WorkloadUnsupported(f"{device.spec}: calls take no time on this clock; nothing can be timed")
    return times


@dataclass(frozen=True)
class SweepPoint:
    size: int
    seconds: float

    @property
    def flops_per_s(self) -> float:
        return 2 * self.size**3 / self.seconds


@dataclass
class Sweep:
    dtype: str
    points: list[SweepPoint] = field(default_factory=list)
    flattened: bool = False
    stopped: str = ""
    ceiling: SweepPoint | None = None
    precision: str = ""

    def summary(self) -> dict[str, Any]:
        return {"sizes": [p.size for p in self.points], "tflops": [p.flops_per_s / 1e12 for p in self.points],
                "flattened": self.flattened, "stopped": self.stopped,
                "ceiling_size": self.ceiling.size if self.ceiling else None, "precision": self.precision}


def matmul_runner(device: Device, size: int, dtype: str) -> tuple[Callable[[], Any], str]:
    """A call that multiplies two device-resident ``size`` x ``size`` matrices in ``dtype``, and the precision it
    runs in as far as the device says."""
    rng = np.random.default_rng(size)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    if isinstance(device, TorchRuntime):
        import torch

        if dtype not in _TORCH_DTYPES:
            raise WorkloadUnsupported(f"matmul sweep on PyTorch devices runs {', '.join(_TORCH_DTYPES)}; not {dtype}")
        torch_dtype = getattr(torch, _TORCH_DTYPES[dtype])
        left = torch.from_numpy(a).to(device.torch_device, torch_dtype)
        right = torch.from_numpy(b).to(device.torch_device, torch_dtype)
        return (lambda: torch.mm(left, right)), device.effective_precision(dtype)
    if dtype != "fp32":
        raise WorkloadUnsupported(f"{device.spec}: the ONNX matmul sweep runs fp32 models (the runtime picks the "
                                  f"precision it computes in); {dtype} is measured on PyTorch devices")
    from pytest_accel.devices.onnxruntime import matmul_model

    feeds = {"a": a, "b": b}
    if isinstance(device, OrtRuntime):
        session = device.create_session(matmul_model(size))
        return (lambda: session.run(None, feeds)), device.effective_precision("fp32")
    if isinstance(device, OnnxModelRuntime):
        compiled = device.compile_onnx(matmul_model(size), sample_feeds=feeds)
        execution = compiled.execution_precision()
        precision = execution.dominant if execution is not None and execution.dominant else (
            device.effective_precision("fp32"))
        return (lambda: compiled.run(feeds)), precision
    raise WorkloadUnsupported(f"the matmul sweep runs on PyTorch, ONNX Runtime and ONNX-compiling devices; "
                              f"{device.spec} runs {device.runtime!r}")


def sweep_matmul(device: Device, dtype: str, sizes: tuple[int, ...] = SWEEP_SIZES, *,
                 clock: Callable[[], float] = time.perf_counter, point_seconds: float = POINT_SECONDS,
                 ceiling_seconds: float = CEILING_SECONDS, max_call_seconds: float = MAX_CALL_SECONDS,
                 make_runner: Callable[[Device, int, str], tuple[Callable[[], Any], str]] = matmul_runner) -> Sweep:
    """The sweep (see the module's description): its points, why it stopped, and the ceiling re-timed."""
    sweep = Sweep(dtype)
    best: SweepPoint | None = None
    best_run: Callable[[], Any] | None = None
    flat = 0
    for index, size in enumerate(sizes):
        run, precision = make_runner(device, size, dtype)
        sweep.precision = sweep.precision or precision
        point = SweepPoint(size, statistics.median(time_calls(run, device, point_seconds, clock)))
        sweep.points.append(point)
        if best is None or point.flops_per_s > best.flops_per_s * (1 + FLAT):
            flat = 0
        else:
            flat += 1
        if best is None or point.flops_per_s > best.flops_per_s:
            best, best_run = point, run
        if flat >= FLAT_SIZES and size >= MIN_FLAT_SIZE:
            sweep.flattened, sweep.stopped = True, f"the rate rose less than {FLAT:.0%} at {FLAT_SIZES} sizes"
            break
        following = sizes[index + 1] if index + 1 < len(sizes) else None
        if following is not None and point.seconds * (following / size) ** 3 > max_call_seconds:
            sweep.stopped = (f"a {following}x{following} product would take about "
                             f"{point.seconds * (following / size) ** 3:.2g} s (budget {max_call_seconds:g} s)")
            break
        del run
    else:
        sweep.stopped = f"largest size {sizes[-1]} reached"
    assert best is not None and best_run is not None
    sweep.ceiling = SweepPoint(best.size, statistics.median(time_calls(best_run, device, ceiling_seconds, clock)))
    return sweep


@dataclass(frozen=True)
class StreamResult:
    kernel: str
    elements: int
    seconds: float
    words: int
    word_bytes: int = 4

    @property
    def bytes_per_s(self) -> float:
        return self.words * self.word_bytes * self.elements / self.seconds


def stream_elements(device: Device) -> int:
    """Elements per array: 4x the host's last-level cache, at least :data:`HOST_STREAM_BYTES`, on the host CPU;
    :data:`DEVICE_STREAM_BYTES` elsewhere."""
    if device.is_host_cpu:
        from pytest_accel.environment import cpu_facts

        cache = cpu_facts().get("l3_cache_size")
        per_array = max(HOST_STREAM_BYTES, 4 * cache if isinstance(cache, int) else 0)
    else:
        per_array = DEVICE_STREAM_BYTES
    return per_array // 4


def stream_kernels(device: Device, elements: int) -> dict[str, Callable[[], Any]]:
    """The STREAM kernels this device runs on device-resident fp32 arrays of ``elements`` elements."""
    rng = np.random.default_rng(0)
    host = [rng.standard_normal(elements, dtype=np.float32) for _ in range(3)]
    if isinstance(device, TorchRuntime):
        import torch

        a, b, c = (torch.from_numpy(x).to(device.torch_device) for x in host)
        return {"copy": lambda: b.copy_(a), "add": lambda: torch.add(a, b, out=c),
                "triad": lambda: torch.add(b, c, alpha=3.0, out=a)}
    if not device.is_host_cpu:
        raise WorkloadUnsupported(f"{device.spec}: the STREAM kernels of ONNX runtimes need device-resident buffers, "
                                  "wired only for the host CPU so far (host arrays would time the transfers)")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["c"], name="add")], "accel_stream_add",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [elements]) for n in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [elements])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    serialised = bytes(model.SerializeToString())
    feeds = {"a": host[0], "b": host[1]}
    if isinstance(device, OrtRuntime):
        session = device.create_session(serialised)
        binding = session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        # the output bound to one preallocated array: no allocation (and first-touch page faults) per call
        binding.bind_output("c", "cpu", 0, np.float32, [elements], host[2].ctypes.data)

        def add(arrays: list[np.ndarray] = host) -> None:  # holds the bound arrays: ONNX Runtime reads their memory
            session.run_with_iobinding(binding)

        return {"add": add}
    if isinstance(device, OnnxModelRuntime):
        compiled = device.compile_onnx(serialised, sample_feeds=feeds)
        in_place = getattr(compiled, "run_in_place", None)
        if in_place is None:
            raise WorkloadUnsupported(f"{device.spec}'s compiled models copy their inputs and outputs on every run: a "
                                      "STREAM figure would time the copies, not the kernel")
        return {"add": lambda: in_place(feeds)}
    raise WorkloadUnsupported(f"the STREAM kernels run on PyTorch, ONNX Runtime and ONNX-compiling devices; "
                              f"{device.spec} runs {device.runtime!r}")


def measure_stream(device: Device, *, elements: int | None = None, seconds: float = CEILING_SECONDS,
                   clock: Callable[[], float] = time.perf_counter) -> list[StreamResult]:
    elements = elements or stream_elements(device)
    return [StreamResult(kernel, elements, statistics.median(time_calls(run, device, seconds, clock)),
                         STREAM_WORDS[kernel])
            for kernel, run in stream_kernels(device, elements).items()]


__all__ = ["Sweep", "SweepPoint", "StreamResult", "matmul_runner", "measure_stream", "stream_kernels",
           "sweep_matmul", "time_calls"]
