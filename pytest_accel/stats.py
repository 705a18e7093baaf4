"""Statistics behind the speed verdicts: within-run significance and prediction intervals from run histories.

The convergence test lives in :mod:`pytest_accel.convergence`.

scipy is imported lazily, inside the functions.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import lru_cache
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
    #: for a probe-adjusted test: how strongly the value follows the probe (1: as a ratio would assume)
    sensitivity: float | None = None
    #: history runs set aside as outliers (a process in a slow state), not counted in ``runs``
    set_aside: int = 0
    #: the largest ratio among them (worse direction), or None
    slowest_set_aside: float | None = None


#: a history run further than this many robust standard deviations (1.4826 x MAD) from the others is set aside
OUTLIER_MADS = 5.0
#: at most this share of a history is ever set aside
MAX_OUTLIER_SHARE = 0.2


def _kept(deviations: Sequence[float], noise_floor: float = 0.0) -> list[bool]:
    """Which history runs to keep: those within OUTLIER_MADS robust standard deviations of the median deviation.

    On shared machines a whole process sometimes runs in a slow state (measured here: 1 run in 12 of the
    detector on ONNX Runtime ran 33-45% slower throughout, probe unchanged). One such run in a history of ten
    inflates its standard deviation several-fold and with it the limit for every later run; set aside, it no longer
    does, and a later run in that state is caught by the fresh-process confirmation instead (it must happen twice
    in a row to fail)."""
    centre = statistics.median(deviations)
    mad = statistics.median(abs(d - centre) for d in deviations)
    scale = max(1.4826 * mad, MIN_LOG_SPREAD, noise_floor)
    keep = [abs(d - centre) <= OUTLIER_MADS * scale for d in deviations]
    if keep.count(False) > MAX_OUTLIER_SHARE * len(keep):
        return [True] * len(keep)  # not outliers: a spread-out history
    return keep


def measurement_noise(spreads: Sequence[float], rounds: Sequence[int]) -> float:
    """The standard error of one run's quartile of round times (log scale), from the runs' within-run spreads:
    run-to-run variation can be no smaller, so a history that happens to agree more closely (six runs fitted by a
    line can) is not believed. For normal rounds p90 - p10 is 2.563 sigma and the quartile's standard error is
    1.362 sigma / sqrt(n)."""
    errors = [spread / 2.563 * 1.362 / math.sqrt(n) for spread, n in zip(spreads, rounds, strict=True) if n > 0]
    return statistics.median(errors) if errors else 0.0


def history_test(history: Sequence[float], obtained: float, alpha: float, noise_floor: float = 0.0,
                 candidates: int = 1) -> HistoryTest:
    """One-sided prediction-interval test of ``obtained`` against ``history`` (Student t, n-1 degrees of
    freedom, as MLPerf's RCP checker and Bencher's t-test threshold use). ``obtained`` may be the median of
    ``candidates`` runs of the candidate in fresh processes: the interval is then the one for such a median,
    ``t * s * sqrt(m_k + 1/n)`` instead of ``t * s * sqrt(1 + 1/n)`` (:func:`_candidates_share`)."""
    from scipy.stats import t as student_t

    if len(history) < 2:
        raise ValueError(f"a history test needs at least 2 runs, got {len(history)}")
    if obtained <= 0 or any(value <= 0 for value in history):
        raise ValueError("history values must be positive")
    logs = [math.log(value) for value in history]
    in_order = logs  # phases set aside below are still phases a run of candidates can fall into
    kept = _kept(logs, noise_floor)
    set_aside = kept.count(False)
    outliers = [value for value, keep in zip(logs, kept, strict=True) if not keep]
    logs = [value for value, keep in zip(logs, kept, strict=True) if keep]
    centre = statistics.fmean(logs)
    spread = max(statistics.stdev(logs), MIN_LOG_SPREAD, noise_floor)
    scale = spread * math.sqrt(_candidates_share(candidates, in_order) + 1 / len(logs))
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
        set_aside=set_aside,
        slowest_set_aside=max((math.exp(v - centre) for v in outliers), default=None),
    )


#: the probe's sensitivity learned from a history is kept within this range: a machine slowdown that the probe
#: feels is felt by the workload in the same direction, rarely more than a few times as strongly
MAX_PROBE_SENSITIVITY = 4.0


@lru_cache(maxsize=64)
def median_variance_share(runs: int) -> float:
    """Var(median of ``runs`` independent standard normal draws): 1, 0.5, 0.449, 0.343, 0.287 ... (pi / 2k for
    many). From a seeded simulation of 20 000 medians (about 1% precision): the same figure every time."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if runs <= 2:
        return 1.0 / runs
    import numpy as np

    draws = np.random.default_rng(0).standard_normal((20_000, runs))
    return float(np.var(np.median(draws, axis=1)))


