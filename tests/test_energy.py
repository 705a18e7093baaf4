"""Energy per inference: the measurement on a virtual clock with a fake meter that updates like NVML's counter, the
NVML meter against a fake ``pynvml`` (no GPU here), and the energy check's life cycle in a toy project."""

from __future__ import annotations

import math
import re
import sys
import types
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_accel.devices import Device, DeviceInfo, EnergyMeter
from pytest_accel.devices.nvml import NVML_UPDATE_PERIOD_S, open_nvml_meter
from pytest_accel.energy import MIN_PERIODS, measure_energy
from pytest_accel.errors import DeviceFailure, WorkloadUnsupported
from pytest_accel.metrics import KINDS
from pytest_accel.options import OPT_GATE, OPT_MISSING, OPT_SUMMARY
from pytest_accel.tolerances import OPT_TOLERANCE
from tests.helpers import baseline_files, literal, load_json


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


# -- NVML, against a fake pynvml module (the one place a fake is honest: no GPU here) --------------------------------


class FakeNVMLError(Exception):
    pass


def fake_pynvml(gpus: dict[str, tuple[str, int]], *, init_error: str | None = None,
                unsupported: bool = False) -> types.ModuleType:
    """Two or more GPUs by PCI bus id -> (UUID, millijoules); NVML's own order is the bus order."""
    module = types.ModuleType("pynvml")
    module.NVMLError = FakeNVMLError  # type: ignore[attr-defined]
    calls: list[str] = []
    module.calls = calls  # type: ignore[attr-defined]

    def init() -> None:
        calls.append("init")
        if init_error:
            raise FakeNVMLError(init_error)

    def by_bus(bus: str) -> str:
        if bus not in gpus:
            raise FakeNVMLError("Not Found")
        return bus

    def by_uuid(uuid: str) -> str:
        for bus, (known, _) in gpus.items():
            if known == uuid:
                return bus
        raise FakeNVMLError("Not Found")

    def energy(handle: str) -> int:
        if unsupported:
            raise FakeNVMLError("Not Supported")
        return gpus[handle][1]

    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: calls.append("shutdown")  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByPciBusId = by_bus  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByUUID = by_uuid  # type: ignore[attr-defined]
    module.nvmlDeviceGetTotalEnergyConsumption = energy  # type: ignore[attr-defined]
    return module


GPUS = {"00000000:3b:00.0": ("GPU-aaaa-1111", 5_000), "00000000:86:00.0": ("GPU-bbbb-2222", 9_000_123)}


def properties(bus: int = 0x86, uuid: str = "bbbb-2222") -> SimpleNamespace:
    """What torch.cuda.get_device_properties gives for the second GPU (cuda:0 when CUDA_VISIBLE_DEVICES=1)."""
    return SimpleNamespace(pci_domain_id=0, pci_bus_id=bus, pci_device_id=0, uuid=uuid)


def test_the_nvml_meter_reads_the_gpu_with_torchs_bus_id_not_its_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(GPUS))
    meter, reason = open_nvml_meter(properties())
    assert meter is not None and reason == ""
    assert meter.read_joules() == pytest.approx(9000.123)
    assert meter.update_period_s == NVML_UPDATE_PERIOD_S and meter.resolution_j == 1e-3
    assert "PCI bus id 00000000:86:00.0" in meter.describe()


def test_the_nvml_meter_falls_back_to_the_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(GPUS))
    meter, _ = open_nvml_meter(properties(bus=0x99))  # a bus id NVML does not know (say, behind a VM's remapping)
    assert meter is not None and meter.read_joules() == pytest.approx(9000.123)
    assert "UUID GPU-bbbb-2222" in meter.describe()


@pytest.mark.parametrize(
    ("pynvml", "props", "reason"),
    [(fake_pynvml(GPUS, init_error="Driver Not Loaded"), properties(), "NVML did not initialise: Driver Not Loaded"),
     (fake_pynvml(GPUS), properties(bus=0x99, uuid="cccc"),
      re.escape("NVML finds no GPU matching this CUDA device (by PCI bus id 00000000:99:00.0: Not Found; by UUID "
                "GPU-cccc: Not Found)")),
     (fake_pynvml(GPUS, unsupported=True), properties(),
      re.escape("the GPU (PCI bus id 00000000:86:00.0) has no energy counter: nvmlDeviceGetTotalEnergyConsumption: "
                "Not Supported")),
     (None, properties(), "pynvml is not importable .*pip install 'pytest-accel\\[nvidia\\]'")],
    ids=["init-fails", "no-such-gpu", "no-counter", "not-installed"],
)
def test_no_nvml_meter_says_why(monkeypatch: pytest.MonkeyPatch, pynvml: Any, props: Any, reason: str) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", pynvml)
    meter, why = open_nvml_meter(props)
    assert meter is None
    assert re.fullmatch(reason, why), why
    if pynvml is not None and "init" in pynvml.calls and "did not initialise" not in why:
        assert pynvml.calls.count("shutdown") == 1, "an init that found no meter must be balanced"


