from __future__ import annotations

# pytester's in-process runs drop modules first imported inside them; a second import of torch's or
# onnxruntime's (or numpy.fft's, via scipy) C extension then crashes or fails. Importing them here keeps
# them loaded across runs.
import onnx  # noqa: F401,E402
import onnxruntime  # noqa: F401,E402
import pytest
import scipy.stats  # noqa: F401,E402
import torch  # noqa: F401,E402

from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics  # noqa: E402
from tests.helpers import ACCURACY_TEST, LATENCY_TEST

import_ultralytics()  # the suite-option tests load weights and data sets inside pytester runs

pytest_plugins = ["pytester"]


@pytest.fixture
def accuracy_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_toy=ACCURACY_TEST)
    pytester.path.joinpath("value.txt").write_text("0.90")
    return pytester


#: The toy latency project's own clock and device. Its workloads advance the clock by exactly what they are asked to
#: take (with 2% of random jitter, as rounds differ), so the plugin's verdicts on them follow the injected
#: slowdowns and never how busy the machine running the tests is: a wall-clock spin beside a busy neighbour is
#: stretched by preemption, and its round-time spread rightly reads as a disturbed machine. The device has no
#: calibration probe (a probe's real work would take no time on this clock); the probe's part of the verdicts is
#: tested on synthetic rounds in test_compare, test_verdict_branches and test_history_gate, and on real rounds by
#: the suites' tests. pytest-benchmark keeps its own timer, so the rounds run in the plugin's local loop.
CLOCKED_CONFTEST = """
import random
import time

import pytest

from pytest_accel.devices import Backend, Device, DeviceInfo

_real_perf_counter = time.perf_counter
_now = [1000.0]
_jitter = random.Random()


def _virtual_perf_counter():
    return _now[0]


def _spin(seconds):
    _now[0] += seconds * (1 + 0.02 * (2 * _jitter.random() - 1))


@pytest.fixture
def spin():
    return _spin


def pytest_configure(config):
    time.perf_counter = _virtual_perf_counter


def pytest_unconfigure(config):
    time.perf_counter = _real_perf_counter


class SpinDevice(Device):
    runtime = "python"

    def describe(self):
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="host", model="spin loop")

class SpinBackend(Backend):
    name = "spin"
    grammar = "spin"

    def parse(self, spec):
        return spec if spec == "spin" else None

    def discover(self):
        return ["spin"]

    def open(self, spec):
        return SpinDevice(spec, self.name)

def pytest_accel_register_backends(registry):
    registry.register(SpinBackend())
"""

CLOCKED_LATENCY_TEST = """
from pathlib import Path

def test_latency(accel, spin):
    delay = float(Path(__file__).with_name("delay.txt").read_text())
    accel.check(*accel.measure_latency("toy", lambda: spin(delay)).metrics())
"""


@pytest.fixture
def clocked_latency_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A toy latency test on the spin device and its own clock: 2 ms a call until delay.txt says otherwise."""
    pytester.makepyfile(test_toy=CLOCKED_LATENCY_TEST)
    pytester.makeconftest(CLOCKED_CONFTEST)
    pytester.makeini("[pytest]\naddopts = --device=spin --accel-profile=quick --benchmark-disable\n")
    pytester.path.joinpath("delay.txt").write_text("0.002")
    return pytester


@pytest.fixture
def latency_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """The toy latency test on the CPU device with real timing (a wall-clock spin) and the calibration probe: for
    what is recorded and how, not for verdicts on slowdowns (those: clocked_latency_project)."""
    pytester.makepyfile(test_toy=LATENCY_TEST)
    pytester.path.joinpath("delay.txt").write_text("0.002")
    return pytester


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs must not append to this project's own CI page when its tests run under GitHub Actions."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
