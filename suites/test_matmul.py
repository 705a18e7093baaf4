"""Smoke suite and ceilings: an fp32 matmul per device — parity with a float64 host reference, latency,
throughput — then how close the device comes to its datasheet: a matrix-multiply sweep per dtype (compute) and the
STREAM kernels (memory), each as a share of the peak the datasheet (or, for the host CPU, its own instruction sets)
gives.

The smoke tests are a small real workload that exercises every part of the plugin on any backend in seconds. The
shares are reported, and gated only against a floor a vendor's manifest or the user sets (``[floors]
"ceiling.matmul.bf16.share_of_peak" = 0.6``): a datasheet is a promise of the hardware, not of every runtime, and
regressions of speed are the fixed-size workloads' business, whose baselines a sweep that picks its own size would
not keep comparable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pytest_accel.datasheet.measured import bandwidth_share_metric, share_metric
from pytest_accel.devices import Device
from pytest_accel.errors import WorkloadUnsupported
from pytest_accel.metrics import Metric
from pytest_accel.workloads.ceilings import measure_stream, sweep_matmul
from pytest_accel.workloads.matmul import Matmul, reference_product

SIZE = 512
#: fp32 accumulation over 512 terms of unit-variance products: errors ~1e-5 relative to the row scale; TF32 and fp16
#: round the inputs to 10 mantissa bits (2.9e-4 when emulated on the CPU), so their bound is 1e-3; bf16 keeps 7 bits
#: (2.4e-3 emulated, and the same from OpenVINO's CPU plugin, which runs fp32 models in bf16), bound 1e-2
MAX_REL_ERROR = {"fp32": 1e-4, "tf32": 1e-3, "fp16": 1e-3, "bf16": 1e-2}


@pytest.fixture(scope="module")
def matmul(device: Device) -> Matmul:
    return Matmul(device, SIZE)


def test_matmul_parity(matmul, accel):
    obtained = matmul.result()
    expected = reference_product(matmul.a, matmul.b)
    scale = np.abs(expected).max()
    precision = matmul.precision  # what really ran: a runtime may lower fp32 (OpenVINO on CPUs with bf16)
    summary: dict[str, object] = {"precision": precision}
    if matmul.execution is not None:
        summary["execution"] = matmul.execution.summary()
    accel.check(
        Metric("matmul.max_rel_error", float(np.abs(obtained - expected).max() / scale), "", "parity", "lower",
               limit=MAX_REL_ERROR[precision], summary=summary,
               sections=("precision",) if matmul.execution is not None else ()),
    )


def test_matmul_latency(matmul, accel):
    measurement = accel.measure_latency("matmul", matmul.run)
    gflops = Metric("matmul.gflops", matmul.flops() / measurement.median / 1e9, "GFLOP/s", "info", "higher")
    accel.check(*measurement.metrics(), gflops)


CEILING_DTYPES = ("fp32", "bf16", "fp16")


def _peak_missing(accel: Any, what: str) -> dict[str, str]:
    return {"share_of_peak": f"no {what} peak: {accel.peak.missing or accel.peak.origin}"}


@pytest.mark.parametrize("dtype", CEILING_DTYPES)
def test_matmul_ceiling(device: Device, dtype: str, accel: Any) -> None:
    """Square products of growing size until the rate flattens; the best rate and its share of the peak in the
    precision that really ran."""
    if dtype not in device.supported_dtypes:
        raise WorkloadUnsupported(f"{device.spec} does not run {dtype}")
    emulated = device.emulated_dtypes.get(dtype)
    if emulated is not None:  # converted in software: a ceiling of the emulation, not of the hardware
        raise WorkloadUnsupported(f"{dtype} on {device.spec} is emulated ({emulated}): no hardware ceiling to find")
    sweep = sweep_matmul(device, dtype)
    assert sweep.ceiling is not None
    achieved = sweep.ceiling.flops_per_s
    name = f"ceiling.matmul.{dtype}"
    summary: dict[str, Any] = sweep.summary()
    share = share_metric(name, achieved, accel.peak, sweep.precision, extra={"size": sweep.ceiling.size})
    if share is None:
        summary |= _peak_missing(accel, sweep.precision)
    metrics = [Metric(f"{name}.tflops", achieved / 1e12, "TFLOP/s", "info", "higher", summary=summary,
                      sections=("ceiling",))]
    accel.check(*metrics, *([share] if share is not None else []))


def test_memory_bandwidth(device: Device, accel: Any) -> None:
    """The STREAM kernels the device runs (copy, add, triad on PyTorch devices; add through ONNX runtimes), on
    arrays far beyond the caches; the best kernel's share of the datasheet's (or the host's) bandwidth."""
    results = measure_stream(device)
    metrics = [Metric(f"ceiling.stream.{r.kernel}.gbs", r.bytes_per_s / 1e9, "GB/s", "info", "higher",
                      summary={"elements": r.elements, "bytes_per_element": r.words * r.word_bytes,
                               "seconds": r.seconds}, sections=("ceiling",)) for r in results]
    best = max(results, key=lambda r: r.bytes_per_s)
    share = bandwidth_share_metric("ceiling.stream", best.bytes_per_s, accel.peak)
    if share is None:
        metrics[0].summary["share_of_peak"] = (f"no bandwidth peak: {accel.peak.missing or accel.peak.origin} "
                                               "gives none (measured only)")
    else:
        share.summary["kernel"] = best.kernel
    accel.check(*metrics, *([share] if share is not None else []))