def test_the_real_pynvml_without_a_gpu_gives_no_meter_and_the_reason() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("NVML initialises here: this test is for machines without an NVIDIA driver")
    meter, why = open_nvml_meter(properties())
    assert meter is None and why.startswith("NVML did not initialise: "), why


def fake_cuda_device(monkeypatch: pytest.MonkeyPatch, props: SimpleNamespace) -> Device:
    """A TorchDevice whose type is cuda and whose torch reports ``props``: the CUDA branch without a GPU."""
    from pytest_accel.devices.torch import TorchDevice

    device = TorchDevice("cpu")
    cuda = SimpleNamespace(get_device_properties=lambda index: props)
    monkeypatch.setattr(device, "type", "cuda")
    monkeypatch.setattr(device, "torch", SimpleNamespace(version=SimpleNamespace(hip=None), cuda=cuda))
    return device


def test_a_cuda_device_offers_the_nvml_meter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(GPUS))
    device = fake_cuda_device(monkeypatch, properties())
    meter = device.energy_meter()
    assert meter is not None and meter.read_joules() == pytest.approx(9000.123)


def test_a_cuda_device_where_nvml_fails_has_no_meter_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(GPUS, init_error="Driver Not Loaded"))
    device = fake_cuda_device(monkeypatch, properties())
    assert device.energy_meter() is None
    assert device.no_energy_meter_reason == "NVML did not initialise: Driver Not Loaded"
    with pytest.raises(WorkloadUnsupported, match="no energy metrics: NVML did not initialise: Driver Not Loaded"):
        measure_energy("toy", lambda: None, device)


def test_the_cpu_has_no_meter() -> None:
    from pytest_accel.devices.torch import TorchDevice

    device = TorchDevice("cpu")
    assert device.energy_meter() is None
    assert device.no_energy_meter_reason == "device cpu (torch backend) offers no energy meter"


# -- the energy check in a toy project --------------------------------------------------------------------------------

#: A backend with a metered device (power from power.txt, counter updated every 50 ms in whole millijoules) and one
#: without a meter, both on a virtual clock the workload advances: no real time passes, so the values are exact.
METER_CONFTEST = """
import math
from pathlib import Path

import pytest

from pytest_accel.devices import Backend, Device, DeviceInfo, EnergyMeter

_now = [1000.0]


class FakeMeter(EnergyMeter):
    name = "fake meter"
    update_period_s = 0.05
    resolution_j = 1e-3

    def __init__(self, watts):
        self.watts = watts

    def read_joules(self):
        updated_at = math.floor(_now[0] / self.update_period_s) * self.update_period_s
        return math.floor(self.watts * updated_at * 1e3) * 1e-3


class MeterBox(Device):
    runtime = "python"

    def describe(self):
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="Acme", model=self.spec)

    def energy_meter(self):
        if self.spec == "nometer":
            return None
        return FakeMeter(float(Path("power.txt").read_text()))


class MeterBackend(Backend):
    name = "meterbox"
    grammar = "meterbox, nometer"

    def parse(self, spec):
        return spec if spec in ("meterbox", "nometer") else None

    def discover(self):
        return ["meterbox", "nometer"]

    def open(self, spec):
        return MeterBox(spec, self.name)


def pytest_accel_register_backends(registry):
    registry.register(MeterBackend())


@pytest.fixture
def clock():
    return lambda: _now[0]


@pytest.fixture
def infer():
    def run():
        _now[0] += 0.004
    return run
"""

ENERGY_TEST = """
from pytest_accel.energy import measure_energy

def test_energy(accel, device, clock, infer):
    accel.check(*measure_energy("toy", infer, device, clock=clock).metrics())
"""


@pytest.fixture
def energy_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(METER_CONFTEST)
    pytester.makepyfile(test_toy=ENERGY_TEST)
    pytester.path.joinpath("power.txt").write_text("50")
    return pytester


