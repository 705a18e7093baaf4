"""Convergence verdicts: do a device's training runs need more epochs to the target than the CPU reference's?

The reference is a set of runs (seeds) of the same recipe on the CPU; the device trains a few seeds of its own.
Both are taken as draws from one distribution of epochs-to-target when nothing is wrong.

* **Spread.** The reference's spread is the standard deviation of *all* its runs, with their n - 1 degrees of
  freedom. (The sample deviation of the trimmed runs underestimates the spread, about 0.65 sigma on average with
  8 runs, and drawing reference and observed runs from one distribution it fails about 3.4% of the time against a
  nominal 1%: ``simulate(..., statistic="trimmed reference")`` shows it.)
* **First look.** The mean of the first seeds is tested one-sidedly against the reference's mean with Student's t
  (a prediction interval for the mean of m new runs: error ``s * sqrt(1/n + 1/m)``, n - 1 degrees of freedom).
* **Confirmation before failing.** One bad seed must not decide by accident ([13, 13, 17] against a reference of
  about 11 looks slow on its mean; a seed that never reaches the target counts as ``max_epochs + 1``). A first
  look that is borderline (slower at 5%) therefore runs more seeds, and the verdict is taken on all of them
  with the single slowest set aside (MLPerf tolerates one run that does not converge). That statistic has no
  textbook distribution, but ``(statistic - reference mean) / reference spread`` is pivotal when all runs are
  normal, so its null distribution is simulated once, exactly, for the counts at hand. A run fails only when the
  confirmation is significant at alpha, so the false-alarm rate stays at or under alpha; screening at 5% rather
  than at alpha buys power (3 + 3 seeds against the shipped reference: a 4-epoch shift is caught 95% of the time
  instead of 79% by the first look alone).
* **Both directions.** Converging much faster than the reference allows (MLPerf fails such submissions: it often
  means a changed recipe or a broken evaluation) is reported as "faster?" with its p-value, and fails only when
  asked (``--accel-fail-faster-convergence``).

MLPerf's RCP checker differs: it gates only results that converge *faster* than the reference band allows (a
submission cannot buy speed with fewer epochs); a slower one just scores worse. Here a slower convergence is the
failure (a device that drops gradient updates or adds noise needs more epochs), and faster is reported.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

#: one-sided significance level of the verdict, per direction
ALPHA = 0.01
#: a first look slower at this level is borderline: more seeds are trained before the verdict (at ALPHA) is taken
BORDERLINE = 0.05
#: whole epochs: a reference whose runs agree exactly still carries the rounding to whole epochs (sd 1/sqrt(12))
MIN_SPREAD_EPOCHS = 1 / math.sqrt(12)
#: runs of the confirmation's statistic set aside as the slowest (one run that fails to converge is tolerated)
TOLERATED_SLOW_RUNS = 1
#: draws of the simulated null distribution of the confirmation's pivot (its p-values resolve to about 1e-4)
NULL_DRAWS = 200_000
_NULL_SEED = 20261123


@dataclass(frozen=True)
class ConvergenceLook:
    """One look at observed runs against the reference."""

    statistic: str  # "mean" or "mean without the slowest run"
    observed: float  # the statistic's value, epochs
    p_slower: float
    p_faster: float


@dataclass(frozen=True)
class ConvergenceVerdict:
    reference_mean: float
    reference_spread: float
    reference_runs: int
    first: ConvergenceLook
    #: the look over all seeds when the first was slower at alpha (the verdict's), else None
    confirmation: ConvergenceLook | None
    observed: list[float] = field(default_factory=list)  # every seed's epochs, first seeds first

    @property
    def p_slower(self) -> float:
        """The p-value the verdict rests on: the confirmation's when one ran."""
        return (self.confirmation or self.first).p_slower

    @property
    def p_faster(self) -> float:
        return self.first.p_faster


def reference_spread(reference: Sequence[float]) -> float:
    if len(reference) < 3:
        raise ValueError(f"a convergence reference needs at least 3 runs, got {len(reference)}")
    return max(statistics.stdev(reference), MIN_SPREAD_EPOCHS)


