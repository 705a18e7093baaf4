"""Sync-correct timing: first run apart, warm-up, a sample-count policy per profile, nearest-rank percentiles.

Every timed round is ``fn(); device.synchronize()`` between two ``perf_counter`` reads, so asynchronous devices are
timed to completion. A :class:`~pytest_accel.executors.RoundExecutor` runs the rounds: pytest-benchmark's fixture
when it is available (so its statistics, table, JSON and compare tooling see the same numbers), a local loop
otherwise.
Before every round, untimed by the round itself, the device's calibration probe runs and is timed on its own: the
probe samples are interleaved with the workload samples, which is what lets a later comparison tell a slower
workload from a slower machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from pytest_accel.devices.counters import RuntimeCounters, counter_metrics, read_counters
from pytest_accel.executors import LocalExecutor, RoundExecutor
from pytest_accel.metrics import Metric
from pytest_accel.turns import pass_turn_if_due

if TYPE_CHECKING:
    from pytest_accel.devices import Device

#: Minimum samples before a percentile is reported: MLPerf LoadGen's early-stopping minimums for p90 and p99.
PERCENTILE_MIN_SAMPLES: dict[float, int] = {50.0: 1, 90.0: 64, 99.0: 662}


@dataclass(frozen=True)
class Profile:
    name: str
    warmup_rounds: int
    min_rounds: int
    max_rounds: int
    target_seconds: float
    description: str


PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", 3, 20, 200, 1.0, "p50 only; seconds per measurement; the CPU default"),
    "standard": Profile("standard", 10, 64, 2000, 5.0, "p50+p90; the accelerator default"),
    "full": Profile("full", 50, 1024, 20000, 60.0, "p50+p90+p99; MLPerf-grade counts"),
}


def default_profile_for(device: Device) -> Profile:
    """quick for the host CPU (slow per round, the 2-core CI case), standard for accelerators."""
    return PROFILES["quick" if device.is_host_cpu else "standard"]


def nearest_rank(sorted_samples: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile (as MLPerf LoadGen reports): the smallest sample with at least p% at or below."""
    if not sorted_samples:
        raise ValueError("no samples")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile {percentile} must be in (0, 100]")
    rank = math.ceil(percentile / 100 * len(sorted_samples))
    return sorted_samples[max(rank, 1) - 1]


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 — each only when there are enough samples for it (never a p99 from 20 samples)."""
    ordered = sorted(samples)
    return {
        f"p{percentile:g}": nearest_rank(ordered, percentile)
        for percentile, minimum in PERCENTILE_MIN_SAMPLES.items()
        if len(ordered) >= minimum
    }


def choose_rounds(profile: Profile, seconds_per_round: float) -> int:
    if seconds_per_round <= 0:
        return profile.max_rounds
    wanted = math.ceil(profile.target_seconds / seconds_per_round)
    return max(profile.min_rounds, min(profile.max_rounds, wanted))


@dataclass
class LatencyMeasurement:
    name: str
    samples: list[float]
    probe_samples: list[float]
    first_run_seconds: float
    batch_size: int
    profile: str
    executor: str  # "pytest-benchmark" or "local"
    peak_memory_bytes: int | None = None
    probe_repeats: int = 0
    #: a compiling runtime's counters (:mod:`pytest_accel.devices.counters`) over the first run and warm-up, and
    #: over the timed rounds; None for devices that keep none
    warmup_counters: RuntimeCounters | None = None
    steady_counters: RuntimeCounters | None = None

    @property
    def median(self) -> float:
        return nearest_rank(sorted(self.samples), 50)

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"n": len(self.samples), **percentiles(self.samples)}
        summary["mean"] = sum(self.samples) / len(self.samples)
        summary["min"] = min(self.samples)
        summary["profile"] = self.profile
        summary["executor"] = self.executor
        if self.probe_samples:
            summary["probe_p50"] = nearest_rank(sorted(self.probe_samples), 50)
            summary["probe_repeats"] = self.probe_repeats
        return summary

    def metrics(self) -> list[Metric]:
        """Latency (p50, with samples), first run, throughput at this batch size, peak memory where known."""
        summary = self.summary()
        result = [
            Metric(
                f"{self.name}.latency",
                self.median,
                "s",
                "latency",
                "lower",
                samples=list(self.samples),
                probe_samples=list(self.probe_samples) or None,
                summary=summary,
            ),
            # the probe of the rounds that followed: the machine's state beside the first run
            Metric(f"{self.name}.first_run", self.first_run_seconds, "s", "startup", "lower",
                   probe_samples=list(self.probe_samples) or None),
            Metric(
                f"{self.name}.throughput",
                self.batch_size / self.median,
                "items/s",
                "throughput",
                "higher",
                samples=list(self.samples),
                probe_samples=list(self.probe_samples) or None,
                summary={"batch_size": self.batch_size, "n": len(self.samples)},
            ),
        ]
        if self.peak_memory_bytes is not None:
            result.append(Metric(f"{self.name}.peak_memory", self.peak_memory_bytes, "B", "memory", "lower"))
        if self.warmup_counters is not None and self.steady_counters is not None:
            result.extend(counter_metrics(self.name, self.warmup_counters, self.steady_counters))
        return result


#: The probe runs long enough to feel what the workload feels: a 0.1 ms probe slips between the scheduler's time
#: slices that a 40 ms round cannot (seen here under a competing process: +110% absolute, +11% normalised with a
#: single probe call). Repeated up to this share of a round, within these bounds; samples are per repeat.
PROBE_SHARE, PROBE_MAX_SECONDS, PROBE_MAX_REPEATS = 0.25, 0.01, 200


def _probe_repeats(probe: Callable[[], None], device: Device, per_round: float) -> int:
    single = min(_timed(probe, device) for _ in range(3))
    wanted = min(per_round * PROBE_SHARE, PROBE_MAX_SECONDS)
    return max(1, min(PROBE_MAX_REPEATS, round(wanted / single))) if single > 0 else 1


#: probe samples taken beside a metric measured without them (:func:`probe_burst`), each about PROBE_MAX_SECONDS
PROBE_BURST_SAMPLES = 9


def probe_burst(device: Device) -> list[float]:
    """The calibration probe timed now, :data:`PROBE_BURST_SAMPLES` times (seconds per call, as the interleaved
    probe's samples): the machine's state beside a measurement that had no probe of its own. Empty for a device
    without a probe."""
    probe = device.calibration_probe()
    if probe is None:
        return []
    device.synchronize()
    repeats = _probe_repeats(probe, device, PROBE_MAX_SECONDS / PROBE_SHARE)
    samples = []
    for _ in range(PROBE_BURST_SAMPLES):
        start = time.perf_counter()
        for _ in range(repeats):
            probe()
        device.synchronize()
        samples.append((time.perf_counter() - start) / repeats)
    return samples


def _timed(fn: Callable[[], object], device: Device) -> float:
    start = time.perf_counter()
    fn()
    device.synchronize()
    return time.perf_counter() - start


def measure_latency(
    name: str,
    fn: Callable[[], object],
    device: Device,
    profile: Profile,
    *,
    batch_size: int = 1,
    executor: RoundExecutor | None = None,
) -> LatencyMeasurement:
    """Time ``fn`` on ``device``: first run, warm-up, then the profile's rounds with the probe interleaved.

    ``executor`` runs the rounds (a local loop by default).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device.synchronize()
    device.reset_peak_memory()
    before = read_counters(device)
    first_run = _timed(fn, device)
    warmup = [_timed(fn, device) for _ in range(profile.warmup_rounds)]
    per_round = sorted(warmup)[len(warmup) // 2] if warmup else first_run
    rounds = choose_rounds(profile, per_round)

    probe = device.calibration_probe()
    probe_samples: list[float] = []
    repeats = _probe_repeats(probe, device, per_round) if probe is not None else 0
    warm = read_counters(device)  # after the probe's first calls too: what compiles later is the steady state's

    def timed_probe() -> None:
        pass_turn_if_due()  # untimed: a run measuring in turns with another hands the turn on between rounds
        if probe is not None:
            start = time.perf_counter()
            for _ in range(repeats):
                probe()
            device.synchronize()
            probe_samples.append((time.perf_counter() - start) / repeats)

    def target() -> None:
        fn()
        device.synchronize()

    executor = executor or LocalExecutor()
    samples = executor.run(target, timed_probe, rounds)
    after = read_counters(device)
    measurement = LatencyMeasurement(
        name=name,
        samples=samples,
        probe_samples=probe_samples,
        first_run_seconds=first_run,
        batch_size=batch_size,
        profile=profile.name,
        executor=executor.name,
        peak_memory_bytes=device.peak_memory_bytes(),
        probe_repeats=repeats,
        warmup_counters=warm - before if warm is not None and before is not None else None,
        steady_counters=after - warm if after is not None and warm is not None else None,
    )
    executor.annotate(
        {"accel_device": device.spec, "accel_device_key": device.key, "accel_metric": name}
        | {f"accel_{k}": v for k, v in measurement.summary().items()}
    )
    return measurement
