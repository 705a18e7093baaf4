"""The energy check in a toy project on a virtual clock: its life cycle (missing, recorded, pass, regression, gate,
tolerances from the CLI, the ini and the marker), a device without a meter skipped with the reason, the scorecard's
energy section, and the backend kit's energy-meter contract."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_GATE, OPT_MISSING, OPT_SUMMARY
from pytest_accel.tolerances import OPT_TOLERANCE
from tests.helpers import baseline_files, literal, load_json

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
