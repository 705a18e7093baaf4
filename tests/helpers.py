"""Inner test files and small helpers shared by the plugin tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

#: the repository's checkout, whose suites the tests copy into pytester projects
REPO = Path(__file__).parents[1]

#: An inner test whose "accuracy" comes from value.txt, so a run can be made better or worse at will.
ACCURACY_TEST = """
from pathlib import Path
from pytest_accel.metrics import Metric

def test_accuracy(accel):
    value = float(Path(__file__).with_name("value.txt").read_text())
    accel.check(Metric("toy.accuracy", value, "", "accuracy", "higher"))
"""

#: An inner test that really spins the CPU for delay.txt seconds per call and checks its latency.
LATENCY_TEST = """
import time
from pathlib import Path

def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

def test_latency(accel):
    delay = float(Path(__file__).with_name("delay.txt").read_text())
    accel.check(*accel.measure_latency("toy", lambda: spin(delay)).metrics())
"""


#: A conftest's device without PyTorch (`--device=host`): a project whose tests only need some device runs in a fresh
#: process or on xdist workers without importing torch, which costs each such process about 2 s here.
HOST_DEVICE_CONFTEST = """
from pytest_accel.devices import Backend, Device, DeviceInfo


class HostDevice(Device):
    runtime = "python"

    def describe(self):
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="host", model="python")


class HostBackend(Backend):
    name = "host"
    grammar = "host"

    def parse(self, spec):
        return spec if spec == "host" else None

    def discover(self):
        return ["host"]

    def open(self, spec):
        return HostDevice(spec, self.name)


def pytest_accel_register_backends(registry):
    registry.register(HostBackend())
"""


def baseline_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "baselines").rglob("*.json"))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def copy_suites(project: Path, *names: str, extra_conftest: str = "") -> Path:
    """Copy the repository's suites package (``__init__.py``, ``conftest.py``) and the named suite files into
    ``project/suites``; ``extra_conftest`` is appended to the copied conftest. Returns the folder."""
    suites = project / "suites"
    suites.mkdir(exist_ok=True)
    for name in ("__init__.py", "conftest.py", *names):
        shutil.copy(REPO / "suites" / name, suites / name)
    if extra_conftest:
        conftest = suites / "conftest.py"
        conftest.write_text(conftest.read_text() + "\n" + extra_conftest)
    return suites


def literal(text: str) -> str:
    """Escape fnmatch's brackets so a pattern can contain 'name [kind]' and 'test[cpu]' as they print."""
    return text.replace("[", "\x00").replace("]", "[]]").replace("\x00", "[[]")


#: the matmul suite's smoke tests, without its ceiling sweeps (tests that use the suite as a small real workload)
SMOKE_TESTS = "test_matmul_parity or test_matmul_latency"
