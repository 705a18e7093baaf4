"""Audits a device cannot game, after MLPerf's TEST01 and TEST04.

- **Outputs under load.** The output of the timed rounds is compared with the same input's output computed outside
  the timing: a device that is fast because it computes something else under load fails.
- **Repeated against distinct inputs.** Model-only latency on one input given again and again, against inputs that
  change every call: a device markedly faster on the repeated one is caching results instead of computing them.
  Model-only, because the cost of NMS grows with the number of detections, which differs between inputs; the
  model's forward costs the same for every input of one shape. The calls run in blocks of a few, the repeated
  input again and again within its block (so a cache that keeps only the last input hits too), blocks of the two
  kinds back to back in pairs whose order alternates (ABBA). A pair is judged by the ratio of its blocks' medians:
  a busy neighbour stretches whichever calls it happens to hit, so its effect on a pair is as likely one way as the
  other, while a device that caches is faster in every pair. The value held to the limit is a lower confidence
  bound on the median paired speed-up (a sign-test bound, free of any assumption on the noise's shape): an honest
  device reaches the limit only if interference favours the repeated input in most pairs by chance. Summaries of
  the two sides beside a busy neighbour (medians, or lower quartiles, of 24 to 40 calls) read an honest device as
  1.32-1.35 times faster.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from pytest_accel.stats import median_lower_bound

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


#: confidence of the bound on the paired speed-up that the audit holds to the limit
REPEATED_INPUT_CONFIDENCE = 0.99


#: confidence of the bound on the paired speed-up that the audit holds to the limit
REPEATED_INPUT_CONFIDENCE = 0.99
#: calls per block: the repeated input is given this many times in a row
AUDIT_BLOCK = 4


@dataclass(frozen=True)
class RepeatedInputAudit:
    #: seconds per call, block by block; distinct_blocks[i] ran back to back with repeated_blocks[i]
    repeated_blocks: tuple[tuple[float, ...], ...]
    distinct_blocks: tuple[tuple[float, ...], ...]

    @property
    def rounds(self) -> int:
        """Timed calls per side."""
        return sum(len(block) for block in self.repeated_blocks)

    @property
    def paired_speedups(self) -> list[float]:
        """Per pair of blocks, how much faster the repeated input ran (distinct median / repeated median)."""
        speedups = []
        for repeated, distinct in zip(self.repeated_blocks, self.distinct_blocks, strict=True):
            middle = statistics.median(repeated)
            speedups.append(statistics.median(distinct) / middle if middle > 0 else math.inf)
        return speedups

    @property
    def median_speedup(self) -> float:
        return statistics.median(self.paired_speedups)

    @property
    def speedup(self) -> float:
        """The speed-up the pairs support at REPEATED_INPUT_CONFIDENCE: a lower confidence bound on their median
        (1.0: alike; 2.0: at least twice as fast on the repeated input). With too few pairs for a bound at that
        level, the smallest paired speed-up."""
        speedups = self.paired_speedups
        bound = median_lower_bound(speedups, 1 - REPEATED_INPUT_CONFIDENCE)
        return bound if bound is not None else min(speedups)

    def summary(self) -> dict[str, float | int]:
        repeated = [t for block in self.repeated_blocks for t in block]
        distinct = [t for block in self.distinct_blocks for t in block]
        return {"median_paired_speedup": self.median_speedup, "confidence": REPEATED_INPUT_CONFIDENCE,
                "pairs": len(self.repeated_blocks), "rounds": self.rounds,
                "repeated_median_s": statistics.median(repeated), "distinct_median_s": statistics.median(distinct)}


def repeated_against_distinct(forward: Callable[[Any], Any], synchronize: Callable[[], None], repeated: Any,
                              distinct: Sequence[Any], rounds: int, block: int = AUDIT_BLOCK,
                              clock: Callable[[], float] = time.perf_counter) -> RepeatedInputAudit:
    """Time ``forward`` ``rounds`` times on ``repeated`` and as often on the next of ``distinct``, in blocks of
    ``block`` calls (fewer if ``rounds`` is smaller; a remainder is not timed), blocks paired back to back with the
    order alternating: R D, D R, R D, ... so a machine that slows down or speeds up affects both sides alike."""
    if not distinct:
        raise ValueError("the audit needs at least one distinct input")
    if rounds < 1 or block < 1:
        raise ValueError(f"the audit needs at least one round in blocks of at least one, got {rounds} in {block}")
    block = min(block, rounds)
    repeated_blocks: list[tuple[float, ...]] = []
    distinct_blocks: list[tuple[float, ...]] = []
    calls = 0

    def timed_block(inputs: Sequence[Any]) -> tuple[float, ...]:
        times = []
        for batch in inputs:
            synchronize()
            start = clock()
            forward(batch)
            synchronize()
            times.append(clock() - start)
        return tuple(times)

    for pair in range(rounds // block):
        others = [distinct[(calls + i) % len(distinct)] for i in range(block)]
        calls += block
        if pair % 2:
            distinct_blocks.append(timed_block(others))
            repeated_blocks.append(timed_block([repeated] * block))
        else:
            repeated_blocks.append(timed_block([repeated] * block))
            distinct_blocks.append(timed_block(others))
    return RepeatedInputAudit(tuple(repeated_blocks), tuple(distinct_blocks))
