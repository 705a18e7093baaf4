"""Progress of long preparation (building the detection data set, training the bundled detector, recording
references, the gate self-check), told by the workloads to whoever runs them.

A workload takes a :class:`Progress` argument and calls ``update(phase, done, total, unit)``; it never decides
where the lines go or whether they are wanted. The console script gives a :class:`LineProgress` on stderr (or
:data:`NULL_PROGRESS` under ``-q``); a pytest run gives one that writes through pytest's terminal reporter (see
the plugin's ``accel_progress`` fixture).
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Protocol, TextIO

#: at most one line a second within a phase; its first and last lines are always written
DEFAULT_INTERVAL = 1.0
#: inside a pytest run, where the lines sit among the session's: building the default data set (about 20 s on
#: two cores) reads as five lines, not twenty
SESSION_INTERVAL = 5.0


class Progress(Protocol):
    def update(self, phase: str, done: int, total: int, unit: str = "", detail: str = "") -> None:
        """``done`` of ``total`` ``unit`` of ``phase`` are done (0 when it starts); ``detail`` says more of the
        last one."""


class NullProgress:
    """Tells no one: the default of every workload, and what ``-q`` gets."""

    def update(self, phase: str, done: int, total: int, unit: str = "", detail: str = "") -> None:
        return None


NULL_PROGRESS = NullProgress()


class LineProgress:
    """One line per update, ``building detection data set: 120/500 images (4.1 s)``, handed to ``write``; within
    a phase at most one every ``interval`` seconds, but always its first and its last. Elapsed time counts from
    the phase's first update."""

    def __init__(self, write: Callable[[str], None], interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write = write
        self._interval = interval
        self._clock = clock
        self._phase: str | None = None
        self._started = 0.0
        self._last_written = 0.0

    def update(self, phase: str, done: int, total: int, unit: str = "", detail: str = "") -> None:
        now = self._clock()
        if phase != self._phase:
            self._phase, self._started, self._last_written = phase, now, float("-inf")
        if done < total and now - self._last_written < self._interval:
            return
        self._last_written = now
        counted = f"{done}/{total} {unit}".rstrip()
        self._write(f"{phase}: {counted} ({now - self._started:.1f} s){f'; {detail}' if detail else ''}")


def stream_progress(stream: TextIO | None = None, *, quiet: bool = False) -> Progress:
    """Progress lines on ``stream`` (stderr by default), or none when ``quiet``."""
    if quiet:
        return NULL_PROGRESS
    out = stream if stream is not None else sys.stderr

    def write(line: str) -> None:
        print(line, file=out, flush=True)

    return LineProgress(write)
