"""Paired A/B statistics: the balanced order, B/A with its interval and test, Holm's adjustment over the metrics of
a comparison, and the pairs a change needs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_accel.paired import balanced_order, holm, paired_estimate, pairs_for


def test_the_order_is_abba_and_every_pair_has_one_of_each() -> None:
    order = balanced_order(4)
    assert "".join(side for _, side in order) == "ABBAABBA"
    assert [pair for pair, _ in order] == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="pairs must be at least 1, got 0"):
        balanced_order(0)


def test_a_constant_slowdown_is_estimated_with_an_interval_around_it() -> None:
    rng = np.random.default_rng(1)
    a = np.exp(rng.normal(0, 0.05, 12)) * 0.010
    shared = np.exp(rng.normal(0, 0.2, 12))  # slow phases of the machine, the same for both runs of a pair
    estimate = paired_estimate(list(a * shared), list(a * shared * 1.05 * np.exp(rng.normal(0, 0.01, 12))), 0.01)
    assert estimate.low < 1.05 < estimate.high and estimate.low > 1.0 and estimate.p_value < 1e-6
    assert estimate.ratio == pytest.approx(1.05, rel=0.01) and estimate.detectable < 1.03


def test_identical_runs_show_no_difference_and_refuse_what_cannot_be_paired() -> None:
    same = paired_estimate([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 0.01)
    assert (same.ratio, same.p_value, same.low, same.high) == (1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="3 values of A and 2 of B"):
        paired_estimate([1.0, 2.0, 3.0], [1.0, 2.0], 0.01)
    with pytest.raises(ValueError, match="2 pair.s.: a paired comparison needs at least 3"):
        paired_estimate([1.0, 2.0], [1.0, 2.0], 0.01)
    with pytest.raises(ValueError, match="value 0.0: the ratio of two runs needs finite values above 0"):
        paired_estimate([1.0, 2.0, 0.0], [1.0, 2.0, 3.0], 0.01)
    with pytest.raises(ValueError, match="level 1.5 and power 0.95 must both lie in"):
        paired_estimate([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1.5)


def test_holm_adjusts_in_steps_and_keeps_the_order() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([]) == []


def test_a_over_a_comparisons_flag_any_metric_at_most_at_the_family_rate() -> None:
    rng = np.random.default_rng(7)
    comparisons, metrics, pairs, alpha = 150, 6, 10, 0.05
    flagged = 0
    for _ in range(comparisons):
        p_values = []
        for _ in range(metrics):
            a = np.exp(rng.normal(0, 0.1, pairs))
            b = a * np.exp(rng.normal(0, 0.03, pairs))  # the pair's shared noise cancels; B = A
            p_values.append(paired_estimate(list(a), list(b), alpha / metrics).p_value)
        flagged += min(holm(p_values)) < alpha
    # binomial(150, 0.05): mean 7.5, P(> 15) < 0.5%
    assert flagged <= 15, flagged


def test_the_pairs_needed_grow_with_the_spread_and_are_enough_when_simulated() -> None:
    assert pairs_for(0.02, 0.05, 0.01, 20) < pairs_for(0.05, 0.05, 0.01, 20) < pairs_for(0.05, 0.02, 0.01, 20)
    assert pairs_for(0.5, 0.01, 0.01, 20, largest=50) is None
    needed = pairs_for(0.03, 0.05, 0.01, 10)
    assert needed is not None
    rng = np.random.default_rng(3)
    caught = sum(paired_estimate(list(a), list(a * 1.05 * np.exp(rng.normal(0, 0.03, needed))), 0.01 / 10).low > 1
                 for a in (np.exp(rng.normal(0, 0.2, needed)) for _ in range(200)))
    assert caught >= 0.9 * 200, (needed, caught)
    with pytest.raises(ValueError, match="need spread >= 0, change > 0"):
        pairs_for(0.1, 0.0, 0.01, 3)
    assert math.isfinite(paired_estimate([1.0, 1.1, 0.9], [1.0, 1.2, 0.95], 0.01).detectable)
