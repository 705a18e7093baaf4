"""Statistics behind the verdicts: latency significance and an MLPerf-RCP-style convergence test.

scipy is imported lazily, inside the functions.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def mann_whitney_p(obtained: Sequence[float], baseline: Sequence[float], alternative: str) -> float:
    """One-sided Mann-Whitney U p-value; alternative 'greater': obtained tends to be larger (slower)."""
    from scipy.stats import mannwhitneyu

    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    if len(obtained) < 2 or len(baseline) < 2:
        return 1.0
    return float(mannwhitneyu(obtained, baseline, alternative=alternative, method="asymptotic").pvalue)


@dataclass(frozen=True)
class ShiftTest:
    """Where the obtained timing samples stand against the baseline's."""

    ratio: float  # obtained median / baseline median
    normalised_ratio: float | None  # the same, each median divided by its run's calibration-probe median
    p_slower: float
    p_faster: float


def timing_shift(
    obtained: Sequence[float],
    baseline: Sequence[float],
    obtained_probe: Sequence[float] | None = None,
    baseline_probe: Sequence[float] | None = None,
) -> ShiftTest:
    ratio = median(obtained) / median(baseline)
    normalised = None
    if obtained_probe and baseline_probe:
        normalised = ratio * median(baseline_probe) / median(obtained_probe)
    return ShiftTest(
        ratio=ratio,
        normalised_ratio=normalised,
        p_slower=mann_whitney_p(obtained, baseline, "greater"),
        p_faster=mann_whitney_p(obtained, baseline, "less"),
    )


def olympic_mean(values: Sequence[float]) -> float:
    """Mean without the single highest and lowest value (MLPerf's RCP mean); plain mean under 3 values."""
    if not values:
        raise ValueError("olympic_mean of no values")
    ordered = sorted(values)
    trimmed = ordered[1:-1] if len(ordered) >= 3 else ordered
    return sum(trimmed) / len(trimmed)


@dataclass(frozen=True)
class ConvergenceTest:
    reference_mean: float  # olympic mean of the reference runs
    observed_mean: float
    t_statistic: float
    p_slower: float  # one-sided: the observed runs need more epochs than the reference
    p_faster: float


def convergence_test(reference: Sequence[float], observed: Sequence[float]) -> ConvergenceTest:
    """Do the observed epochs-to-target belong with the reference runs?

    The reference is summarised MLPerf-RCP style (olympic mean, sample spread of the trimmed runs); the observed
    mean is tested one-sidedly against it with a t statistic whose error term covers both the reference's spread
    and the observed runs' count (a prediction interval, so one observed run is enough).
    """
    from scipy.stats import t as student_t

    if len(reference) < 3:
        raise ValueError(f"a convergence reference needs at least 3 seeds, got {len(reference)}")
    if not observed:
        raise ValueError("no observed runs")
    ordered = sorted(reference)
    trimmed = ordered[1:-1] if len(ordered) >= 5 else ordered
    ref_mean = olympic_mean(reference)
    spread = statistics.stdev(trimmed) if len(trimmed) >= 2 else 0.0
    obs_mean = sum(observed) / len(observed)
    error = spread * math.sqrt(1 / len(trimmed) + 1 / len(observed))
    if error == 0:
        diff = obs_mean - ref_mean
        t_value = math.inf if diff > 0 else (-math.inf if diff < 0 else 0.0)
    else:
        t_value = (obs_mean - ref_mean) / error
    dof = max(len(trimmed) - 1, 1)
    return ConvergenceTest(
        reference_mean=ref_mean,
        observed_mean=obs_mean,
        t_statistic=t_value,
        p_slower=float(student_t.sf(t_value, dof)),
        p_faster=float(student_t.cdf(t_value, dof)),
    )


#: a history whose runs agree to the last digit still has some spread; below this (0.2%) a t statistic explodes
MIN_LOG_SPREAD = 0.002


@dataclass(frozen=True)
class HistoryTest:
    """Where one run's value stands against the run-level values of earlier runs, on a log scale.

    Values are oriented so that larger is worse (times, or 1/rate). ``ratio`` is the obtained value over the
    history's geometric mean; ``threshold`` the ratio at which the one-sided prediction interval at the given
    significance ends: a new run of the unchanged system exceeds it with that probability.
    """

    ratio: float
    threshold: float
    p_worse: float
    p_better: float
    runs: int
    spread: float  # standard deviation of the log values (about the run-to-run CV)


def history_test(history: Sequence[float], obtained: float, alpha: float) -> HistoryTest:
    """One-sided prediction-interval test of ``obtained`` against ``history`` (Student t, n-1 degrees of
    freedom, as MLPerf's RCP checker and Bencher's t-test threshold use)."""
    from scipy.stats import t as student_t

    if len(history) < 2:
        raise ValueError(f"a history test needs at least 2 runs, got {len(history)}")
    if obtained <= 0 or any(value <= 0 for value in history):
        raise ValueError("history values must be positive")
    logs = [math.log(value) for value in history]
    centre = statistics.fmean(logs)
    spread = max(statistics.stdev(logs), MIN_LOG_SPREAD)
    scale = spread * math.sqrt(1 + 1 / len(logs))
    dof = len(logs) - 1
    t_value = (math.log(obtained) - centre) / scale
    critical = float(student_t.ppf(1 - alpha, dof))
    return HistoryTest(
        ratio=math.exp(math.log(obtained) - centre),
        threshold=math.exp(critical * scale),
        p_worse=float(student_t.sf(t_value, dof)),
        p_better=float(student_t.cdf(t_value, dof)),
        runs=len(logs),
        spread=spread,
    )


def run_spread(samples: Sequence[float] | None) -> float | None:
    """(p90 - p10) / median of a run's rounds: its within-run dispersion; None for fewer than 10 rounds."""
    if not samples or len(samples) < 10:
        return None
    ordered = sorted(samples)
    middle = statistics.median(ordered)
    low, high = ordered[len(ordered) // 10], ordered[(len(ordered) * 9) // 10]
    return (high - low) / middle if middle > 0 else None


def lower_quartile(samples: Sequence[float]) -> float:
    """The nearest-rank 25th percentile."""
    ordered = sorted(samples)
    return ordered[max(math.ceil(0.25 * len(ordered)), 1) - 1]
