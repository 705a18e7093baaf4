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


#: A device without a calibration probe: the spin workload's verdicts then depend on its own rounds only, not on
#: how steady a 0.2 ms probe happens to be on a shared machine (the toy's 2 ms rounds leave it 2-3 repeats).
PROBELESS_CONFTEST = """
from pytest_accel.devices import Backend, Device, DeviceInfo

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


@pytest.fixture
def probeless_latency_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_toy=LATENCY_TEST)
    pytester.makeconftest(PROBELESS_CONFTEST)
    pytester.makeini("[pytest]\naddopts = --device=spin --accel-profile=quick\n")
    pytester.path.joinpath("delay.txt").write_text("0.002")
    return pytester


@pytest.fixture
def latency_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """The toy spins on the wall clock, which a busy machine does not stretch, while the probe's real work it does:
    judged on absolute times, its injected slowdowns hold beside a busy neighbour. (The probe's part of the verdict
    is tested on synthetic rounds in test_compare, test_verdict_branches and test_history_gate.)"""
    pytester.makepyfile(test_toy=LATENCY_TEST)
    pytester.makeini("[pytest]\naddopts = --accel-latency-basis=absolute\n")
    pytester.path.joinpath("delay.txt").write_text("0.002")
    return pytester
