"""--accel-worker-per-device under pytest-xdist, with --device=slot:* expanded to every device of a kind: each
device's tests run on one worker, the devices at the same time, and no two timed rounds on one device overlap."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

#: four devices of one kind; each timed round sleeps (a device busy, the host idle) and writes its window
SLOTS_CONFTEST = """
import itertools
import json
import os
import time

from pytest_accel.devices import Backend, Device, DeviceInfo


class SlotDevice(Device):
    runtime = "python"

    def describe(self):
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="acme", model="slot")


class SlotBackend(Backend):
    name = "slot"
    grammar = "slot:N"

    def parse(self, spec):
        return spec if spec.startswith("slot:") and spec[5:].isdigit() else None

    def discover(self):
        return [f"slot:{i}" for i in range(4)]

    def open(self, spec):
        return SlotDevice(spec, self.name)


def pytest_accel_register_backends(registry):
    registry.register(SlotBackend())


def busy(device):
    def run():
        start = time.monotonic()
        time.sleep(float(os.environ.get("SLOT_SLEEP", "0.004")))
        with open(os.environ["SLOT_LOG"], "a") as log:
            log.write(json.dumps([device.spec, os.getpid(), start, time.monotonic()]) + "\\n")
    return run
"""

SLOTS_TEST = """
from conftest import busy

def test_first(accel, device):
    accel.check(*accel.measure_latency("slot.first", busy(device)).metrics())

def test_second(accel, device):
    accel.check(*accel.measure_latency("slot.second", busy(device)).metrics())
"""


def _run_pytest(pytester: pytest.Pytester, log: Path, *args: str) -> tuple[pytest.RunResult,
                                                                           list[tuple[str, int, float, float]]]:
    os.environ["SLOT_LOG"] = str(log)
    result = pytester.runpytest_subprocess("--device=slot:*", "--accel-profile=quick", "-p", "no:benchmark",
                                           "-p", "no:randomly", *args)
    result.assert_outcomes(passed=8)
    return result, [tuple(json.loads(line)) for line in log.read_text().splitlines()]  # type: ignore[misc]


def _run(pytester: pytest.Pytester, log: Path, *args: str) -> list[tuple[str, int, float, float]]:
    return _run_pytest(pytester, log, *args)[1]


def _span(rounds: list[tuple[str, int, float, float]]) -> float:
    return max(end for *_, end in rounds) - min(start for _, _, start, _ in rounds)


@pytest.fixture
def slots(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project of four sleeping slot devices whose timed rounds log their windows."""
    pytester.makeconftest(SLOTS_CONFTEST)
    pytester.makepyfile(test_slots=SLOTS_TEST)
    monkeypatch.setenv("SLOT_LOG", "")
    return pytester


@pytest.mark.workload  # xdist workers in fresh processes, a few seconds of real sleeps
def test_each_device_on_its_own_worker_in_parallel_never_overlapping_itself(slots: pytest.Pytester) -> None:
    pytester = slots
    one_process = _run(pytester, pytester.path / "sequential.jsonl")
    per_device = _run(pytester, pytester.path / "parallel.jsonl", "-n", "4", "--accel-worker-per-device")

    devices = {spec for spec, *_ in per_device}
    assert devices == {f"slot:{i}" for i in range(4)}
    for spec in devices:
        rounds = sorted((start, end, pid) for device, pid, start, end in per_device if device == spec)
        assert len({pid for *_, pid in rounds}) == 1, f"{spec} was timed by more than one worker"
        assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(rounds)), f"{spec} overlapped"
    assert len({pid for _, pid, _, _ in per_device}) == 4  # one worker each
    # the devices ran at the same time: the wall time of the timed rounds falls with the number of devices
    assert _span(per_device) < 0.6 * _span(one_process)


def _overlaps(rounds: list[tuple[str, int, float, float]]) -> int:
    """Pairs of timed rounds of different devices that ran at the same moment."""
    ordered = sorted(rounds, key=lambda r: r[2])
    return sum(1 for earlier, later in itertools.pairwise(ordered) if later[2] < earlier[3] and later[0] != earlier[0])


