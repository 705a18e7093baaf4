"""The convergence verdict: false alarms at the nominal rate (measured by simulation), one bad seed not decisive by
accident, both directions, and the power docs/convergence.md states."""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy.stats import t as student_t

from pytest_accel.convergence import (
    ALPHA,
    BORDERLINE,
    Settings,
    _null_pivots,
    judge_convergence,
    mean_look,
    seeds_for_shift,
    simulate,
    smallest_detected_shift,
    trimmed_look,
)

#: the shipped reference's epochs to 95% accuracy (suites/reference/gesture/generated-6000x1-2000x2.json)
SHIPPED = [13, 12, 9, 13, 12, 10, 11, 10]
SHIPPED_SETTINGS = Settings(reference_runs=8, first_runs=3, confirmation_runs=3, mean=11.25, spread=1.488,
                            max_epochs=60)
#: a binomial band around 1% for 40000 draws is about +-0.15% (3 sigma); this one leaves room for the rounding to
#: whole epochs, which moves the rate a little
NOMINAL_BAND = (0.007, 0.013)


def no_more_runs() -> list[float]:
    raise AssertionError("a first look that is not borderline must not train more seeds")


@pytest.mark.parametrize(
    "settings",
    [
        SHIPPED_SETTINGS,
        Settings(reference_runs=5, first_runs=3, confirmation_runs=3, mean=30.0, spread=4.0),
        Settings(reference_runs=12, first_runs=2, confirmation_runs=4, mean=8.0, spread=1.0, max_epochs=20),
    ],
    ids=["shipped", "5-runs-wide", "12-runs-narrow"],
)
def test_false_alarms_hold_the_nominal_rate(settings: Settings) -> None:
    """Reference and device runs drawn from one distribution: the first look fails at the nominal 1%, the verdict
    (confirmed before failing) at or under it; the previous rule (spread of the trimmed runs) did not."""
    first_look = settings.failing_share(0.0, draws=40_000, statistic="mean", seed=1)
    assert NOMINAL_BAND[0] <= first_look <= NOMINAL_BAND[1], first_look
    verdict = settings.failing_share(0.0, draws=40_000, seed=2)
    assert 0.002 <= verdict <= NOMINAL_BAND[1], verdict


def test_the_previous_spread_estimate_fails_too_often() -> None:
    """The band above is not loose: the trimmed-runs spread (about 0.65 sigma) falls outside it."""
    previous = SHIPPED_SETTINGS.failing_share(0.0, draws=40_000, statistic="trimmed reference", seed=3)
    assert previous > 0.025, previous


def test_the_simulated_null_of_the_plain_mean_is_students_t() -> None:
    """With nothing set aside, the simulated pivot is the t statistic scaled by sqrt(1/n + 1/m): the simulation
    behind the confirmation's p-values agrees with the exact distribution where one exists."""
    n, m = 8, 6
    pivots = _null_pivots(n, m, 0) / (1 / n + 1 / m) ** 0.5
    for quantile in (0.5, 0.9, 0.99):
        simulated = float(sorted(pivots)[int(quantile * len(pivots))])
        assert simulated == pytest.approx(student_t.ppf(quantile, n - 1), abs=0.03)


def test_one_slow_seed_alone_is_borderline_and_settled_by_more_seeds() -> None:
    """[13, 13, 17] fails on its mean; with three more seeds and the slowest set aside it does not."""
    first = mean_look(SHIPPED, [13, 13, 17])
    assert first.p_slower < ALPHA  # what the plain mean of three would have decided
    verdict = judge_convergence(SHIPPED, [13, 13, 17], lambda: [11, 12, 11])
    assert verdict.confirmation is not None and verdict.observed == [13, 13, 17, 11, 12, 11]
    assert verdict.confirmation.statistic == "mean without the 1 slowest"
    assert verdict.p_slower >= ALPHA