def mean_look(reference: Sequence[float], observed: Sequence[float]) -> ConvergenceLook:
    """The mean of the observed runs against the reference, by Student's t with the reference's n - 1 dof."""
    from scipy.stats import t as student_t

    if not observed:
        raise ValueError("no observed runs")
    spread = reference_spread(reference)
    n, m = len(reference), len(observed)
    observed_mean = sum(observed) / m
    t_value = (observed_mean - sum(reference) / n) / (spread * math.sqrt(1 / n + 1 / m))
    return ConvergenceLook("mean", observed_mean, float(student_t.sf(t_value, n - 1)),
                           float(student_t.cdf(t_value, n - 1)))


def trimmed_look(reference: Sequence[float], observed: Sequence[float],
                 set_aside: int = TOLERATED_SLOW_RUNS) -> ConvergenceLook:
    """The mean of the observed runs without the ``set_aside`` slowest, against its simulated null distribution."""
    if len(observed) <= set_aside:
        raise ValueError(f"{len(observed)} observed run(s) cannot set aside the {set_aside} slowest")
    kept = sorted(observed)[: len(observed) - set_aside]
    value = sum(kept) / len(kept)
    pivot = (value - sum(reference) / len(reference)) / reference_spread(reference)
    null = _null_pivots(len(reference), len(observed), set_aside)
    slower = (np.count_nonzero(null >= pivot) + 1) / (null.size + 1)
    faster = (np.count_nonzero(null <= pivot) + 1) / (null.size + 1)
    return ConvergenceLook(f"mean without the {set_aside} slowest", value, float(slower), float(faster))


@lru_cache(maxsize=32)
def _null_pivots(reference_runs: int, observed_runs: int, set_aside: int) -> np.ndarray:
    """(trimmed observed mean - reference mean) / reference sd, all runs standard normal: the pivot's distribution
    under "nothing changed", whatever the true mean and spread."""
    rng = np.random.default_rng(_NULL_SEED)
    reference = rng.standard_normal((NULL_DRAWS, reference_runs))
    observed = np.sort(rng.standard_normal((NULL_DRAWS, observed_runs)), axis=1)[:, : observed_runs - set_aside]
    spread = np.maximum(reference.std(axis=1, ddof=1), 1e-12)
    return (observed.mean(axis=1) - reference.mean(axis=1)) / spread


def judge_convergence(reference: Sequence[float], first_runs: Sequence[float],
                      more_runs: Callable[[], Sequence[float]], borderline: float = BORDERLINE) -> ConvergenceVerdict:
    """The two-step verdict: the first runs' mean; if that is slower at ``borderline``, ``more_runs()`` are
    trained and all runs, the slowest set aside, give the p-value the caller holds to alpha."""
    first = mean_look(reference, first_runs)
    observed = list(first_runs)
    confirmation = None
    if first.p_slower < borderline:
        observed += list(more_runs())
        confirmation = trimmed_look(reference, observed)
    return ConvergenceVerdict(sum(reference) / len(reference), reference_spread(reference), len(reference), first,
                              confirmation, observed)


# --- calibration by simulation: the false-alarm rate and the power docs/convergence.md states --------------------

STATISTICS = ("two-step", "mean", "trimmed reference")


@dataclass(frozen=True)
class Settings:
    """What a convergence verdict is run with, and the distribution of epochs-to-target the simulation draws from
    (the reference's own mean and spread)."""

    reference_runs: int
    first_runs: int
    confirmation_runs: int
    mean: float
    spread: float
    max_epochs: int | None = None
    alpha: float = ALPHA
    borderline: float = BORDERLINE

    def failing_share(self, shift: float, draws: int, statistic: str = "two-step", seed: int = 0) -> float:
        return simulate(self, shift, draws, statistic, seed)


