"""Paired A/B statistics: the balanced order, B/A (Hodges–Lehmann) with its interval and signed-rank test, Holm's
adjustment over the metrics of a comparison, and the pairs a change needs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_accel.paired import (
    balanced_order,
    fewest_pairs,
    holm,
    paired_estimate,
    pairs_for,
    signed_rank_p_value,
)


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
    # every pair one way round: the smallest p-value 12 pairs can give
    assert estimate.low < 1.05 < estimate.high and estimate.low > 1.0 and estimate.p_value == 2 / 2 ** 12
    assert estimate.ratio == pytest.approx(1.05, rel=0.01) and estimate.detectable < 1.03


def test_identical_runs_show_no_difference_and_refuse_what_cannot_be_paired() -> None:
    same = paired_estimate([1.0, 2.0, 3.0] * 4, [1.0, 2.0, 3.0] * 4, 0.01)
    assert (same.ratio, same.p_value, same.low, same.high) == (1.0, 1.0, 1.0, 1.0)
    few = paired_estimate([1.0, 2.0, 3.0], [1.1, 2.2, 3.3], 0.01)
    assert (few.low, few.high, few.detectable) == (0.0, math.inf, math.inf) and not few.bounded
    assert few.to_dict()["low"] is None and few.to_dict()["high"] is None  # JSON has no infinity
    with pytest.raises(ValueError, match="3 values of A and 2 of B"):
        paired_estimate([1.0, 2.0, 3.0], [1.0, 2.0], 0.01)
    with pytest.raises(ValueError, match="2 pair.s.: a paired comparison needs at least 3"):
        paired_estimate([1.0, 2.0], [1.0, 2.0], 0.01)
    with pytest.raises(ValueError, match="value 0.0: the ratio of two runs needs finite values above 0"):
        paired_estimate([1.0, 2.0, 0.0], [1.0, 2.0, 3.0], 0.01)
    with pytest.raises(ValueError, match="level 1.5 and power 0.95 must both lie in"):
        paired_estimate([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1.5)


def test_the_signed_rank_test_agrees_with_scipys_and_with_its_interval() -> None:
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(5)
    for pairs in (5, 9, 14, 30):
        differences = rng.standard_t(3, pairs) * 0.1 + 0.03
        assert signed_rank_p_value(list(differences)) == pytest.approx(
            wilcoxon(differences, method="exact").pvalue, rel=1e-9)
    # ties among the magnitudes: the normal approximation with the tie correction, as scipy's
    tied = [0.1, -0.1, 0.2, 0.2, 0.3, -0.05, 0.4, 0.1, 0.25, 0.3]
    assert signed_rank_p_value(tied) == pytest.approx(
        wilcoxon(tied, method="approx", correction=True).pvalue, rel=1e-6)
    assert signed_rank_p_value([0.0, 0.0, 0.0]) == 1.0
    # the interval excludes 1 exactly when the test rejects at its level, and covers the truth as often as stated
    disagreements = misses = 0
    for _ in range(600):
        pairs = int(rng.integers(8, 40))
        differences = rng.standard_t(3, pairs) * 0.1
        estimate = paired_estimate([1.0] * pairs, list(np.exp(differences)), 0.05)
        disagreements += (estimate.p_value < 0.05) != (not estimate.low <= 1 <= estimate.high)
        misses += not estimate.low <= 1 <= estimate.high
    assert disagreements == 0 and misses <= 0.05 * 600 + 3 * math.sqrt(600 * 0.05 * 0.95), misses


def test_a_process_that_draws_a_slow_mode_does_not_move_the_estimate() -> None:
    """A quarter of the processes on either side run 43% slower all their life (seen on the shared runner): the
    Hodges–Lehmann estimate stays on the pairs where both drew alike, a geometric mean does not."""
    rng = np.random.default_rng(11)
    pairs = 40

    def processes() -> np.ndarray:
        return np.exp(rng.normal(0, 0.015, pairs)) * np.where(rng.random(pairs) < 0.25, 1.43, 1.0)

    errors_rank, errors_mean = [], []
    for _ in range(100):
        a, b = processes(), processes() * 1.05
        errors_rank.append(abs(paired_estimate(list(a), list(b), 0.01).ratio - 1.05))
        errors_mean.append(abs(math.exp(float(np.mean(np.log(b / a)))) - 1.05))
    assert np.median(errors_rank) < 0.02 and np.median(errors_rank) < np.median(errors_mean) / 2, (
        np.median(errors_rank), np.median(errors_mean))


def test_too_few_pairs_for_a_level_are_named() -> None:
    for level in (0.2, 0.05, 0.01, 0.01 / 18):
        fewest = fewest_pairs(level)
        assert 2 / 2 ** fewest <= level < 2 / 2 ** (fewest - 1) or fewest == 3, (level, fewest)
    assert fewest_pairs(0.01 / 18) == 12


def test_holm_adjusts_in_steps_and_keeps_the_order() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([]) == []


def test_a_over_a_comparisons_flag_any_metric_at_most_at_the_family_rate() -> None:
    rng = np.random.default_rng(7)
    comparisons, metrics, pairs, alpha = 150, 6, 12, 0.05
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
    assert math.isfinite(paired_estimate([1.0, 1.1, 0.9] * 3, [1.0, 1.2, 0.95] * 3, 0.01).detectable)


def test_holm_counts_a_latency_and_the_throughput_of_the_same_rounds_as_one_hypothesis() -> None:
    from pytest_accel.paired import holm, holm_per_measurement

    # two metrics of measurement m (the same ratios, so the same p-value) and one of n: a family of two
    assert holm_per_measurement([0.01, 0.01, 0.02], ["m", "m", "n"]) == pytest.approx([0.02, 0.02, 0.02])
    assert holm([0.01, 0.01, 0.02]) == pytest.approx([0.03, 0.03, 0.03])  # counted three times: stricter
    assert holm_per_measurement([0.01, 0.04], ["a", "b"]) == holm([0.01, 0.04])