def _candidates_share(candidates: int, in_order: Sequence[float]) -> float:
    """The variance of the median of ``candidates`` runs made one after another, as a share of one run's. For
    independent runs it is :func:`median_variance_share`; where consecutive runs are correlated (a runner's slow
    phase outlasts a run) by ``rho``, ``rho + (1 - rho) * share`` (exact for equally correlated normal runs).
    ``rho`` is the lag-one correlation of the history's own runs in the order they were recorded (those set aside as
    a slow phase included), never below 0: a history that shows no such phases costs nothing."""
    if candidates < 1:
        raise ValueError(f"candidates must be at least 1, got {candidates}")
    if candidates == 1 or len(in_order) < 4:  # too short a history to see its phases: held as one run
        return 1.0
    centre = statistics.fmean(in_order)
    deviations = [value - centre for value in in_order]
    variance = sum(d * d for d in deviations)
    rho = sum(a * b for a, b in zip(deviations[:-1], deviations[1:], strict=True)) / variance if variance > 0 else 0.0
    rho = min(max(rho, 0.0), 1.0)
    return rho + (1 - rho) * median_variance_share(candidates)


def adjusted_history_test(history: Sequence[tuple[float, float]], obtained: tuple[float, float],
                          alpha: float, noise_floor: float = 0.0, candidates: int = 1) -> HistoryTest:
    """Like :func:`history_test`, with the calibration probe as a control variate: over the earlier runs the log
    value is regressed on the log probe time (least squares), and the obtained value is held against the value
    predicted for its own probe time, with the regression's prediction interval (n-2 degrees of freedom); for the
    medians of ``candidates`` runs (value and probe alike), the interval of such a median.

    Dividing by the probe assumes the workload feels a busy machine exactly as the probe does. Here a memory-bound
    workload (the detector's convolutions) moved about twice as much as the cache-resident probe matmul from run to
    run, while the two stayed highly correlated: the sensitivity learned from the history takes that out, where a
    plain ratio leaves half of it in. ``history`` and ``obtained`` are (value, probe) pairs, larger value worse.
    """
    from scipy.stats import t as student_t

    if len(history) < 3:
        raise ValueError(f"a probe-adjusted history test needs at least 3 runs, got {len(history)}")
    if any(v <= 0 or p <= 0 for v, p in [*history, obtained]):
        raise ValueError("history values and probe times must be positive")
    ys = [math.log(v) for v, _ in history]
    xs = [math.log(p) for _, p in history]
    # outliers are found around a robust line (Theil-Sen: the median of the pairwise slopes), which one slow
    # run cannot tilt; the interval then comes from least squares over the runs kept
    robust_slope = _theil_sen(xs, ys)
    in_order = [y - robust_slope * x for x, y in zip(xs, ys, strict=True)]  # every run, set aside or not
    kept = _kept(in_order, noise_floor)
    set_aside = kept.count(False)
    outliers = [(x, y) for x, y, keep in zip(xs, ys, kept, strict=True) if not keep]
    slope, x_mean, y_mean, sxx = _fit(xs, ys)
    if set_aside:
        xs = [x for x, keep in zip(xs, kept, strict=True) if keep]
        ys = [y for y, keep in zip(ys, kept, strict=True) if keep]
        slope, x_mean, y_mean, sxx = _fit(xs, ys)
    n = len(ys)
    residuals = [y - (y_mean + slope * (x - x_mean)) for x, y in zip(xs, ys, strict=True)]
    spread = max(math.sqrt(sum(r * r for r in residuals) / (n - 2)), MIN_LOG_SPREAD, noise_floor)
    x_now, y_now = math.log(obtained[1]), math.log(obtained[0])
    leverage = (x_now - x_mean) ** 2 / sxx if sxx > 0 else 0.0
    scale = spread * math.sqrt(_candidates_share(candidates, in_order) + 1 / n + leverage)
    dof = n - 2
    deviation = y_now - (y_mean + slope * (x_now - x_mean))
    t_value = deviation / scale
    critical = float(student_t.ppf(1 - alpha, dof))
    return HistoryTest(
        ratio=math.exp(deviation),
        threshold=math.exp(critical * scale),
        p_worse=float(student_t.sf(t_value, dof)),
        p_better=float(student_t.cdf(t_value, dof)),
        runs=n,
        spread=spread,
        sensitivity=slope,
        set_aside=set_aside,
        slowest_set_aside=max((math.exp(y - (y_mean + slope * (x - x_mean))) for x, y in outliers), default=None),
    )


