"""Paired A/B statistics: two software stacks measured on one machine, now, in interleaved fresh processes.

Each pair is one run of A and one of B next to each other in a balanced order (ABBA...), so the machine's slow
phases hit both sides of a pair alike; what is left is each process's own luck. For every timed metric the paired
log-ratios ``ln(B/A)`` give the estimate of B/A (their mean, a geometric mean of the ratios), a confidence interval
and a two-sided paired t-test; Holm's step-down over all the metrics of one comparison keeps the chance of any false
alarm at ``alpha`` (the intervals are Bonferroni's, which Holm's decisions never contradict in the first step). A
metric without a significant difference says how large a difference this many pairs could have seen: the change
the same test would detect with probability ``power`` at the observed spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

#: the chance of any false alarm over all the timed metrics of one comparison
DEFAULT_ALPHA = 0.01
#: for "the smallest difference it could have seen"
DEFAULT_POWER = 0.95
MIN_PAIRS = 3


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
    #: geometric mean of B/A
    ratio: float
    low: float
    high: float
    #: two-sided paired t-test of ln(B/A) = 0, before the adjustment for the other metrics
    p_value: float
    #: the smallest |B/A - 1| this test detects with the chosen power at the observed spread (a ratio above 1)
    detectable: float
    #: the standard deviation of ln(B/A) over the pairs
    spread: float

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "ratio": self.ratio, "low": self.low, "high": self.high,
                "p_value": self.p_value, "detectable": self.detectable, "spread": self.spread}


def _check_pairs(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} values of A and {len(b)} of B: a paired comparison needs one of each per pair")
    if len(a) < MIN_PAIRS:
        raise ValueError(f"{len(a)} pair(s): a paired comparison needs at least {MIN_PAIRS}")
    bad = [value for value in (*a, *b) if not (math.isfinite(value) and value > 0)]
    if bad:
        raise ValueError(f"value {bad[0]!r}: the ratio of two runs needs finite values above 0")


def paired_estimate(a: Sequence[float], b: Sequence[float], level: float,
                    power: float = DEFAULT_POWER) -> PairedEstimate:
    """B/A from paired values (``a[i]`` and ``b[i]`` ran next to each other), with an interval at ``1 - level``
    (two-sided) and the smallest change detectable at ``level`` with ``power``."""
    from scipy.stats import t as student_t

    _check_pairs(a, b)
    if not 0 < level < 1 or not 0 < power < 1:
        raise ValueError(f"level {level} and power {power} must both lie in (0, 1)")
    logs = [math.log(y / x) for x, y in zip(a, b, strict=True)]
    pairs = len(logs)
    mean = sum(logs) / pairs
    spread = math.sqrt(sum((value - mean) ** 2 for value in logs) / (pairs - 1))
    error = spread / math.sqrt(pairs)
    critical = float(student_t.ppf(1 - level / 2, pairs - 1))
    if error == 0:
        p_value = 1.0 if mean == 0 else 0.0
    else:
        p_value = float(2 * student_t.sf(abs(mean) / error, pairs - 1))
    detectable = math.exp((critical + float(student_t.ppf(power, pairs - 1))) * error)
    return PairedEstimate(pairs, math.exp(mean), math.exp(mean - critical * error), math.exp(mean + critical * error),
                          p_value, detectable, spread)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order: compare each with the family's alpha."""
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def pairs_for(spread: float, change: float, alpha: float, metrics: int, power: float = DEFAULT_POWER,
              largest: int = 1000) -> int | None:
    """The fewest pairs that detect a ``change`` (0.05: 5%) with ``power``, at a spread of ln(B/A) of ``spread``
    per pair, among ``metrics`` metrics at family-wise ``alpha`` (Bonferroni: the first step of Holm's); None
    beyond ``largest``."""
    from scipy.stats import t as student_t

    if spread < 0 or change <= 0 or metrics < 1:
        raise ValueError(f"spread {spread}, change {change} and metrics {metrics}: need spread >= 0, change > 0, "
                         "metrics >= 1")
    effect = math.log1p(change)
    for pairs in range(MIN_PAIRS, largest + 1):
        needed = (student_t.ppf(1 - alpha / metrics / 2, pairs - 1) + student_t.ppf(power, pairs - 1)) * spread
        if needed / math.sqrt(pairs) <= effect:
            return pairs
    return None
