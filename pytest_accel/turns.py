"""Processes that measure in turns: the runs of one A/B pair alive together, timing one slice at a time.

Two fresh processes run one after the other are measured seconds apart, and on a shared runner the machine's speed
drifts on that scale (here the same detector ran 24 ms and then 47 ms a few minutes later, in one process). So the
runs of a pair (or a group: ``ab-power``'s A, A2 and B) start together and take turns: the controller (this module's
:func:`run_in_turns`) hands the turn to one run, which works until it reaches a timed round after holding the turn
for :data:`SLICE_SECONDS`, hands it back and waits. The rounds of both sides are then interleaved in slices of a
fraction of a second: the drift falls on both alike and the paired ratio cancels it.

A run holds the turn through everything it does (imports, loading, warm-up, accuracy checks): only the timed rounds
are interleaved, and nothing the other run does overlaps them. A run that never takes part (pytest fails before the
plugin loads, or an xdist worker, which times in its own process) runs freely; its turn passes on when it exits.

The child's side is two inherited file descriptors named in :data:`TURNS_ENV` ("<controller pid>:<go>,<done>"; only
a direct child of the controller takes part, never a process it starts, such as an xdist worker): it reads one byte
from ``go`` to start its turn and writes one byte to ``done`` to end it. The end of file on ``done`` (the run exited,
however) passes the turn on; the end of file on ``go`` (the controller is gone) lets the run go on alone.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Mapping, Protocol, Sequence

TURNS_ENV = "PYTEST_ACCEL_TURNS"
#: how long a run keeps the turn before it hands it on at its next timed round
SLICE_SECONDS = 0.2


class _Turns:
    def __init__(self, go: int, done: int) -> None:
        self._go = go
        self._done = done
        self._held_since = 0.0
        self.active = True

    def wait(self) -> None:
        try:
            started = os.read(self._go, 1)
        except OSError:
            started = b""
        if not started:  # the controller is gone (or the descriptors were never ours): go on alone
            self.active = False
        self._held_since = time.perf_counter()

    def pass_if_due(self) -> None:
        if self.active and time.perf_counter() - self._held_since >= SLICE_SECONDS:
            try:
                os.write(self._done, b"Y")
            except OSError:
                self.active = False
                return
            self.wait()


class _Turn(Protocol):
    active: bool

    def pass_if_due(self) -> None: ...


_turns: _Turn | None = None


def install(taker: _Turn) -> None:
    """Take part in turns other than a controller's pipes (:mod:`pytest_accel.worker_turns`' socket)."""
    global _turns
    _turns = taker


def installed() -> _Turn | None:
    return _turns


def join_from_environment(environ: Mapping[str, str] = os.environ) -> bool:
    """Take part in the turns the controller set up through :data:`TURNS_ENV` (waiting for the first turn); False
    when there are none. Called once, as the run starts."""
    global _turns
    value = environ.get(TURNS_ENV)
    if not value or _turns is not None:
        return False
    controller, _, descriptors = value.partition(":")
    if controller != str(os.getppid()):  # inherited further down: the descriptors are not this process's
        return False
    try:
        go, done = (int(part) for part in descriptors.split(","))
        os.fstat(go)
        os.fstat(done)
    except (ValueError, OSError):  # not ours: a process that inherited the variable without the descriptors
        return False
    taker = _Turns(go, done)
    _turns = taker
    taker.wait()
    return taker.active


def pass_turn_if_due() -> None:
    """At a timed round's start (untimed): hand the turn on when this run has held it for a slice; no-op unless
    :func:`join_from_environment` joined."""
    if _turns is not None:
        _turns.pass_if_due()


def leave() -> None:
    """Stop taking turns (the descriptors stay open until the process ends)."""
    global _turns
    _turns = None


@dataclass(frozen=True)
class Finished:
    #: the run's exit status; None when it could not start or was stopped at the timeout
    status: int | None
    #: seconds from the group's start to this run's end
    seconds: float
    #: the turns this run ended (1 for a run that never took part)
    turns: int


@dataclass(frozen=True)
class Command:
    argv: Sequence[str]
    env: Mapping[str, str]
    #: where the run's output goes (None: discarded)
    log: Path | None = None


def run_in_turns(commands: Sequence[Command], timeout: float | None = None) -> list[Finished]:
    """Start every command at once and give them the turn in rotation, in the given order (the first starts),
    until all have exited; ``timeout`` bounds the whole group (the runs still alive then are killed)."""
    start = time.perf_counter()
    deadline = None if timeout is None else start + timeout
    runs: list[tuple[subprocess.Popen[bytes] | None, int, int]] = []  # process, go (write end), done (read end)
    for command in commands:
        go_read, go_write = os.pipe()
        done_read, done_write = os.pipe()
        env = {**command.env, TURNS_ENV: f"{os.getpid()}:{go_read},{done_write}"}
        try:
            with _output(command.log) as output:
                process: subprocess.Popen[bytes] | None = subprocess.Popen(
                    list(command.argv), env=env, pass_fds=(go_read, done_write), stdout=output,
                    stderr=subprocess.STDOUT)
        except OSError:
            process = None
        os.close(go_read)
        os.close(done_write)
        runs.append((process, go_write, done_read))
    finished: dict[int, Finished] = {}
    turns = [0] * len(runs)
    for index, (process, go, done) in enumerate(runs):
        if process is None:
            finished[index] = Finished(None, 0.0, 0)
            os.close(go)
            os.close(done)
    current = 0
    try:
        while len(finished) < len(runs):
            while current in finished:
                current = (current + 1) % len(runs)
            process, go, done = runs[current]
            assert process is not None
            try:
                os.write(go, b"G")
            except OSError:  # it closed its end: it has exited, its done pipe says so below
                pass
            ended = _wait_for_turn_end(done, deadline)
            turns[current] += 1
            if ended is None:  # the group's time is up
                break
            if not ended:  # end of file: the run exited
                status = process.wait()
                finished[current] = Finished(status, time.perf_counter() - start, turns[current])
                os.close(go)
                os.close(done)
            current = (current + 1) % len(runs)
    finally:
        for index, (process, go, done) in enumerate(runs):
            if index in finished or process is None:
                continue
            process.kill()
            process.wait()
            finished[index] = Finished(None, time.perf_counter() - start, turns[index])
            os.close(go)
            os.close(done)
    return [finished[index] for index in range(len(runs))]


@contextlib.contextmanager
def _output(log: Path | None) -> Iterator[IO[bytes] | int]:
    if log is None:
        yield subprocess.DEVNULL
        return
    with log.open("wb") as file:  # the child keeps its own copy of the descriptor
        yield file


def _wait_for_turn_end(done: int, deadline: float | None) -> bool | None:
    """True when the run handed the turn back, False when it exited, None at the deadline."""
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.perf_counter())
        ready, _, _ = select.select([done], [], [], wait)
        if not ready:
            return None
        try:
            return bool(os.read(done, 1))
        except OSError:
            return False
