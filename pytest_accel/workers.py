"""pytest-xdist: every worker sends what it measured and wrote to the controller, which merges it.

A worker's records live in its own process; at its session's end they travel as JSON in ``config.workeroutput``
(xdist hands that dict to the controller's ``pytest_testnodedown``), are rebuilt there, and the controller's
summary, report and unused-baseline listing see the whole run. Baseline writes stay in the workers, under the
store's file lock.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

from pytest_accel.devices import Device, DeviceInfo
from pytest_accel.records import verdict_from_dict, verdict_to_dict
from pytest_accel.session import AccelSession, TestRecord, WrittenBaseline

WORKER_OUTPUT_KEY = "pytest_accel"


def is_worker(config: pytest.Config) -> bool:
    return getattr(config, "workerinput", None) is not None


def schedule_one_worker_per_device(config: pytest.Config, device_ids: Callable[[], list[str]]) -> None:
    """--accel-worker-per-device: on the controller, xdist's scope scheduling with one scope per device (every test
    of a device on one worker, a worker per device while there are workers to spare). ``device_ids``: the run's
    devices' parameter ids (``ort-cpu``), read when xdist makes its scheduler."""
    from pytest_accel.options import OPT_WORKER_PER_DEVICE

    if not config.getoption(OPT_WORKER_PER_DEVICE) or is_worker(config):
        return
    dist = getattr(config.option, "dist", "no")
    if dist not in ("no", "load"):
        raise pytest.UsageError(f"{OPT_WORKER_PER_DEVICE} schedules the workers itself (one per device); it "
                                f"cannot be combined with --dist={dist}")
    config.pluginmanager.register(_DeviceScheduler(device_ids), "accel-worker-per-device")


def start_device_turns(config: pytest.Config) -> None:
    """--accel-devices-in-turns: on the controller, serve the turn to the workers (they find it in the environment
    they inherit); on a worker, join. See :mod:`pytest_accel.worker_turns`."""
    import os

    from pytest_accel import worker_turns
    from pytest_accel.options import OPT_DEVICES_IN_TURNS, OPT_WORKER_PER_DEVICE

    if is_worker(config):
        if worker_turns.join_as_worker():
            config.pluginmanager.register(_TurnPerTest(), "accel-device-turns")
        return
    if not config.getoption(OPT_DEVICES_IN_TURNS):
        return
    if not config.getoption(OPT_WORKER_PER_DEVICE) or not getattr(config.option, "numprocesses", None):
        raise pytest.UsageError(f"{OPT_DEVICES_IN_TURNS} makes the workers of {OPT_WORKER_PER_DEVICE} take turns: "
                                f"give it with {OPT_WORKER_PER_DEVICE} and -n N (pytest-xdist)")
    server = worker_turns.TurnServer()
    os.environ[worker_turns.SOCKET_ENV] = str(server.path)  # the workers are started after this, and inherit it
    config.add_cleanup(server.stop)
    config.add_cleanup(_forget_turns)
    config.stash[TURN_SERVER_KEY] = server


def device_turns_summary(config: pytest.Config) -> list[str]:
    """The controller's summary line on --accel-devices-in-turns (none elsewhere)."""
    from pytest_accel.worker_turns import summary_line

    server = config.stash.get(TURN_SERVER_KEY, None)
    line = summary_line(server) if server is not None else None
    return [line] if line else []


def _forget_turns() -> None:
    import os

    from pytest_accel.worker_turns import SOCKET_ENV

    os.environ.pop(SOCKET_ENV, None)


#: the controller's turn server in a run with --accel-devices-in-turns
TURN_SERVER_KEY = pytest.StashKey[Any]()


