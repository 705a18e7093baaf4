"""Energy per inference measured on a virtual clock with a fake meter that updates like NVML's counter: power x
time within the stated uncertainty, queued work waited for, windows lengthened to the meter's periods, bad settings
and meters refused. (The NVML meter: test_nvml_meter; the check in a project: test_energy_check.)"""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_accel.devices import Device, DeviceInfo, EnergyMeter
from pytest_accel.energy import MIN_PERIODS, measure_energy
from pytest_accel.errors import DeviceFailure, WorkloadUnsupported
from pytest_accel.metrics import KINDS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SteppedMeter(EnergyMeter):
    """A counter at a constant power that, like NVML's, changes only every ``period`` and counts whole millijoules."""

    name = "stepped test meter"
    resolution_j = 1e-3

    def __init__(self, clock: Clock, watts: float, period: float) -> None:
        self.clock, self.watts, self.update_period_s = clock, watts, period

    def read_joules(self) -> float:
        updated_at = math.floor(self.clock.now / self.update_period_s) * self.update_period_s
        return math.floor(self.watts * updated_at * 1e3) * 1e-3


class MeteredDevice(Device):
    """Work is queued by the workload and done (the clock advanced) only at synchronize, as on a GPU."""

    def __init__(self, meter: EnergyMeter | None, clock: Clock) -> None:
        super().__init__("metered", "test")
        self.meter, self.clock, self.queued = meter, clock, 0.0
        self.synchronized = 0

    def describe(self) -> DeviceInfo:
        return DeviceInfo(backend="test", spec=self.spec, vendor="Acme", model="metered")

    def energy_meter(self) -> EnergyMeter | None:
        return self.meter

    def synchronize(self) -> None:
        self.clock.now += self.queued
        self.queued = 0.0
        self.synchronized += 1

    def launch(self, seconds: float) -> None:
        self.queued += seconds
        self.clock.now += 1e-6  # the launch itself


def metered(watts: float = 50.0, period: float = 0.05) -> tuple[MeteredDevice, SteppedMeter, Clock]:
    clock = Clock()
    meter = SteppedMeter(clock, watts, period)
    return MeteredDevice(meter, clock), meter, clock


def test_energy_per_inference_is_power_times_time_within_the_stated_uncertainty() -> None:
    device, meter, clock = metered(watts=50.0, period=0.05)
    measurement = measure_energy("toy", lambda: device.launch(0.004), device, clock=clock)
    per_inference, per_joule = measurement.metrics()
    true_value = 50.0 * (0.004 + 1e-6)
    summary = per_inference.summary
    assert per_inference.name == "toy.joules_per_inference" and per_inference.unit == "J"
    assert per_inference.kind == "energy" and per_inference.direction == "lower"
    assert 0 < summary["uncertainty"] < 0.1 * true_value
    assert abs(per_inference.value - true_value) <= summary["uncertainty"]
    assert summary["windows"] == 5 and summary["window_s"] == pytest.approx(1.0)
    assert summary["mean_power_w"] == pytest.approx(50.0, rel=0.06)
    assert summary["meter"] == "stepped test meter" and summary["update_period_s"] == 0.05
    # half a period of staleness at each end, at 50 W, over a window of ~250 inferences
    assert summary["quantisation"] == pytest.approx((50.0 * 0.05 + 1e-3) / 250, rel=0.05)
    assert per_joule.name == "toy.inferences_per_joule" and per_joule.unit == "1/J"
    assert per_joule.kind == "info" and per_joule.direction == "higher"
    assert per_joule.value == pytest.approx(1 / per_inference.value)
    assert per_joule.summary["uncertainty_relative"] == pytest.approx(summary["uncertainty_relative"])


def test_the_work_queued_before_a_window_ends_is_waited_for() -> None:
    """Without a synchronize before the closing read, a window would count queued inferences but not their energy:
    the value would come out far below power x time."""
    device, _, clock = metered(watts=20.0, period=0.02)
    value = measure_energy("toy", lambda: device.launch(0.01), device, clock=clock).joules_per_inference
    assert value == pytest.approx(20.0 * 0.01, rel=0.05)


def test_a_too_short_window_is_lengthened_to_the_meters_periods() -> None:
    device, meter, clock = metered(watts=10.0, period=0.2)
    measurement = measure_energy("toy", lambda: device.launch(0.01), device, clock=clock, window_s=0.05, windows=3)
    assert measurement.requested_window_s == 0.05
    assert measurement.window_s == pytest.approx(MIN_PERIODS * 0.2)
    assert all(window.seconds >= MIN_PERIODS * 0.2 for window in measurement.windows)
    assert measurement.joules_per_inference == pytest.approx(10.0 * 0.01, rel=0.03)


def test_a_device_without_a_meter_is_unsupported_with_the_reason() -> None:
    device = MeteredDevice(None, Clock())
    with pytest.raises(WorkloadUnsupported, match="device metered .test backend. offers no energy meter"):
        measure_energy("toy", lambda: None, device)


def test_a_meter_that_does_not_advance_fails_instead_of_reporting_zero() -> None:
    device, meter, clock = metered(watts=0.0)
    with pytest.raises(DeviceFailure, match="counted 0.0 J over a"):
        measure_energy("toy", lambda: device.launch(0.004), device, clock=clock)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [({"windows": 2}, "windows=2 must be an integer >= 3"), ({"window_s": 0}, "window_s=0 must be a finite"),
     ({"window_s": float("nan")}, "window_s=nan"), ({"batch_size": 0}, "batch_size=0 must be an integer >= 1")],
)
def test_bad_measurement_settings_are_named(keywords: dict[str, Any], message: str) -> None:
    device, _, clock = metered()
    with pytest.raises(ValueError, match=message):
        measure_energy("toy", lambda: None, device, clock=clock, **keywords)


def test_a_meter_without_an_update_period_is_refused() -> None:
    device, meter, clock = metered()
    meter.update_period_s = 0.0
    with pytest.raises(ValueError, match="stepped test meter.*update_period_s=0.0 must be a finite number"):
        measure_energy("toy", lambda: None, device, clock=clock)


def test_energy_is_a_gateable_relative_kind_that_is_not_a_speed() -> None:
    kind = KINDS["energy"]
    assert kind.gateable and kind.judgement == "relative" and kind.default_tolerance == 0.10
    assert not kind.speed and not kind.timed