def _switches(rounds: list[tuple[str, int, float, float]]) -> int:
    ordered = [device for device, *_ in sorted(rounds, key=lambda r: r[2])]
    return sum(1 for a, b in itertools.pairwise(ordered) if a != b)


@pytest.mark.workload  # xdist workers in fresh processes, a few seconds of real sleeps
def test_devices_in_turns_interleave_their_timed_rounds_and_never_time_two_at_once(slots: pytest.Pytester) -> None:
    pytester = slots
    free = _run(pytester, pytester.path / "free.jsonl", "-n", "4", "--accel-worker-per-device")
    result, in_turns = _run_pytest(pytester, pytester.path / "turns.jsonl", "-n", "4", "--accel-worker-per-device",
                                   "--accel-devices-in-turns")
    assert _overlaps(free) > 0  # the check sees overlaps where there are some
    assert _overlaps(in_turns) == 0
    # each test's rounds are handed over in slices: the devices' rounds alternate, not one device's block after another
    per_test_blocks = 2 * 4
    assert _switches(in_turns) > 3 * per_test_blocks
    assert len({pid for _, pid, _, _ in in_turns}) == 4
    # the summary says how often the turn changed hands during tests
    line = next(line for line in result.outlines if line.startswith("devices in turns:"))
    handovers = int(line.split("changed hands ")[1].split()[0])
    assert "4 workers, 8 timed tests" in line and handovers > 3 * per_test_blocks - 8


@pytest.mark.workload  # xdist workers in fresh processes
def test_devices_in_turns_says_when_tests_were_too_short_to_interleave(slots: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOT_SLEEP", "0")  # 200 rounds of a few microseconds: each test's rounds fit in one turn
    result, rounds = _run_pytest(slots, slots.path / "short.jsonl", "-n", "4", "--accel-worker-per-device",
                                 "--accel-devices-in-turns")
    assert _overlaps(rounds) == 0
    result.stdout.fnmatch_lines(["devices in turns: the turn changed hands only * time(s) during 8 timed tests: most "
                                 "tests' timed rounds took less than one turn (0.2 s), so their devices were timed "
                                 "one after the other, not interleaved; a longer timing profile interleaves them*"])


def test_devices_in_turns_needs_a_worker_per_device(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SLOTS_CONFTEST)
    pytester.makepyfile(test_slots=SLOTS_TEST)
    result = pytester.runpytest("--device=slot:0", "-p", "no:benchmark", "--accel-devices-in-turns")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--accel-devices-in-turns makes the workers of --accel-worker-per-device take "
                                 "turns: give it with --accel-worker-per-device and -n N*"])


def test_the_option_refuses_another_xdist_distribution(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SLOTS_CONFTEST)
    pytester.makepyfile(test_slots=SLOTS_TEST)
    result = pytester.runpytest("--device=slot:0", "-p", "no:benchmark", "-n", "2", "--dist=loadscope",
                                "--accel-worker-per-device")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--accel-worker-per-device schedules the workers itself (one per device); it "
                                 "cannot be combined with --dist=loadscope*"])


@pytest.mark.parametrize(("nodeid", "device"), [
    ("suites/test_detection.py::test_latency[fp32-cuda-1]", "cuda-1"),
    ("suites/test_detection.py::test_latency[fp32-cuda-11]", "cuda-11"),
    ("suites/test_detection.py::test_latency[cuda-1-fp32]", "cuda-1"),
    ("suites/test_matmul.py::test_matmul_latency[ort-cpu]", "ort-cpu"),
    ("suites/test_matmul.py::test_matmul_latency[cpu]", "cpu"),
    ("tests/test_x.py::test_plain", None),
    ("tests/test_x.py::test_other[fp32]", None),
])
def test_the_scheduler_reads_the_device_from_the_node_id(nodeid: str, device: str | None) -> None:
    from pytest_accel.workers import device_scope

    assert device_scope(nodeid, ["cpu", "ort-cpu", "cuda-1", "cuda-11"]) == device
