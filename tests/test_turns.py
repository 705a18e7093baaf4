"""Runs that measure in turns (pytest_accel.turns): the timed rounds of processes alive together never overlap and
alternate in slices; a run that exits, crashes, never takes part or outlives the group's time does not stall the
others."""

from __future__ import annotations

import itertools
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_accel import turns
from pytest_accel.ab import RunMode
from pytest_accel.turns import Command, run_in_turns

#: a run that times 5 ms rounds with the plugin's own timing loop and writes each round's (start, end)
MEASURING = textwrap.dedent("""
    import json, sys, time
    from pytest_accel import turns
    from pytest_accel.devices import Device, DeviceInfo
    from pytest_accel.timing import PROFILES, measure_latency

    class Host(Device):
        runtime = "python"
        def describe(self):
            return DeviceInfo(backend="host", spec="host", vendor="host", model="python")

    turns.join_from_environment()
    windows = []
    def work():
        start = time.monotonic()
        time.sleep(0.005)
        windows.append((start, time.monotonic()))
    measure_latency("toy", work, Host("host", "host"), PROFILES["quick"])
    open(sys.argv[1], "w").write(json.dumps(windows))
""")


def _measuring(tmp_path: Path, name: str) -> Command:
    script = tmp_path / "measuring.py"
    script.write_text(MEASURING)
    return Command([sys.executable, str(script), str(tmp_path / f"{name}.json")], dict(os.environ),
                   tmp_path / f"{name}.log")


def _windows(tmp_path: Path, name: str) -> list[tuple[float, float]]:
    return [tuple(window) for window in json.loads((tmp_path / f"{name}.json").read_text())]


@pytest.mark.workload  # fresh interpreters timing for about a second each
def test_timed_rounds_of_runs_in_turns_never_overlap_and_alternate(tmp_path: Path) -> None:
    finished = run_in_turns([_measuring(tmp_path, "a"), _measuring(tmp_path, "b")], timeout=120)
    assert [f.status for f in finished] == [0, 0], [(tmp_path / f"{n}.log").read_text() for n in "ab"]
    rounds = sorted([(*w, "a") for w in _windows(tmp_path, "a")] + [(*w, "b") for w in _windows(tmp_path, "b")])
    assert len(rounds) >= 40
    overlaps = [(x, y) for x, y in itertools.pairwise(rounds) if y[0] < x[1]]
    assert not overlaps
    switches = sum(1 for x, y in itertools.pairwise(rounds) if x[2] != y[2])
    # about a second of rounds each, in slices of SLICE_SECONDS: several handovers, not one run then the other
    assert switches >= 4
    assert all(f.turns >= 2 for f in finished)


def test_a_run_that_exits_holding_the_turn_passes_it_on(tmp_path: Path) -> None:
    crashing = Command([sys.executable, "-c", "from pytest_accel import turns; turns.join_from_environment(); "
                        "raise SystemExit(3)"], dict(os.environ))
    waiting = Command([sys.executable, "-c", "from pytest_accel import turns; "
                       "assert turns.join_from_environment(); print('ran')"], dict(os.environ), tmp_path / "b.log")
    finished = run_in_turns([crashing, waiting], timeout=60)
    assert [f.status for f in finished] == [3, 0]
    assert "ran" in (tmp_path / "b.log").read_text()


def test_a_run_that_never_takes_part_runs_freely_and_the_others_still_finish(tmp_path: Path) -> None:
    outsider = Command([sys.executable, "-c", "import time; time.sleep(0.2)"], dict(os.environ))
    member = Command([sys.executable, "-c", "from pytest_accel import turns; assert turns.join_from_environment()"],
                     dict(os.environ))
    assert [f.status for f in run_in_turns([member, outsider, member], timeout=60)] == [0, 0, 0]


@pytest.mark.workload  # fresh interpreters, one kept waiting for the whole 3 s timeout
def test_the_group_timeout_stops_a_run_that_keeps_the_turn(tmp_path: Path) -> None:
    stuck = Command([sys.executable, "-c", "from pytest_accel import turns; import time; "
                     "turns.join_from_environment(); time.sleep(60)"], dict(os.environ))
    waiting = Command([sys.executable, "-c", "from pytest_accel import turns; turns.join_from_environment()"],
                      dict(os.environ))
    finished = run_in_turns([stuck, waiting], timeout=3)
    assert [f.status for f in finished] == [None, None]
    assert all(f.seconds < 20 for f in finished)


def test_a_command_that_cannot_start_is_reported_and_the_rest_run(tmp_path: Path) -> None:
    missing = Command([str(tmp_path / "no-such-python")], dict(os.environ))
    member = Command([sys.executable, "-c", "from pytest_accel import turns; turns.join_from_environment()"],
                     dict(os.environ))
    assert [f.status for f in run_in_turns([missing, member], timeout=60)] == [None, 0]


def test_without_a_controller_a_run_goes_on_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    go_read, go_write = os.pipe()
    done_read, done_write = os.pipe()
    os.close(go_write)  # the controller is gone: the first wait reads the end of the file
    try:
        assert turns.join_from_environment({turns.TURNS_ENV: f"{os.getppid()}:{go_read},{done_write}"}) is False
        turns.pass_turn_if_due()  # no wait, no write
    finally:
        turns.leave()
        for fd in (go_read, done_read, done_write):
            os.close(fd)


@pytest.mark.parametrize("value", ["", "x", "1", "{ppid}:999990,999991", "{ppid}:3,4,5", "{ppid}:x,y"])
def test_a_variable_without_its_descriptors_is_ignored(value: str) -> None:
    try:
        assert turns.join_from_environment({turns.TURNS_ENV: value.format(ppid=os.getppid())}) is False
    finally:
        turns.leave()


def test_a_process_the_run_starts_does_not_take_its_turns() -> None:
    """An xdist worker inherits the variable; its descriptors with the same numbers are not the pipes."""
    go_read, go_write = os.pipe()
    done_read, done_write = os.pipe()
    try:
        os.write(go_write, b"G")
        assert turns.join_from_environment({turns.TURNS_ENV: f"{os.getpid()}:{go_read},{done_write}"}) is False
        assert os.read(go_read, 1) == b"G"  # never read by the refused join
    finally:
        turns.leave()
        for fd in (go_read, go_write, done_read, done_write):
            os.close(fd)


def test_huge_pages_add_to_the_glibc_tunables_a_user_set() -> None:
    mode = RunMode()
    assert mode.env({}) == {"THP_MEM_ALLOC_ENABLE": "1", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1",
                            "OMP_WAIT_POLICY": "PASSIVE"}
    assert "OMP_WAIT_POLICY" not in mode.env({"OMP_WAIT_POLICY": "ACTIVE"})  # the user's own value stays
    assert "OMP_WAIT_POLICY" not in RunMode(in_turns=False).env({})
    assert mode.env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})["GLIBC_TUNABLES"] == \
        "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert mode.env({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"
    assert RunMode(huge_pages=False).env({}) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert "one run after the other" in RunMode(in_turns=False).describe()
