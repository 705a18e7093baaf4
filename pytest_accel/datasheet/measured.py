"""Measured numbers beside the datasheet's: shares of peak, places on the roofline, work per joule and per dollar.

Every metric made here carries in its summary the peak (or price, or power) it was divided by and that figure's
source, so a report never shows a share without saying of what. Estimates (a peak from the host's clock, energy
from a TDP) say so in their summary and are reported, never gated: only shares of peak can be held to a floor,
and only by the user or a vendor's manifest.

FLOPs are counted by PyTorch's own counter (:class:`torch.utils.flop_counter.FlopCounterMode`) on the module that
runs, never by hand. The memory traffic a roofline needs is an estimate from the same run: the parameters read
once, the input read and every leaf module's output written once and read once (the traffic of an engine that
fuses nothing; fusing lowers it, so the intensity shown is a lower bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from pytest_accel.datasheet.peaks import DevicePeak
from pytest_accel.metrics import Metric


def share_metric(name: str, achieved_per_s: float, peak: DevicePeak, precision: str, *, what: str = "TFLOPS",
                 extra: dict[str, Any] | None = None) -> Metric | None:
    """``<name>.share_of_peak``: the achieved rate over the peak in ``precision``; None where there is no peak
    (the caller says why from :attr:`DevicePeak.missing`)."""
    peak_tflops = peak.tflops(precision)
    if peak_tflops is None:
        return None
    share = achieved_per_s / (peak_tflops * 1e12)
    summary = {"achieved": achieved_per_s / 1e12, "peak": peak_tflops, "unit": what, "precision": precision,
               "peak_source": peak.source(precision), "peak_origin": peak.origin, "estimated": peak.estimated,
               **(extra or {})}
    if share > 1:
        summary["above_peak"] = ("above 100%: the peak used is too low" + (
            f" (the clock it assumes is below the one the cores ran at: {peak.cpu.clock.source})"
            if peak.cpu is not None else ""))
    return Metric(f"{name}.share_of_peak", share, "", "share", "higher", summary=summary)


def bandwidth_share_metric(name: str, bytes_per_s: float, peak: DevicePeak) -> Metric | None:
    """``<name>.share_of_peak`` for a memory rate: measured GB/s over the datasheet's (or the host's) bandwidth."""
    peak_gbs = peak.value("memory_bandwidth_gbs")
    if peak_gbs is None:
        return None
    return Metric(f"{name}.share_of_peak", bytes_per_s / (peak_gbs * 1e9), "", "share", "higher",
                  summary={"achieved": bytes_per_s / 1e9, "peak": peak_gbs, "unit": "GB/s",
                           "peak_source": peak.value_source("memory_bandwidth_gbs"), "peak_origin": peak.origin})


@dataclass(frozen=True)
class WorkCount:
    """What one call does: FLOPs counted by a library, and the bytes it moves at least (an estimate)."""

    flops: int
    traffic_bytes: int
    counted_by: str
    traffic_basis: str

    @property
    def intensity(self) -> float:
        """FLOPs per byte of memory traffic."""
        return self.flops / self.traffic_bytes if self.traffic_bytes else math.inf


def count_torch(module: Any, inputs: Iterable[Any]) -> WorkCount:
    """FLOPs of one forward of ``module`` on ``inputs`` (PyTorch's flop counter) and its traffic estimate (see the
    module's description). Runs the forward once, without gradients."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    args = tuple(inputs)
    outputs: list[int] = []

    def record(_module: Any, _inputs: Any, output: Any) -> None:
        tensors = [output] if isinstance(output, torch.Tensor) else [
            t for t in (output if isinstance(output, (list, tuple)) else []) if isinstance(t, torch.Tensor)]
        outputs.append(sum(t.numel() * t.element_size() for t in tensors))

    leaves = [m for m in module.modules() if not any(True for _ in m.children())]
    handles = [leaf.register_forward_hook(record) for leaf in leaves]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(*args)
    finally:
        for handle in handles:
            handle.remove()
    parameters = sum(p.numel() * p.element_size() for p in module.parameters())
    input_bytes = sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))
    return WorkCount(int(counter.get_total_flops()), parameters + input_bytes + 2 * sum(outputs),
                     f"torch.utils.flop_counter (torch {torch.__version__})",
                     "parameters once + input once + each leaf module's output written and read once (no fusion)")