def test_one_seed_that_never_converges_is_tolerated_two_are_not() -> None:
    budget_plus_one = 61
    one = judge_convergence(SHIPPED, [11, 12, budget_plus_one], lambda: [10, 12, 11])
    assert one.p_slower >= ALPHA
    two = judge_convergence(SHIPPED, [11, budget_plus_one, 12], lambda: [budget_plus_one, 10, 12])
    assert two.p_slower < ALPHA


def test_a_slower_device_is_confirmed_and_fails() -> None:
    verdict = judge_convergence(SHIPPED, [16, 15, 17], lambda: [16, 17, 15])
    assert verdict.first.p_slower < BORDERLINE and verdict.confirmation is not None
    assert verdict.p_slower < ALPHA


def test_a_first_look_that_is_not_borderline_trains_nothing_more() -> None:
    verdict = judge_convergence(SHIPPED, [11, 12, 12], no_more_runs)
    assert verdict.confirmation is None and verdict.p_slower == verdict.first.p_slower > BORDERLINE


def test_faster_is_measured_in_its_own_direction() -> None:
    fast = judge_convergence(SHIPPED, [6, 6, 7], no_more_runs)
    assert fast.p_faster < ALPHA and fast.p_slower > 0.9
    usual = judge_convergence(SHIPPED, [11, 11, 12], no_more_runs)
    assert usual.p_faster > ALPHA


def test_too_few_reference_runs_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 3 runs, got 2"):
        mean_look([10, 11], [10])
    with pytest.raises(ValueError, match="3 observed run.s. cannot set aside the 3 slowest"):
        trimmed_look(SHIPPED, [10, 11, 12], set_aside=3)


def test_an_exactly_agreeing_reference_keeps_the_rounding_of_whole_epochs() -> None:
    """Runs that agree to the epoch still differ below it: one seed an epoch slower is not infinitely significant."""
    agreeing = [10, 10, 10, 10]
    assert mean_look(agreeing, [10, 10, 11]).p_slower > BORDERLINE
    assert 0 < mean_look(agreeing, [13, 13, 13]).p_slower < ALPHA


@pytest.mark.workload  # seconds of simulation
def test_power_grows_with_the_shift_and_the_seeds() -> None:
    """The figures docs/convergence.md states come from these functions: a shift the verdict catches 95% of the
    time, and the seeds a 1-epoch shift needs."""
    rates = [SHIPPED_SETTINGS.failing_share(shift, draws=8000) for shift in (0, 2, 4, 6)]
    assert rates == sorted(rates) and rates[-1] > 0.95
    shift = smallest_detected_shift(SHIPPED_SETTINGS, draws=8000)
    assert shift is not None and 2.0 <= shift <= 6.0
    assert SHIPPED_SETTINGS.failing_share(shift, draws=8000, seed=5) >= 0.93
    seeds = seeds_for_shift(SHIPPED_SETTINGS, 1.0, draws=2000)
    assert seeds is not None and 40 <= seeds <= 160


def test_simulate_names_its_statistics() -> None:
    with pytest.raises(ValueError, match="statistic 'median' is not one of two-step, mean, trimmed reference"):
        simulate(SHIPPED_SETTINGS, 0.0, draws=10, statistic="median")


@pytest.mark.workload  # seconds of simulation
def test_convergence_power_command_prints_the_calibration(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    from pytest_accel.cli import main

    assert main(["convergence-power", "--draws", "2000"]) == 0
    out = capsys.readouterr().out
    assert "generated-6000x1-2000x2.json: 8 reference runs, 11.25 +- 1.49 epochs to the target" in out
    assert "false alarms (nothing changed): " in out and "caught 95% of the time: " in out
    assert main(["convergence-power", "--confirmation-seeds", "0"]) == 2
    assert "--confirmation-seeds=0: give at least 1" in capsys.readouterr().err
    assert main(["convergence-power", "--reference-dir", str(tmp_path)]) == 2
    assert "no gesture reference " in capsys.readouterr().err