def test_energy_life_cycle(energy_project: pytest.Pytester) -> None:
    project = energy_project
    result = project.runpytest("--device=meterbox", f"{OPT_MISSING}=fail")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal("*toy.joules_per_inference [energy]: no baseline*")])

    project.runpytest("--device=meterbox", f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    [path] = baseline_files(project.path)
    stored = load_json(path)["metrics"]
    energy = stored["toy.joules_per_inference"]
    assert energy["kind"] == "energy" and energy["unit"] == "J" and energy["tolerance"] == 0.10
    assert abs(energy["value"] - 50 * 0.004) <= energy["summary"]["uncertainty"]
    assert energy["summary"]["mean_power_w"] == pytest.approx(50, rel=0.06)
    assert "toy.inferences_per_joule" not in stored, "reported only: the same fact as joules per inference"

    result = project.runpytest("--device=meterbox", f"{OPT_SUMMARY}=full")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*toy.joules_per_inference*mJ ± *mJ*pass*"])

    project.path.joinpath("power.txt").write_text("60")  # +20%, beyond the 10% default
    result = project.runpytest("--device=meterbox")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal("*toy.joules_per_inference [energy]: obtained 240 mJ ± *, expected 200 mJ, "
                                         "diff +20.0%, tolerance 0.1 (default)*")])

    project.runpytest("--device=meterbox", f"{OPT_GATE}=latency").assert_outcomes(passed=1)
    project.runpytest("--device=meterbox", f"{OPT_TOLERANCE}=energy=0.3").assert_outcomes(passed=1)
    project.runpytest("--device=meterbox", f"{OPT_GATE}=energy").assert_outcomes(failed=1)


def test_energy_tolerances_from_the_ini_and_the_marker(energy_project: pytest.Pytester) -> None:
    project = energy_project
    project.runpytest("--device=meterbox", f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    project.path.joinpath("power.txt").write_text("60")
    project.makeini("[pytest]\naccel_tolerance_energy = 0.3\n")
    project.runpytest("--device=meterbox").assert_outcomes(passed=1)
    project.makeini("[pytest]\naccel_tolerance_energy = 0.05\n")
    project.makepyfile(test_toy="import pytest\n" + ENERGY_TEST.replace(
        "def test_energy", "@pytest.mark.accel_tolerance(energy=0.3)\ndef test_energy"))
    project.runpytest("--device=meterbox").assert_outcomes(passed=1)


def test_a_device_without_a_meter_skips_with_the_reason_and_reports_nothing(energy_project: pytest.Pytester) -> None:
    project = energy_project
    result = project.runpytest("--device=nometer", f"{OPT_MISSING}=record", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no energy metrics: device nometer (meterbox backend) offers no energy meter*"])
    assert baseline_files(project.path) == []


def test_the_scorecard_has_an_energy_section(energy_project: pytest.Pytester) -> None:
    project = energy_project
    project.runpytest("--device=meterbox", f"{OPT_MISSING}=record", "--accel-scorecard=cards").assert_outcomes(
        passed=1)
    [card] = project.path.joinpath("cards").glob("*.md")
    text = card.read_text()
    assert "## Energy" in text
    row = "| toy | - | toy.joules_per_inference | 200 mJ | 10 mJ | 50 W | fake meter, period 50 ms | recorded |"
    assert row in text
    assert "| toy | - | toy.inferences_per_joule | 5 1/J | 0.25" in text


#: the backend kit's energy part, on the toy backend's metered device and on one whose counter goes back
METER_CONTRACT = """
from conftest import FakeMeter, MeterBackend, MeterBox
from pytest_accel.testing import BackendContract


class BackwardsMeter(FakeMeter):
    def __init__(self):
        super().__init__(50.0)
        self.reads = 0

    def read_joules(self):
        self.reads += 1
        return 100.0 - self.reads


class BackwardsBox(MeterBox):
    def energy_meter(self):
        return BackwardsMeter()


class SilentBox(MeterBox):
    @property
    def no_energy_meter_reason(self):
        return ""


class Backwards(MeterBackend):
    def open(self, spec):
        return (SilentBox if spec == "nometer" else BackwardsBox)(spec, self.name)


class TestMeterBox(BackendContract):
    backend = MeterBackend()
    valid_specs = ["meterbox"]


class TestNoMeter(BackendContract):
    backend = MeterBackend()
    valid_specs = ["nometer"]


class TestBackwards(BackendContract):
    backend = Backwards()
    valid_specs = ["meterbox"]


class TestSilent(BackendContract):
    backend = Backwards()
    valid_specs = ["nometer"]
"""


def test_the_backend_kit_checks_the_energy_meter(energy_project: pytest.Pytester) -> None:
    energy_project.makepyfile(test_contract=METER_CONTRACT)
    result = energy_project.runpytest("-k", "energy_meter", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random([
        "*TestBackwards::test_energy_meter_is_none_with_a_reason_or_counts_up*",
        "*energy meter 'fake meter' read 99.0 J, then 98.0 J*never goes down*",
        "*TestSilent::test_energy_meter_is_none_with_a_reason_or_counts_up*",
        "*energy_meter() is None and no_energy_meter_reason is ''*",
    ])
