"""Energy per inference from a device's energy meter (:class:`~pytest_accel.devices.EnergyMeter`).

A meter's counter changes only every update period, so a read can be up to one period stale. Energy is therefore
measured over windows at least :data:`MIN_PERIODS` update periods and :data:`MIN_WINDOW_S` long, running the workload
back to back, synchronised at both ends, with the counter read at the boundaries. A window is sized in calls, from a
synchronised warm-up, not by watching the host's clock: an asynchronous device accepts calls far faster than it
runs them. Several windows are measured; the
value is their median and its uncertainty is the spread across windows (half their range) plus the quantisation
of one window: one update period's worth of energy at the window's power, plus the counter's resolution, divided by
the window's inferences.

Independent of pytest: the suites call :func:`measure_energy` with the device, the workload and (in tests) a clock.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from pytest_accel.errors import DeviceFailure, WorkloadUnsupported
from pytest_accel.metrics import Metric

if TYPE_CHECKING:
    from pytest_accel.devices import Device, EnergyMeter

#: a window spans at least this many update periods: one period's staleness is then at most 5% of its energy
MIN_PERIODS = 20
#: and at least this long, so that short-period meters still average over the workload's power swings
MIN_WINDOW_S = 1.0
WINDOWS = 5
#: fewer windows give no median and spread worth the name
MIN_WINDOWS = 3


@dataclass(frozen=True)
class EnergyWindow:
    """One window: how many inferences ran in it, how long it took and the energy the meter counted."""

    inferences: int
    seconds: float
    joules: float

    @property
    def joules_per_inference(self) -> float:
        return self.joules / self.inferences

    @property
    def watts(self) -> float:
        return self.joules / self.seconds

    def quantisation_j(self, meter: EnergyMeter) -> float:
        """How far this window's energy per inference can be off from the counter's staleness and resolution."""
        return (self.watts * meter.update_period_s + meter.resolution_j) / self.inferences


def window_seconds(requested: float, meter: EnergyMeter) -> float:
    """The window length used: ``requested``, lengthened to :data:`MIN_PERIODS` of the meter's update periods."""
    return max(requested, MIN_PERIODS * meter.update_period_s)


@dataclass
class EnergyMeasurement:
    name: str
    meter: EnergyMeter
    windows: list[EnergyWindow]
    requested_window_s: float
    window_s: float
    batch_size: int = 1

    @property
    def joules_per_inference(self) -> float:
        """Median over the windows of the energy per inference (per item of a batch)."""
        return statistics.median(w.joules_per_inference for w in self.windows) / self.batch_size

    @property
    def spread_j(self) -> float:
        per_window = [w.joules_per_inference / self.batch_size for w in self.windows]
        return (max(per_window) - min(per_window)) / 2

    @property
    def quantisation_j(self) -> float:
        return statistics.median(w.quantisation_j(self.meter) for w in self.windows) / self.batch_size

    @property
    def uncertainty_j(self) -> float:
        return self.spread_j + self.quantisation_j

    @property
    def mean_power_w(self) -> float:
        return sum(w.joules for w in self.windows) / sum(w.seconds for w in self.windows)

    def summary(self) -> dict[str, Any]:
        value = self.joules_per_inference
        return {
            "uncertainty": self.uncertainty_j,
            "uncertainty_relative": self.uncertainty_j / value,
            "spread": self.spread_j,
            "quantisation": self.quantisation_j,
            "windows": len(self.windows),
            "window_s": self.window_s,
            "requested_window_s": self.requested_window_s,
            "inferences_per_window": min(w.inferences for w in self.windows),
            "mean_power_w": self.mean_power_w,
            "meter": self.meter.name,
            "update_period_s": self.meter.update_period_s,
            "resolution_j": self.meter.resolution_j,
            "batch_size": self.batch_size,
            "window_joules_per_inference": [w.joules_per_inference / self.batch_size for w in self.windows],
        }

    def metrics(self) -> list[Metric]:
        """Joules per inference (kind energy, gated) and its inverse, inferences per joule (info: the same fact,
        so gating both would count one change twice)."""
        value = self.joules_per_inference
        summary = self.summary()
        relative = summary["uncertainty_relative"]
        return [
            Metric(f"{self.name}.joules_per_inference", value, "J", "energy", "lower", summary=summary),
            Metric(f"{self.name}.inferences_per_joule", 1 / value, "1/J", "info", "higher",
                   summary={"uncertainty": relative / value, "uncertainty_relative": relative,
                            "mean_power_w": self.mean_power_w, "meter": self.meter.name,
                            "update_period_s": self.meter.update_period_s, "batch_size": self.batch_size},
                   sections=("energy",)),
        ]


