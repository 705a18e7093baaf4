"""Paired A/B statistics: two software stacks measured on one machine, now, in interleaved fresh processes.

Each pair is one run of A and one of B next to each other in a balanced order (ABBA...), so the machine's slow
phases hit both sides of a pair alike; what is left is each process's own luck. That luck is not normal: on a shared
runner a process often draws a slow mode for its whole life (a detector at 20 ms instead of 14 ms in a quarter of
the processes), so a pair's log-ratio ``ln(B/A)`` is mostly small and sometimes ±0.36. A mean of log-ratios and a
t-test are at the mercy of those draws; ranks are not. For every timed metric:

- the estimate of B/A is the Hodges–Lehmann estimate, the median of the Walsh averages of the log-ratios
  (``(d_i + d_j) / 2`` for ``i <= j``), as a ratio;
- its interval is the distribution-free one that goes with it: Walsh averages cut at the critical value of
  Wilcoxon's signed-rank statistic (exact null distribution; with tied magnitudes, the normal approximation with
  the tie correction), so the interval excludes 1 exactly when the test rejects;
- the test is Wilcoxon's two-sided signed-rank test of a distribution of ``ln(B/A)`` symmetric about 0.

Holm's step-down over all the metrics of one comparison keeps the chance of any false alarm at ``alpha`` (the
intervals are at Bonferroni's level, which Holm's decisions never contradict in the first step). A metric without a
significant difference says how large a difference these pairs could have seen: the change the same test would
detect with probability ``power``, from the interval's width as a normal approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Hashable, Sequence

import numpy as np

#: the chance of any false alarm over all the timed metrics of one comparison
DEFAULT_ALPHA = 0.01
#: for "the smallest difference it could have seen"
DEFAULT_POWER = 0.95
MIN_PAIRS = 3
#: beyond this many pairs the signed-rank statistic's null distribution is taken as normal
EXACT_PAIRS = 400

_NORMAL = NormalDist()


def balanced_order(pairs: int) -> list[tuple[int, str]]:
    """The runs of ``pairs`` pairs in ABBA order, each with its pair's index: A0 B0 B1 A1 A2 B2 B3 A3 ... A drift
    that grows steadily over the comparison then lands on A first as often as on B first."""
    if pairs < 1:
        raise ValueError(f"pairs must be at least 1, got {pairs}")
    order: list[tuple[int, str]] = []
    for pair in range(pairs):
        sides = ("A", "B") if pair % 2 == 0 else ("B", "A")
        order.extend((pair, side) for side in sides)
    return order


@dataclass(frozen=True)
class PairedEstimate:
    """B/A of one metric over its pairs: the estimate, its interval at the comparison's adjusted level, the test."""

    pairs: int
    #: Hodges–Lehmann estimate of B/A
    ratio: float
    #: the interval; 0 and inf where too few pairs bound it at this level
    low: float
    high: float
    #: two-sided signed-rank test of ln(B/A) symmetric about 0, before the adjustment for the other metrics
    p_value: float
    #: the smallest |B/A - 1| this test detects with the chosen power at the observed spread (a ratio above 1;
    #: inf where the interval is unbounded)
    detectable: float
    #: the standard deviation of ln(B/A) over the pairs
    spread: float
    #: the spread of ln(B/A) per pair that a normal-theory test would need for this interval's width: what the
    #: pairs needed for a change scale with (:func:`pairs_for`)
    effective_spread: float

    @property
    def bounded(self) -> bool:
        return self.low > 0 and math.isfinite(self.high)

    def to_dict(self) -> dict[str, Any]:
        def finite(value: float) -> float | None:
            return value if math.isfinite(value) and value > 0 else None

        return {"pairs": self.pairs, "ratio": self.ratio, "low": finite(self.low), "high": finite(self.high),
                "p_value": self.p_value, "detectable": finite(self.detectable), "spread": self.spread,
                "effective_spread": finite(self.effective_spread), "method": "signed-rank / Hodges-Lehmann"}


def _check_pairs(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} values of A and {len(b)} of B: a paired comparison needs one of each per pair")
    if len(a) < MIN_PAIRS:
        raise ValueError(f"{len(a)} pair(s): a paired comparison needs at least {MIN_PAIRS}")
    bad = [value for value in (*a, *b) if not (math.isfinite(value) and value > 0)]
    if bad:
        raise ValueError(f"value {bad[0]!r}: the ratio of two runs needs finite values above 0")


