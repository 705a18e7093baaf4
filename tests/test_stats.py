"""The statistics behind the verdicts: the timing-shift test on rounds (absolute and probe-normalised), the olympic
mean."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_accel.stats import olympic_mean, timing_shift


def test_timing_shift_sees_a_real_slowdown_and_ignores_a_noisy_machine() -> None:
    rng = np.random.default_rng(0)
    base = (0.010 + rng.exponential(0.0005, 200)).tolist()
    slower = (0.013 + rng.exponential(0.0005, 200)).tolist()
    probe = (0.001 + rng.exponential(0.00005, 200)).tolist()
    slow_probe = (0.0013 + rng.exponential(0.00005, 200)).tolist()
    shift = timing_shift(slower, base, probe, probe)
    assert shift.ratio == pytest.approx(1.3, rel=0.05) and shift.p_slower < 1e-10 and shift.p_faster > 0.5
    machine = timing_shift(slower, base, slow_probe, probe)
    assert machine.normalised_ratio == pytest.approx(1.0, abs=0.05)
    same = timing_shift(base[:100], base[100:])
    assert same.p_slower > 0.01 and same.normalised_ratio is None


def test_olympic_mean_drops_the_extremes() -> None:
    assert olympic_mean([10, 1, 5, 6, 100]) == pytest.approx(7.0)
    assert olympic_mean([4, 6]) == 5