def count_training_step(module: Any, inputs: Any, targets: Any, loss_fn: Any) -> WorkCount:
    """FLOPs of one training step (forward, loss, backward) counted by PyTorch; traffic: parameters read, their
    gradients written and read, inputs read (activations are small beside them for the models it is used on)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss = loss_fn(module(inputs), targets)
        loss.backward()
    module.zero_grad(set_to_none=True)
    parameters = sum(p.numel() * p.element_size() for p in module.parameters())
    input_bytes = inputs.numel() * inputs.element_size()
    return WorkCount(int(counter.get_total_flops()), 3 * parameters + input_bytes,
                     f"torch.utils.flop_counter (torch {torch.__version__})",
                     "parameters read, gradients written and read, inputs read")


def roofline_metric(name: str, work: WorkCount, seconds: float, peak: DevicePeak, precision: str,
                    measured_bandwidth: float | None = None) -> Metric:
    """``<name>.achieved_tflops`` (info) with its place on the roofline in the summary: intensity, the ceiling at
    that intensity (min of peak compute and bandwidth x intensity), what bounds it and the share of that ceiling."""
    achieved = work.flops / seconds
    summary: dict[str, Any] = {"flops": work.flops, "traffic_bytes": work.traffic_bytes,
                               "intensity": work.intensity, "counted_by": work.counted_by,
                               "traffic_basis": work.traffic_basis, "precision": precision, "seconds": seconds,
                               "roofline": True}
    peak_tflops = peak.tflops(precision)
    bandwidth = peak.value("memory_bandwidth_gbs")
    bandwidth_source = peak.value_source("memory_bandwidth_gbs")
    if bandwidth is None and measured_bandwidth:
        bandwidth, bandwidth_source = measured_bandwidth / 1e9, "measured (STREAM triad)"
    if peak_tflops is not None:
        summary |= {"peak_tflops": peak_tflops, "peak_source": peak.source(precision), "estimated": peak.estimated}
    if bandwidth is not None:
        summary |= {"bandwidth_gbs": bandwidth, "bandwidth_source": bandwidth_source}
    if peak_tflops is not None and bandwidth is not None:
        ridge = peak_tflops * 1e12 / (bandwidth * 1e9)
        ceiling = min(peak_tflops * 1e12, bandwidth * 1e9 * work.intensity)
        summary |= {"ridge_intensity": ridge, "bound": "memory" if work.intensity < ridge else "compute",
                    "attainable_tflops": ceiling / 1e12, "share_of_attainable": achieved / ceiling}
    return Metric(f"{name}.achieved_tflops", achieved / 1e12, "TFLOP/s", "info", "higher", summary=summary,
                  sections=("ceiling",))


def value_metrics(name: str, items_per_s: float, peak: DevicePeak, *, hourly_price_usd: float | None = None,
                  has_energy_meter: bool = False) -> list[Metric]:
    """Work per joule and per dollar of one throughput (items per second), each reported, none gated:

    - ``<name>.inferences_per_joule_tdp_estimate``: throughput over the datasheet's TDP, only where the device has
      no energy meter (a meter's figure comes from the energy test); labelled an estimate: a device rarely draws
      its full TDP;
    - ``<name>.inferences_per_s_per_kusd``: throughput per thousand dollars of list price;
    - ``<name>.usd_per_million``: the cost of a million inferences at the hourly price given (or the datasheet's
      public cloud price)."""
    metrics = []
    tdp = peak.value("tdp_w")
    if tdp is not None and not has_energy_meter:
        metrics.append(Metric(f"{name}.inferences_per_joule_tdp_estimate", items_per_s / tdp, "1/J", "info",
                              "higher", summary={"estimate": "from the TDP, not measured: assumes the device draws "
                                                 "its full TDP, never gated", "tdp_w": tdp,
                                                 "tdp_source": peak.value_source("tdp_w")}, sections=("ceiling",)))
    price = peak.value("list_price_usd")
    if price is not None:
        metrics.append(Metric(f"{name}.inferences_per_s_per_kusd", items_per_s / (price / 1e3), "1/s/k$", "info",
                              "higher", summary={"list_price_usd": price,
                                                 "price_source": peak.value_source("list_price_usd")},
                              sections=("ceiling",)))
    hourly, hourly_source = hourly_price_usd, "given (--accel-hourly-price)"
    if hourly is None and peak.value("cloud_price_usd_per_hour") is not None:
        hourly, hourly_source = peak.value("cloud_price_usd_per_hour"), peak.value_source("cloud_price_usd_per_hour")
    if hourly is not None:
        metrics.append(Metric(f"{name}.usd_per_million", hourly / (items_per_s * 3600) * 1e6, "$", "info", "lower",
                              summary={"usd_per_hour": hourly, "price_source": hourly_source}, sections=("ceiling",)))
    return metrics


__all__ = ["WorkCount", "bandwidth_share_metric", "count_torch", "count_training_step", "roofline_metric",
           "share_metric", "value_metrics"]