class _TurnPerTest:
    """A worker holds the turn from a test's setup to its teardown, never between tests (an idle worker waiting
    for work must not keep the others from theirs)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        from pytest_accel.worker_turns import take_turn

        take_turn()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        from pytest_accel.worker_turns import give_up_turn

        give_up_turn()


def device_scope(nodeid: str, device_ids: Sequence[str]) -> str | None:
    """The device id among a test's parameters (``suites/x.py::test_a[fp32-cuda-3]`` -> ``cuda-3``), the longest
    that matches where one id ends another; None for a test on no device."""
    params = nodeid.rpartition("[")[2][:-1] if nodeid.endswith("]") else ""
    parts = f"-{params}-"
    for device_id in sorted(device_ids, key=len, reverse=True):
        if f"-{device_id}-" in parts:
            return device_id
    return None


class _DeviceScheduler:
    def __init__(self, device_ids: Callable[[], list[str]]) -> None:
        self._device_ids = device_ids

    @pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: unknown where xdist is not installed
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from xdist.scheduler import LoadScopeScheduling

        ids = self._device_ids()

        class DeviceScheduling(LoadScopeScheduling):  # type: ignore[misc]
            """xdist's scope scheduling whose scope is the test's device: a device's tests go to one worker."""

            def _split_scope(self, nodeid: str) -> str:
                device = device_scope(nodeid, ids)
                return f"device {device}" if device is not None else nodeid

        return DeviceScheduling(config, log)


class WorkerDevice(Device):
    """A device as a worker saw it: its spec, key and facts, for the controller's summary and report."""

    def __init__(self, spec: str, backend_name: str, key: str, info: DeviceInfo, available: bool) -> None:
        super().__init__(spec, backend_name)
        self._key = key
        self._info = info
        self._available = available

    @property
    def key(self) -> str:
        return self._key

    @property
    def available(self) -> bool:
        return self._available

    def describe(self) -> DeviceInfo:
        assert self._info is not None
        return self._info


def _device(device: Device) -> dict[str, Any]:
    return {"spec": device.spec, "backend": device.backend_name, "key": device.key,
            "available": device.available, "info": dataclasses.asdict(device.info)}


def dump(session: AccelSession) -> str:
    """What the controller needs of this worker's run, as JSON text (xdist sends it through execnet)."""
    return json.dumps({
        "records": [
            {"nodeid": r.nodeid, "device": _device(r.device), "suite": r.suite, "test": r.test,
             "location": list(r.location), "baseline_path": str(r.baseline_path),
             "function": r.function, "params": r.params, "variant": r.variant,
             "verdicts": [verdict_to_dict(v) for v in r.verdicts], "stored_names": sorted(r.stored_names),
             "absent": r.absent}
            for r in session.records
        ],
        "written": [{"path": str(w.path), "action": w.action, "changes": w.changes} for w in session.written],
        "deselected_locations": [list(location) for location in session.deselected_locations],
        "collected_functions": [[list(location), function] for location, function in session.collected_functions],
    })


def merge(session: AccelSession, text: str) -> None:
    """Add one worker's records to the controller's session (devices rebuilt once per spec and key)."""
    data = json.loads(text)
    devices: dict[tuple[str, str], Device] = {}
    for raw in data["records"]:
        d = raw["device"]
        device = devices.get((d["spec"], d["key"]))
        if device is None:
            device = WorkerDevice(d["spec"], d["backend"], d["key"], DeviceInfo(**d["info"]), d["available"])
            devices[(d["spec"], d["key"])] = device
        record = TestRecord(raw["nodeid"], device, raw["suite"], raw["test"], Path(raw["baseline_path"]),
                            location=tuple(raw["location"]), function=raw["function"], params=raw["params"],
                            variant=raw["variant"])
        record.verdicts.extend(verdict_from_dict(v) for v in raw["verdicts"])
        record.stored_names = set(raw["stored_names"])
        record.absent = list(raw["absent"])
        session.records.append(record)
    session.written.extend(WrittenBaseline(Path(w["path"]), w["action"], w["changes"]) for w in data["written"])
    session.deselected_locations.update(tuple(location) for location in data["deselected_locations"])
    session.collected_functions.update((tuple(where), function) for where, function in data["collected_functions"])
