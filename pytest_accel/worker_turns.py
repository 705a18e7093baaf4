"""Devices that share the host's cores, timed in turns: ``--accel-devices-in-turns`` with ``--accel-worker-per-device``.

Devices measured one after the other see the machine at different moments: on a shared runner a burst of other
work falls on one device's rounds and not on its peers', and the peer check reads it as a slow device. Devices that
share one compute resource (CPU-backed devices, the partitions of one chip) cannot be timed at the same moment
either: they would slow each other. So their workers take turns: a worker takes the turn when a test starts, times
its rounds until it has held the turn :data:`~pytest_accel.turns.SLICE_SECONDS`, hands it to the next worker that
wants it at the start of a timed round, and gives it up when the test ends. Every device's rounds are then spread
over the same stretch of time in slices of a fraction of a second, so what the machine does to one falls on all
alike, and no two devices are ever timed at once.

The controller (the xdist master) serves the turn over a Unix socket named in :data:`SOCKET_ENV`; workers ask with
``R``, hand over (and ask again) with ``Y``, give up with ``D``, and are granted with ``G``; ``T`` says a test
timed its first round (for the summary: how often the turn changed hands during timed tests). A worker that goes away
(a crash, the end of its tests) gives up its turn with its connection; a controller that goes away lets the workers
go on alone.
"""

from __future__ import annotations

import os
import select
import socket
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from pytest_accel import turns

SOCKET_ENV = "PYTEST_ACCEL_DEVICE_TURNS"


class TurnServer:
    """The controller's side: grants the turn to one worker at a time, in the order they asked."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="accel-turns-")
        self.path = Path(self._folder.name) / "turns.sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(64)
        self._wake_read, self._wake_write = os.pipe()
        self._stopping = False
        #: the workers' connections that asked for the turn, and the tests among theirs that timed rounds
        self._asked: set[socket.socket] = set()
        self.timed_tests = 0
        #: how often a worker handed the turn to another in the middle of a test: fewer than the timed tests means
        #: most tests' rounds fitted in one turn and the devices were timed one after the other, not interleaved
        self.handovers = 0
        self._thread = threading.Thread(target=self._serve, name="accel-device-turns", daemon=True)
        self._thread.start()

    @property
    def workers(self) -> int:
        """How many workers asked for the turn."""
        return len(self._asked)

    def stop(self) -> None:
        self._stopping = True
        os.write(self._wake_write, b"x")
        self._thread.join(timeout=5)
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)
        self._listener.close()
        self._folder.cleanup()

    def _serve(self) -> None:
        clients: set[socket.socket] = set()
        waiting: deque[socket.socket] = deque()
        holder: socket.socket | None = None
        while not self._stopping:
            watched: list[socket.socket | int] = [self._listener, self._wake_read, *clients]
            ready, _, _ = select.select(watched, [], [])
            for source in ready:
                if source is self._listener:
                    connection, _ = self._listener.accept()
                    clients.add(connection)
                    continue
                if not isinstance(source, socket.socket):  # the wake-up pipe: stopping
                    continue
                try:
                    message = source.recv(1)
                except OSError:
                    message = b""
                if message == b"R":
                    self._asked.add(source)
                if message == b"T":  # a test's first timed round: counted, nothing else
                    self.timed_tests += 1
                if message == b"Y" and holder is source and waiting:
                    self.handovers += 1
                if not message or message == b"D" or message == b"Y":
                    if holder is source:
                        holder = None
                if not message:  # gone: its turn with it
                    clients.discard(source)
                    if source in waiting:
                        waiting.remove(source)
                    source.close()
                elif message in (b"R", b"Y") and source not in waiting and source is not holder:
                    waiting.append(source)
            while holder is None and waiting:
                candidate = waiting.popleft()
                try:
                    candidate.sendall(b"G")
                except OSError:
                    continue
                holder = candidate
        for client in clients:
            client.close()


class _SocketTurns:
    """A worker's side: asks for the turn as a test starts, hands it over at timed rounds, gives it up at the end."""

    def __init__(self, path: str) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.connect(path)
        self._held_since: float | None = None
        self._timed = False  # this test has timed a round
        self.active = True

    def _send(self, message: bytes) -> bool:
        try:
            self._socket.sendall(message)
            return True
        except OSError:
            self.active = False
            return False

    def _wait(self) -> None:
        try:
            granted = self._socket.recv(1)
        except OSError:
            granted = b""
        if not granted:  # the controller is gone: go on alone
            self.active = False
        self._held_since = time.perf_counter()

    def acquire(self) -> None:
        self._timed = False
        if self.active and self._held_since is None and self._send(b"R"):
            self._wait()

    def pass_if_due(self) -> None:
        if self.active and self._held_since is not None and not self._timed:
            self._timed = self._send(b"T")
        if self.active and self._held_since is not None and \
                time.perf_counter() - self._held_since >= turns.SLICE_SECONDS and self._send(b"Y"):
            self._wait()

    def release(self) -> None:
        if self.active and self._held_since is not None:
            self._send(b"D")
        self._held_since = None


def summary_line(server: TurnServer) -> str | None:
    """What the run's summary says of the turns: how often they changed hands, or that they never did."""
    if server.workers < 2 or not server.timed_tests:
        return None
    if 2 * server.handovers >= server.timed_tests:
        return (f"devices in turns: {server.workers} workers, {server.timed_tests} timed tests; the turn changed "
                f"hands {server.handovers} times during tests")
    return (f"devices in turns: the turn changed hands only {server.handovers} time(s) during {server.timed_tests} "
            f"timed tests: most tests' timed rounds took less than one turn ({turns.SLICE_SECONDS:g} s), so their "
            "devices were timed one after the other, not interleaved; a longer timing profile interleaves them "
            "(--accel-profile=standard)")


def join_as_worker(environ: dict[str, str] | None = None) -> bool:
    """In an xdist worker of a run in turns: connect to the controller's turns (see the module's description)."""
    path = (os.environ if environ is None else environ).get(SOCKET_ENV)
    if not path:
        return False
    try:
        client = _SocketTurns(path)
    except OSError:  # no controller listening (a worker of another run that inherited the variable)
        return False
    turns.install(client)
    return True


def take_turn() -> None:
    """As a test starts on a worker in turns: wait for the turn (no-op elsewhere)."""
    client = turns.installed()
    if isinstance(client, _SocketTurns):
        client.acquire()


def give_up_turn() -> None:
    """As a test ends on a worker in turns: let the other devices' workers have the turn."""
    client = turns.installed()
    if isinstance(client, _SocketTurns):
        client.release()


__all__ = ["SOCKET_ENV", "TurnServer", "give_up_turn", "join_as_worker", "summary_line", "take_turn"]
