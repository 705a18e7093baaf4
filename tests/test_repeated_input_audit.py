"""The repeated-input audit (after MLPerf's TEST04) on a virtual clock: an honest device beside a busy neighbour
passes, a device faster on the repeated input fails (a cache of the last input included), and the bound it is
judged by has the coverage it claims."""

from __future__ import annotations

import random
from typing import Callable

import pytest

from pytest_accel.stats import median_lower_bound
from pytest_accel.workloads.detection.audits import (
    REPEATED_INPUT_LIMIT,
    RepeatedInputAudit,
    repeated_against_distinct,
)

FORWARD_S = 0.045
REPEATED, DISTINCT = "repeated", "distinct"


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def audit_on(clock: VirtualClock, cost: Callable[[str], float], rounds: int = 40) -> RepeatedInputAudit:
    def forward(batch: str) -> None:
        clock.now += cost(batch)

    distinct = [f"{DISTINCT}-{index}" for index in range(rounds)]
    return repeated_against_distinct(forward, lambda: None, REPEATED, distinct, rounds, clock=clock)


def loaded(work: float, rng: random.Random) -> float:
    """A call of ``work`` seconds beside a neighbour on a 2-core machine at load 3.5: stretched by the CPU share it
    loses (30% on average, exponentially distributed), and, at a chance that grows with its length (one in ten for
    a forward), stalled for longer (100 ms on average)."""
    stalled = rng.random() < 0.1 * work / FORWARD_S
    return work * (1 + rng.expovariate(1 / 0.3)) + (rng.expovariate(1 / 0.1) if stalled else 0.0)


def honest(rng: random.Random) -> Callable[[str], float]:
    return lambda batch: loaded(FORWARD_S * rng.gauss(1, 0.02), rng)


def faster_on_repeated(rng: random.Random, factor: float) -> Callable[[str], float]:
    return lambda batch: loaded(FORWARD_S / (factor if batch == REPEATED else 1) * rng.gauss(1, 0.02), rng)


def test_an_honest_device_beside_a_busy_neighbour_passes() -> None:
    speedups = [audit_on(VirtualClock(), honest(random.Random(seed))).speedup for seed in range(300)]
    failed = sum(s > REPEATED_INPUT_LIMIT for s in speedups)
    assert failed <= 1, f"{failed} of 300 honest audits failed; worst bound {max(speedups):.3f}"


@pytest.mark.parametrize("factor", [3.0, 1000.0])
def test_a_device_faster_on_the_repeated_input_fails(factor: float) -> None:
    speedups = [audit_on(VirtualClock(), faster_on_repeated(random.Random(seed), factor)).speedup
                for seed in range(100)]
    caught = sum(s > REPEATED_INPUT_LIMIT for s in speedups)
    assert caught >= 95, f"only {caught} of 100 caught at {factor}x"


def test_a_speedup_within_the_limit_passes() -> None:
    speedups = [audit_on(VirtualClock(), faster_on_repeated(random.Random(seed), 1.2)).speedup for seed in range(100)]
    assert sum(s > REPEATED_INPUT_LIMIT for s in speedups) <= 1


def test_a_cache_of_the_last_input_alone_fails() -> None:
    clock, last = VirtualClock(), {"batch": None}

    def one_entry_cache(batch: str) -> float:
        hit, last["batch"] = last["batch"] == batch, batch
        return 1e-4 if hit else FORWARD_S

    audit = audit_on(clock, one_entry_cache)
    assert audit.speedup > 100


def test_blocks_alternate_so_a_machine_slowing_down_affects_both_sides() -> None:
    clock, calls = VirtualClock(), []

    def slowing(batch: str) -> float:
        calls.append(batch)
        return FORWARD_S * (1 + 0.05 * len(calls))  # every call 5% slower than the one before

    audit = audit_on(clock, slowing, rounds=40)
    assert [c.split('-')[0] for c in calls[:16]] == [REPEATED] * 4 + [DISTINCT] * 8 + [REPEATED] * 4
    assert len(set(calls)) == 41  # every distinct input once
    assert len(calls) == 80 and audit.rounds == 40 and len(audit.paired_speedups) == 10
    assert 0.9 < audit.median_speedup < 1.1 and audit.speedup <= REPEATED_INPUT_LIMIT


def test_a_remainder_is_not_timed_and_few_rounds_make_one_block() -> None:
    assert audit_on(VirtualClock(), lambda batch: FORWARD_S, rounds=10).rounds == 8
    assert audit_on(VirtualClock(), lambda batch: FORWARD_S, rounds=3).rounds == 3


def test_the_summary_names_what_the_bound_came_from() -> None:
    audit = audit_on(VirtualClock(), faster_on_repeated(random.Random(0), 2.0))
    summary = audit.summary()
    assert summary["rounds"] == 40 and summary["pairs"] == 10 and summary["confidence"] == 0.99
    assert summary["median_paired_speedup"] == pytest.approx(2.0, rel=0.3)
    assert audit.speedup <= summary["median_paired_speedup"]


def test_the_audit_refuses_no_rounds_and_no_inputs() -> None:
    with pytest.raises(ValueError, match="at least one distinct input"):
        repeated_against_distinct(lambda b: None, lambda: None, REPEATED, [], 3)
    with pytest.raises(ValueError, match="at least one round in blocks of at least one, got 0 in 4"):
        repeated_against_distinct(lambda b: None, lambda: None, REPEATED, [DISTINCT], 0)


def test_the_median_bound_is_the_sign_test_order_statistic() -> None:
    values = list(range(1, 41))
    assert median_lower_bound(values, 0.01) == 13  # P(Bin(40, 1/2) <= 12) = 0.0083; <= 13 is 0.019
    assert median_lower_bound(values[:10], 0.01) == 1
    assert median_lower_bound(values[:6], 0.01) is None  # even the minimum is above the median 1/64 of the time


def test_the_median_bound_covers_at_its_level() -> None:
    rng = random.Random(7)
    trials = 4000
    above = sum(median_lower_bound([rng.lognormvariate(0, 1) for _ in range(40)], 0.01) > 1.0  # true median 1
                for _ in range(trials))
    assert above / trials <= 0.0083 + 0.005  # the bound's exact level, plus sampling error