def simulate(settings: Settings, shift: float, draws: int, statistic: str = "two-step", seed: int = 0) -> float:
    """The share of ``draws`` simulated device runs that fail when their epochs-to-target are ``shift`` epochs
    slower than the reference's (0: the false-alarm rate). Epochs are normal with the settings' mean and spread,
    rounded to whole epochs (at least 1, at most ``max_epochs + 1``, a run that did not converge), as training
    reports them.

    ``statistic``: ``two-step`` is the verdict above; ``mean`` the first look alone; ``trimmed reference`` the
    previous rule (olympic-mean reference, spread of its trimmed runs, for comparison)."""
    from scipy.stats import t as student_t

    if statistic not in STATISTICS:
        raise ValueError(f"statistic {statistic!r} is not one of {', '.join(STATISTICS)}")
    rng = np.random.default_rng(seed)
    ceiling = (settings.max_epochs + 1) if settings.max_epochs is not None else None
    alpha, confirmation_runs = settings.alpha, settings.confirmation_runs

    def epochs(shape: tuple[int, int], offset: float) -> np.ndarray:
        values = np.rint(rng.normal(settings.mean + offset, settings.spread, shape))
        return np.clip(values, 1, ceiling)

    n, m = settings.reference_runs, settings.first_runs
    reference = epochs((draws, n), 0.0)
    first = epochs((draws, m), shift)
    if statistic == "trimmed reference":
        ordered = np.sort(reference, axis=1)
        trimmed = ordered[:, 1:-1] if n >= 5 else ordered
        sd = trimmed.std(axis=1, ddof=1)
        error = np.maximum(sd * math.sqrt(1 / trimmed.shape[1] + 1 / m), 1e-12)
        t_values = (first.mean(axis=1) - trimmed.mean(axis=1)) / error
        return float(np.mean(student_t.sf(t_values, trimmed.shape[1] - 1) < alpha))
    sd = np.maximum(reference.std(axis=1, ddof=1), MIN_SPREAD_EPOCHS)
    ref_mean = reference.mean(axis=1)
    t_values = (first.mean(axis=1) - ref_mean) / (sd * math.sqrt(1 / n + 1 / m))
    if statistic == "mean":
        return float(np.mean(student_t.sf(t_values, n - 1) < alpha))
    first_fails = student_t.sf(t_values, n - 1) < settings.borderline
    more = epochs((draws, confirmation_runs), shift)
    every = np.sort(np.concatenate([first, more], axis=1), axis=1)[:, : m + confirmation_runs - TOLERATED_SLOW_RUNS]
    pivots = (every.mean(axis=1) - ref_mean) / sd
    null = np.sort(_null_pivots(n, m + confirmation_runs, TOLERATED_SLOW_RUNS))
    p_confirmed = (null.size - np.searchsorted(null, pivots, side="left") + 1) / (null.size + 1)
    return float(np.mean(first_fails & (p_confirmed < alpha)))


def smallest_detected_shift(settings: Settings, draws: int, power: float = 0.95, step: float = 0.25,
                            limit: float = 60.0) -> float | None:
    """The smallest shift (a multiple of ``step`` epochs) failed in at least ``power`` of the simulated runs."""
    shift = step
    while shift <= limit:
        if settings.failing_share(shift, draws) >= power:
            return shift
        shift += step
    return None


def seeds_for_shift(settings: Settings, shift: float, draws: int, power: float = 0.95, largest: int = 400
                    ) -> int | None:
    """The fewest seeds k (even) such that k reference runs and k device runs (k/2 first, k/2 more when
    borderline) fail a ``shift`` in at least ``power`` of the simulated runs; None beyond ``largest``."""
    def enough(k: int) -> bool:
        scaled = Settings(k, k // 2, k // 2, settings.mean, settings.spread, settings.max_epochs, settings.alpha,
                          settings.borderline)
        return scaled.failing_share(shift, draws) >= power

    low, high = 4, 8
    while not enough(high):
        if high >= largest:
            return None
        low, high = high, min(high * 2, largest)
    while high - low > 2:  # bisect over even counts
        middle = (low + high) // 4 * 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high
