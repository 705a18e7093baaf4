"""A device's peak as the run uses it: a datasheet entry, the host CPU's own estimate, or none (and why).

Shares of peak, the roofline and the per-joule and per-dollar figures all read a :class:`DevicePeak`, so each of
them states the same source for the same number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_accel.datasheet import Datasheet, Spec
from pytest_accel.datasheet.cpu import CpuPeak

if TYPE_CHECKING:
    from pytest_accel.devices import Device


@dataclass(frozen=True)
class DevicePeak:
    device_name: str
    spec: Spec | None = None
    cpu: CpuPeak | None = None
    #: why there is no peak (no entry matches, the estimate failed)
    missing: str = ""

    @property
    def origin(self) -> str:
        if self.spec is not None:
            return f"datasheet entry {self.spec.id!r} ({self.spec.name})"
        if self.cpu is not None:
            return "estimate from the host CPU's instruction sets"
        return "none"

    @property
    def estimated(self) -> bool:
        return self.spec is None and self.cpu is not None

    def tflops(self, precision: str) -> float | None:
        """Peak dense TFLOPS (TOPS for integers) in ``precision``; None where the source gives none."""
        if self.spec is not None:
            return self.spec.peak_tflops.get(precision)
        return self.cpu.tflops(precision) if self.cpu is not None else None

    def source(self, precision: str) -> str:
        if self.spec is not None:
            return self.spec.source_of(f"peak_tflops.{precision}").describe()
        if self.cpu is not None and precision in self.cpu.per_cycle:
            return f"estimate: {self.cpu.formula(precision)}; clock from {self.cpu.clock.source}"
        return self.missing or f"no {precision} peak"

    def value(self, name: str) -> float | None:
        """A datasheet value (``memory_bandwidth_gbs``, ``tdp_w``, ``list_price_usd``...); the CPU estimate gives
        only the bandwidth, where the host lists its memory modules."""
        if self.spec is not None:
            return self.spec.values.get(name)
        if self.cpu is not None and name == "memory_bandwidth_gbs":
            return self.cpu.bandwidth_gbs
        return None

    def value_source(self, name: str) -> str:
        if self.spec is not None and name in self.spec.values:
            return self.spec.source_of(name).describe()
        if self.cpu is not None and name == "memory_bandwidth_gbs" and self.cpu.bandwidth_gbs:
            return self.cpu.bandwidth_source
        return "not given"

    def summary(self) -> dict[str, Any]:
        """What the report shows of this peak: its origin and every figure with its source."""
        out: dict[str, Any] = {"device_name": self.device_name, "origin": self.origin, "estimated": self.estimated}
        if self.missing:
            out["missing"] = self.missing
        if self.spec is not None:
            out["peak_tflops"] = dict(self.spec.peak_tflops)
            out["values"] = dict(self.spec.values)
            out["sources"] = {name: source.describe() for name, source in self.spec.sources.items()}
            out["notes"] = self.spec.notes
        elif self.cpu is not None:
            out["peak_tflops"] = {p: self.cpu.tflops(p) for p in self.cpu.per_cycle}
            out["values"] = {"memory_bandwidth_gbs": self.cpu.bandwidth_gbs} if self.cpu.bandwidth_gbs else {}
            out["estimate"] = self.cpu.summary()
        return out


def device_name(device: Device) -> str:
    info = device.info
    return f"{info.vendor} {info.model}".strip()


def peak_for(device: Device, datasheet: Datasheet, *, cpu_ghz: float | None = None) -> DevicePeak:
    """The datasheet entry matching the name the device's backend reports; for the host CPU without one, the
    estimate from its own instruction sets (with the cores the device uses; at ``cpu_ghz`` where given)."""
    name = device_name(device)
    spec = datasheet.lookup(name)
    if spec is not None:
        return DevicePeak(name, spec=spec)
    if device.is_host_cpu:
        from pytest_accel.datasheet.cpu import host_estimate

        try:
            return DevicePeak(name, cpu=host_estimate(device.info.cores, cpu_ghz))
        except ValueError as error:
            return DevicePeak(name, missing=f"the host CPU's peak cannot be estimated: {error}")
    return DevicePeak(name, missing=f"no datasheet entry matches {name!r} (add one with --accel-datasheet FILE; "
                                    f"schema in docs/datasheet.md)")


__all__ = ["DevicePeak", "device_name", "peak_for"]
