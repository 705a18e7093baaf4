"""Ceilings suite: how close a device comes to its datasheet — a matrix-multiply sweep per dtype (compute) and the
STREAM kernels (memory), each as a share of the peak the datasheet (or, for the host CPU, its own instruction
sets) gives.

Shares are reported, and gated only against a floor a vendor's manifest or the user sets (``[tolerances]
"ceiling.matmul.bf16.share_of_peak" = 0.6``): a datasheet is a promise of the hardware, not of every runtime, and
regressions of speed are the fixed-size workloads' business (``test_matmul``, the detector).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_accel.datasheet.measured import bandwidth_share_metric, share_metric
from pytest_accel.devices import Device
from pytest_accel.errors import WorkloadUnsupported
from pytest_accel.metrics import Metric
from pytest_accel.workloads.ceilings import measure_stream, sweep_matmul

DTYPES = ("fp32", "bf16", "fp16")


def _peak_missing(accel: Any, what: str) -> dict[str, str]:
    return {"share_of_peak": f"no {what} peak: {accel.peak.missing or accel.peak.origin}"}


@pytest.mark.parametrize("dtype", DTYPES)
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