def _theil_sen(xs: Sequence[float], ys: Sequence[float]) -> float:
    slopes = [(ys[j] - ys[i]) / (xs[j] - xs[i]) for i in range(len(xs)) for j in range(i + 1, len(xs))
              if xs[j] != xs[i]]
    return min(max(statistics.median(slopes), 0.0), MAX_PROBE_SENSITIVITY) if slopes else 0.0


def _fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float, float]:
    """Least-squares slope (kept within 0..MAX_PROBE_SENSITIVITY), the means and the spread of x."""
    x_mean, y_mean = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - x_mean) ** 2 for x in xs)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True)) / sxx if sxx > 0 else 0.0
    return min(max(slope, 0.0), MAX_PROBE_SENSITIVITY), x_mean, y_mean, sxx


#: the fewest rounds a within-run spread is computed from
MIN_SPREAD_ROUNDS = 10


def run_spread(samples: Sequence[float] | None) -> float | None:
    """(p90 - p10) / median of a run's rounds: its within-run dispersion; None for fewer than MIN_SPREAD_ROUNDS."""
    if not samples or len(samples) < MIN_SPREAD_ROUNDS:
        return None
    ordered = sorted(samples)
    middle = statistics.median(ordered)
    low, high = ordered[len(ordered) // 10], ordered[(len(ordered) * 9) // 10]
    return (high - low) / middle if middle > 0 else None


def lower_quartile(samples: Sequence[float]) -> float:
    """The nearest-rank 25th percentile."""
    ordered = sorted(samples)
    return ordered[max(math.ceil(0.25 * len(ordered)), 1) - 1]


def median_lower_bound(values: Sequence[float], alpha: float) -> float | None:
    """A distribution-free one-sided ``1 - alpha`` lower confidence bound on the median of ``values`` (the sign
    test's order statistic): the k-th smallest, k the largest with P(Binomial(n, 1/2) <= k - 1) <= alpha. None when
    there are too few values for any bound at that level (fewer than log2(1/alpha) + 1)."""
    ordered = sorted(values)
    n = len(ordered)
    k, below = 0, 0.0  # below: P(B <= k - 1), accumulated
    while k < n:
        below_next = below + math.comb(n, k) / 2**n  # P(B <= k)
        if below_next > alpha:
            break
        k, below = k + 1, below_next
    return ordered[k - 1] if k else None


def candidate_runs_for(spread: float, change: float, alpha: float, history_runs: int, power: float = 0.95,
                       largest: int = 30) -> int | None:
    """The fewest candidate runs whose median a history of ``history_runs`` runs with run-to-run spread
    ``spread`` (standard deviation of the log values) judges slower with probability ``power`` when the candidate
    is ``change`` slower (0.1: 10%), at a one-sided ``alpha``; None where even ``largest`` runs do not (the
    history's own uncertainty, ``1/n``, is a floor no number of candidate runs removes)."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    if spread < 0 or change <= 0 or history_runs < 2 or not 0 < alpha < 1:
        raise ValueError(f"spread {spread}, change {change}, history runs {history_runs}, alpha {alpha}: need "
                         "spread >= 0, change > 0, at least 2 runs and alpha in (0, 1)")
    needed = (float(student_t.ppf(1 - alpha, history_runs - 1)) + float(norm.ppf(power))) * spread
    for runs in range(1, largest + 1):
        if needed * math.sqrt(median_variance_share(runs) + 1 / history_runs) <= math.log1p(change):
            return runs
    return None