@lru_cache(maxsize=64)
def _signed_rank_cdf(pairs: int) -> np.ndarray:
    """P(W+ <= w) for w = 0 .. n(n+1)/2 under the null: each rank's sign a fair coin."""
    probabilities = np.zeros(pairs * (pairs + 1) // 2 + 1)
    probabilities[0] = 1.0
    for rank in range(1, pairs + 1):
        shifted = np.zeros_like(probabilities)
        shifted[rank:] = probabilities[:-rank]
        probabilities = (probabilities + shifted) / 2
    return np.cumsum(probabilities)


def signed_rank_p_value(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank test of a distribution symmetric about 0; zeros dropped (Wilcoxon's way).
    Exact without tied magnitudes up to :data:`EXACT_PAIRS`, else normal with the tie correction."""
    values = np.asarray([d for d in differences if d != 0], dtype=float)
    n = len(values)
    if n == 0:
        return 1.0
    magnitudes = np.abs(values)
    from scipy.stats import rankdata

    ranks = rankdata(magnitudes)  # ties share their average rank
    positive = float(ranks[values > 0].sum())
    tied = len(np.unique(magnitudes)) < n
    if not tied and n <= EXACT_PAIRS:
        cdf = _signed_rank_cdf(n)
        w = int(round(positive))
        lower = cdf[w]
        upper = 1.0 - (cdf[w - 1] if w > 0 else 0.0)
        return float(min(1.0, 2 * min(lower, upper)))
    mean = n * (n + 1) / 4
    _, counts = np.unique(magnitudes, return_counts=True)
    variance = n * (n + 1) * (2 * n + 1) / 24 - float((counts ** 3 - counts).sum()) / 48
    if variance <= 0:
        return 1.0
    z = (abs(positive - mean) - 0.5) / math.sqrt(variance)
    return float(min(1.0, 2 * (1 - _NORMAL.cdf(max(z, 0.0)))))


def _walsh_cut(pairs: int, level: float) -> int:
    """How many Walsh averages each end of the interval at ``1 - level`` leaves out (0: unbounded)."""
    if pairs <= EXACT_PAIRS:
        cdf = _signed_rank_cdf(pairs)
        return int(np.searchsorted(cdf, level / 2, side="right"))
    mean = pairs * (pairs + 1) / 4
    sd = math.sqrt(pairs * (pairs + 1) * (2 * pairs + 1) / 24)
    return max(0, int(math.floor(mean - _NORMAL.inv_cdf(1 - level / 2) * sd)))


def fewest_pairs(level: float) -> int:
    """The fewest pairs whose signed-rank test can reject at ``level`` at all (all pairs one way round)."""
    if not 0 < level < 1:
        raise ValueError(f"level {level} must lie in (0, 1)")
    pairs = MIN_PAIRS
    while _walsh_cut(pairs, level) == 0:
        pairs += 1
    return pairs


def paired_estimate(a: Sequence[float], b: Sequence[float], level: float,
                    power: float = DEFAULT_POWER) -> PairedEstimate:
    """B/A from paired values (``a[i]`` and ``b[i]`` ran next to each other), with an interval at ``1 - level``
    (two-sided) and the smallest change detectable at ``level`` with ``power``."""
    _check_pairs(a, b)
    if not 0 < level < 1 or not 0 < power < 1:
        raise ValueError(f"level {level} and power {power} must both lie in (0, 1)")
    logs = np.log(np.asarray(b, dtype=float) / np.asarray(a, dtype=float))
    pairs = len(logs)
    upper_index = np.triu_indices(pairs)
    walsh = np.sort(((logs[:, None] + logs[None, :]) / 2)[upper_index])
    centre = float(np.median(walsh))
    cut = _walsh_cut(pairs, level)
    low = math.exp(float(walsh[cut - 1])) if cut else 0.0
    high = math.exp(float(walsh[len(walsh) - cut])) if cut else math.inf
    p_value = signed_rank_p_value(list(logs))
    spread = float(np.std(logs, ddof=1))
    z_level = _NORMAL.inv_cdf(1 - level / 2)
    if cut:
        error = (math.log(high) - math.log(low)) / (2 * z_level)
        detectable = math.exp((z_level + _NORMAL.inv_cdf(power)) * error)
        effective = error * math.sqrt(pairs)
    else:
        detectable = effective = math.inf
    return PairedEstimate(pairs, math.exp(centre), low, high, p_value, detectable, spread, effective)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order: compare each with the family's alpha."""
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def holm_per_measurement(p_values: Sequence[float], measurements: Sequence[Hashable]) -> list[float]:
    """Holm over the distinct measurements, each metric given its measurement's adjusted p-value: the latency and
    the throughput of one set of timed rounds are one hypothesis (a monotone transform of the same ratios, so the
    same p-value), and counting them twice would only make the family stricter than it is."""
    per_measurement: dict[Hashable, float] = {}
    for p_value, measurement in zip(p_values, measurements, strict=True):
        per_measurement[measurement] = min(p_value, per_measurement.get(measurement, 1.0))
    names = list(per_measurement)
    adjusted = dict(zip(names, holm([per_measurement[name] for name in names]), strict=True))
    return [adjusted[measurement] for measurement in measurements]


def pairs_for(spread: float, change: float, alpha: float, metrics: int, power: float = DEFAULT_POWER,
              largest: int = 1000, simulations: int = 400) -> int | None:
    """The fewest pairs that detect a ``change`` (0.05: 5%) with ``power``, among ``metrics`` metrics at
    family-wise ``alpha`` (Bonferroni: the first step of Holm's), when ln(B/A) per pair is normal with standard
    deviation ``spread`` (:attr:`PairedEstimate.effective_spread` for pairs that are not); None beyond ``largest``.
    The normal approximation gives the start, a seeded simulation of the signed-rank test the answer (its ranks
    and, at few pairs, its coarse p-values need more pairs than a t-test would). A planning aid: the power
    self-check (``pytest-accel ab-power``) measures the real thing on a runner."""
    if spread < 0 or change <= 0 or metrics < 1:
        raise ValueError(f"spread {spread}, change {change} and metrics {metrics}: need spread >= 0, change > 0, "
                         "metrics >= 1")
    level = alpha / metrics
    effect = math.log1p(change)
    needed = (_NORMAL.inv_cdf(1 - level / 2) + _NORMAL.inv_cdf(power)) * spread
    pairs = max(fewest_pairs(level), math.ceil((needed / effect) ** 2) if effect > 0 else MIN_PAIRS)
    rng = np.random.default_rng(0)
    while pairs <= largest:
        draws = effect + spread * rng.standard_normal((simulations, pairs))
        caught = sum(signed_rank_p_value(list(row)) < level and float(np.median(row)) > 0 for row in draws)
        if caught >= power * simulations:
            return pairs
        pairs = max(pairs + 1, math.ceil(pairs * 1.05))
    return None
