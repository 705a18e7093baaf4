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