def _check_meter(meter: EnergyMeter) -> None:
    period, resolution = meter.update_period_s, meter.resolution_j
    if not (isinstance(period, (int, float)) and math.isfinite(period) and period > 0):
        raise ValueError(f"energy meter {meter.name!r}: update_period_s={period!r} must be a finite number of "
                         "seconds > 0")
    if not (isinstance(resolution, (int, float)) and math.isfinite(resolution) and resolution >= 0):
        raise ValueError(f"energy meter {meter.name!r}: resolution_j={resolution!r} must be a finite number of "
                         "joules >= 0")


#: calls a window may hold before a workload that takes no time on the clock is given up on
MAX_CALLS = 1 << 24


def _seconds_per_call(fn: Callable[[], object], device: Device, clock: Callable[[], float], at_least: float) -> float:
    """Synchronised calls in doubling batches until a batch takes ``at_least`` seconds: the warm-up, and how long
    one call takes to finish (an asynchronous device accepts calls far faster than it completes them, so windows
    are sized in calls, not by watching the host's clock)."""
    batch = 1
    while True:
        device.synchronize()
        start = clock()
        for _ in range(batch):
            fn()
        device.synchronize()
        elapsed = clock() - start
        if elapsed >= at_least:
            return elapsed / batch
        if batch >= MAX_CALLS:
            raise DeviceFailure(f"{batch} calls took {elapsed!r} s on {device.spec}: the workload takes no time on "
                                "this clock, so no energy window can be timed")
        batch *= 2


def _run_window(fn: Callable[[], object], device: Device, clock: Callable[[], float], length: float,
                per_call: float) -> tuple[int, float]:
    """Calls back to back until at least ``length`` seconds have passed with all of them finished: (calls,
    seconds). Synchronised at the start and end; in between only if the calls ran faster than ``per_call`` said."""
    device.synchronize()
    start = clock()
    calls, elapsed = 0, 0.0
    while elapsed < length:
        batch = max(1, math.ceil((length - elapsed) / per_call))
        if calls + batch > MAX_CALLS:
            raise DeviceFailure(f"{calls + batch} calls would not fill a {length:.3g} s window on {device.spec}")
        for _ in range(batch):
            fn()
        calls += batch
        device.synchronize()
        elapsed = clock() - start
        per_call = max(elapsed / calls, 1e-12)
    return calls, elapsed


def measure_energy(
    name: str,
    fn: Callable[[], object],
    device: Device,
    *,
    windows: int = WINDOWS,
    window_s: float = MIN_WINDOW_S,
    batch_size: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> EnergyMeasurement:
    """Energy per inference of ``fn`` (one inference on ``device``) over ``windows`` windows of at least
    ``window_s`` seconds and :data:`MIN_PERIODS` meter periods each, timed by ``clock``.

    Raises :class:`WorkloadUnsupported` (the test is skipped) on a device without a meter, and
    :class:`DeviceFailure` when the meter counts no energy over a window.
    """
    if not (isinstance(windows, int) and windows >= MIN_WINDOWS):
        raise ValueError(f"windows={windows!r} must be an integer >= {MIN_WINDOWS} (fewer show no spread)")
    if not (isinstance(window_s, (int, float)) and math.isfinite(window_s) and window_s > 0):
        raise ValueError(f"window_s={window_s!r} must be a finite number of seconds > 0")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size={batch_size!r} must be an integer >= 1")
    meter = device.energy_meter()
    if meter is None:
        raise WorkloadUnsupported(f"no energy metrics: {device.no_energy_meter_reason}")
    _check_meter(meter)
    length = window_seconds(window_s, meter)

    per_call = _seconds_per_call(fn, device, clock, meter.update_period_s)
    measured = []
    for _ in range(windows):
        device.synchronize()
        start_j = meter.read_joules()
        calls, seconds = _run_window(fn, device, clock, length, per_call)
        joules = meter.read_joules() - start_j
        if not (math.isfinite(joules) and joules > 0):
            raise DeviceFailure(
                f"energy meter {meter.name!r} of {device.spec} counted {joules!r} J over a {seconds:.3g} s window of "
                f"{calls} inference(s): a counter that does not advance (or went back: a driver reload) cannot "
                "measure energy")
        measured.append(EnergyWindow(calls, seconds, joules))
    return EnergyMeasurement(name, meter, measured, requested_window_s=window_s, window_s=length,
                             batch_size=batch_size)


__all__ = ["EnergyMeasurement", "EnergyWindow", "measure_energy", "window_seconds"]
