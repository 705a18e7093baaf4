"""Audits a device cannot game, after MLPerf's TEST01 and TEST04.

- **Outputs under load.** The output of the timed rounds is compared with the same input's output computed outside
  the timing: a device that is fast because it computes something else under load fails.
- **Repeated against distinct inputs.** Model-only latency on one input given again and again, against inputs that
  change every call: a device markedly faster on the repeated one is caching results instead of computing them.
  Model-only, because the cost of NMS grows with the number of detections, which differs between inputs; the
  model's forward costs the same for every input of one shape. The two are compared by their lower quartiles:
  interference from a busy machine only adds time, at random rounds, so the quartile stays with the work done
  (beside a busy neighbour, medians of 24 rounds made an honest device look 1.35 times faster on the repeated
  input).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from pytest_accel.stats import lower_quartile

#: relative L2 difference allowed between the timed rounds' output and the untimed one: the same computation on a
#: deterministic device gives 0, non-deterministic reductions on GPUs a few 1e-6; an output computed differently
#: under load is off by far more
TIMED_OUTPUT_LIMIT = 1e-3
#: a repeated input may be this much faster than distinct ones (cache effects on the input alone stay well under
#: it: 1.2 MB of input against the model's weights and activations)
REPEATED_INPUT_LIMIT = 1.25


def relative_l2(obtained: np.ndarray, expected: np.ndarray) -> float:
    obtained, expected = np.asarray(obtained, np.float64), np.asarray(expected, np.float64)
    if obtained.shape != expected.shape:
        return float("inf")
    scale = float(np.linalg.norm(expected))
    return float(np.linalg.norm(obtained - expected) / scale) if scale else float(np.linalg.norm(obtained))


@dataclass(frozen=True)
class RepeatedInputAudit:
    repeated_median: float
    distinct_median: float
    rounds: int
    repeated_quartile: float
    distinct_quartile: float

    @property
    def speedup(self) -> float:
        """How much faster the repeated input ran than distinct ones (1.0: alike; 2.0: twice as fast), by the
        rounds' lower quartiles."""
        return self.distinct_quartile / self.repeated_quartile if self.repeated_quartile > 0 else float("inf")


def repeated_against_distinct(forward: Callable[[Any], Any], synchronize: Callable[[], None], repeated: Any,
                              distinct: Sequence[Any], rounds: int) -> RepeatedInputAudit:
    """Time ``forward`` on ``repeated`` and on the next of ``distinct`` in turn, ``rounds`` times each; which goes
    first alternates, so a machine that slows down or speeds up during the audit affects both alike."""
    if not distinct:
        raise ValueError("the audit needs at least one distinct input")
    repeated_times: list[float] = []
    distinct_times: list[float] = []

    def timed(batch: Any) -> float:
        synchronize()
        start = time.perf_counter()
        forward(batch)
        synchronize()
        return time.perf_counter() - start

    for index in range(rounds):
        other = distinct[index % len(distinct)]
        if index % 2:
            distinct_times.append(timed(other))
            repeated_times.append(timed(repeated))
        else:
            repeated_times.append(timed(repeated))
            distinct_times.append(timed(other))
    return RepeatedInputAudit(statistics.median(repeated_times), statistics.median(distinct_times), rounds,
                              lower_quartile(repeated_times), lower_quartile(distinct_times))
