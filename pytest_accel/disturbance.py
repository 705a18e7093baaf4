"""Whether the machine was disturbed while a speed metric was measured: the evidence that makes a slower value
``inconclusive`` (neither passed nor failed) instead of a regression.

The witness is the device's calibration probe, a small fixed piece of work timed beside every speed measurement: a
probe far slower than it usually is on this machine means something else had the machine, and a speed measured
then says more about the neighbour than about the workload. What "usually" means comes from the best evidence there
is, in this order:

1. the metric's own history: a prediction interval over its runs' probe times (as its value is judged);
2. the metric's single-run baseline: its probe samples, held to :data:`DISTURBED_PROBE_RATIO`;
3. every baseline of the device: the probe times of all its speed metrics' histories pooled (each device times the
   same probe for all of them), a prediction interval over those; this covers metrics stored before they carried a
   probe, such as the first runs of the committed baselines.

A round-time spread far beyond the usual one is evidence too. A workload that is slower while its probe is not still
fails: only the probe's own slowdown, never the workload's, makes a run inconclusive.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from pytest_accel.metrics import Metric

#: A probe this many times its single-run baseline's is disturbed. Probe bursts in one quiet process here took
#: 0.19-0.26 ms, beside one spinning and one memory-streaming process 0.25-0.50 ms: the probe is a weak witness
#: alone, so the host's CPU use by other processes (:class:`HostLoad`) is the other.
DISTURBED_PROBE_RATIO = 1.5
#: A round-time spread this many times the usual one (taken as at least DISTURBED_MIN_USUAL_SPREAD, so a workload
#: whose rounds agree to 0.1% is not "disturbed" by ordinary 2% jitter) means the run was disturbed.
DISTURBED_SPREAD_FACTOR = 3.0
DISTURBED_MIN_USUAL_SPREAD = 0.05
#: A run whose rounds spread ((p90 - p10) / median) this much more than their median was disturbed, not measured:
#: stored, it would widen every later run's noise floor until the gate saw nothing. Such a run is never written.
MAX_SPREAD = 10.0


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


def probe_time(samples: Sequence[float] | None) -> float | None:
    """The probe time of a measurement: the median of its probe samples, or None without any."""
    return statistics.median(samples) if samples else None


def history_disturbance(now: Mapping[str, Any], history: Sequence[Mapping[str, Any]], alpha: float,
                        device_probes: Sequence[float] = ()) -> str:
    """Evidence, against a metric's history of runs, that this run's machine was not the quiet one the history was
    recorded on; '' if there is none.

    ``now`` is this run's summary (:func:`pytest_accel.history.run_summary`). A probe beyond its own history is
    evidence however little the workload moved: a memory-bound workload beside a busy neighbour slows several times
    as much as the cache-resident probe (2.5x to 40x against far less, measured here). Without probe times in the
    history, the probe is held to the device's pooled probe times (``device_probes``)."""
    found = []
    probes = [float(h["probe"]) for h in history if h.get("probe")]
    if now.get("probe"):
        evidence = _probe_beyond(float(now["probe"]), probes, "its own history", alpha)
        if not evidence and len(probes) < 2:
            evidence = _probe_beyond(float(now["probe"]), device_probes, "this device's baselines", alpha)
        if evidence:
            found.append(evidence)
    spreads = [float(h["spread"]) for h in history if h.get("spread")]
    spread = now.get("spread")
    if spread is not None and spreads:
        found.extend(_spread_beyond(float(spread), statistics.median(spreads)))
    return "; ".join(found)


def single_run_disturbance(metric: Metric, against: Mapping[str, Any], alpha: float,
                           device_probes: Sequence[float] = ()) -> str:
    """Evidence, against a single-run baseline, that this run's machine was disturbed; '' if there is none. The
    baseline's own probe samples decide where it has them, else the device's pooled probe times."""
    from pytest_accel.stats import run_spread

    found = []
    now_probe = probe_time(metric.probe_samples)
    stored_probe = probe_time(against.get("probe_samples"))
    if now_probe is not None and stored_probe is not None:
        ratio = now_probe / stored_probe
        if ratio > DISTURBED_PROBE_RATIO:
            found.append(f"calibration probe {_percent(ratio - 1)} against the baseline's")
    elif now_probe is not None:
        evidence = _probe_beyond(now_probe, device_probes, "this device's baselines", alpha)
        if evidence:
            found.append(evidence)
    spread_now = run_spread(metric.samples)
    spread_then = run_spread(against.get("samples"))
    if spread_now is not None and spread_then is not None:
        found.extend(_spread_beyond(spread_now, spread_then))
    return "; ".join(found)


#: Other processes using this share of the host's CPU time while a test ran make its slower speed inconclusive: one
#: process spinning beside it on 2 cores is 50%; a quiet machine's background stayed under 5% here.
HOST_BUSY_SHARE = 0.25


class HostLoad:
    """How much of the host's CPU time other processes used during a window (a test, from its setup to its
    checks): the host's busy time (``psutil.cpu_times``, steal included) less this process's and its waited-for
    children's. The direct witness of a busy neighbour, which a short probe can miss: beside one spinning and one
    memory-streaming process the gesture training ran 4-5x slower while a probe burst ran 1.2-2x. None without
    psutil."""

    def __init__(self) -> None:
        self._start = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float] | None:
        try:
            import psutil
        except ImportError:
            return None
        host = psutil.cpu_times()
        busy = sum(getattr(host, field, 0.0) for field in ("user", "nice", "system", "irq", "softirq", "steal"))
        own = psutil.Process().cpu_times()
        mine = own.user + own.system + own.children_user + own.children_system
        return time.monotonic(), busy, mine

    def others_share(self) -> float | None:
        """The share (0 to 1) of all the host's cores that other processes used since this object was made."""
        end = self._now()
        if self._start is None or end is None:
            return None
        wall = end[0] - self._start[0]
        if wall <= 0.05:  # too short for the kernel's tick-resolution counters
            return None
        others = (end[1] - self._start[1]) - (end[2] - self._start[2])
        return min(max(others / (wall * (os.cpu_count() or 1)), 0.0), 1.0)


def host_disturbance(others_share: float | None, limit: float = HOST_BUSY_SHARE) -> str:
    """Evidence that other processes had the host's CPUs during the measurement (beyond ``limit``), or ''."""
    if others_share is not None and others_share > limit:
        return f"other processes used {others_share:.0%} of the host's CPU time during the test"
    return ""


def unstorable_spread(metric: Metric) -> str:
    """Why this measurement is too disturbed to become a baseline or a history run, or ''."""
    from pytest_accel.stats import run_spread

    spread = run_spread(metric.samples)
    if spread is not None and spread > MAX_SPREAD:
        return (f"its rounds spread {spread:.0%} of their median ((p90 - p10) / median, over {MAX_SPREAD:.0%}): the "
                "machine was disturbed while it was measured")
    return ""


def _probe_beyond(probe: float, usual: Sequence[float], source: str, alpha: float) -> str:
    from pytest_accel.stats import history_test

    if len(usual) < 2 or probe <= 0:
        return ""
    test = history_test(usual, probe, alpha)
    if test.ratio > test.threshold:
        return f"calibration probe {_percent(test.ratio - 1)} against {source}"
    return ""


def _spread_beyond(spread: float, usual: float) -> list[str]:
    if spread > DISTURBED_SPREAD_FACTOR * max(usual, DISTURBED_MIN_USUAL_SPREAD):
        return [f"round-time spread {spread:.0%} against a usual {usual:.1%}"]
    return []
