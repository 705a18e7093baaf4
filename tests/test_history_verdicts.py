"""The speed verdict on a history of runs: prediction interval with the tolerance as floor, alpha split over the
run's family, the probe's sensitivity learned, slow phases set aside, disturbed machines inconclusive. (The history
built by --accel-record-run: test_record_run; the confirmation in a fresh process: test_confirmation.)"""

from __future__ import annotations

import numpy as np

from pytest_accel.metrics import METRIC_KINDS, Metric
from pytest_accel.records import baseline_record
from pytest_accel.verdicts import Policy, compare

GATE = frozenset(METRIC_KINDS)


def history(values: list[float], probes: list[float] | None = None, spread: float = 0.05) -> list[dict]:
    probes = probes or [0.001] * len(values)
    return [{"value": v, "probe": p, "spread": spread} for v, p in zip(values, probes, strict=True)]


def run_metric(value: float, probe: float = 0.001, spread: float = 0.05, kind: str = "latency") -> Metric:
    """A timed metric whose rounds centre on ``value`` with the given relative spread, probe rounds on ``probe``."""
    rng = np.random.default_rng(7)
    samples = (value * (1 + spread * (rng.random(40) - 0.5) / 0.8)).tolist()
    return Metric("w.latency", value, "s", kind, "lower", samples=samples, probe_samples=[probe] * 40)


def judged(metric: Metric, runs: list[dict], policy: Policy | None = None, tolerance: float = 0.05):
    record = {"value": float(np.median([r["value"] for r in runs])), "unit": "s", "history": runs}
    return compare(metric, record, tolerance, "default", policy or Policy(GATE))


STEADY = [0.0100, 0.0101, 0.0099, 0.0100, 0.0102, 0.0098, 0.0100, 0.0101]  # about 1% run to run


def test_within_the_run_to_run_noise_passes_and_beyond_fails_with_the_history_shown() -> None:
    assert judged(run_metric(0.0101), history(STEADY)).status == "pass"
    slower = judged(run_metric(0.0110), history(STEADY))
    assert slower.status == "regression"
    assert slower.detail.startswith("last 8 runs 9.8 ms to 10.2 ms; time +9.9% (adjusted), limit +5.0%")
    assert judged(run_metric(0.0088), history(STEADY)).status == "faster"


def test_the_tolerance_is_a_floor_under_the_interval() -> None:
    """A 5.1% change is outside a 1% history's interval (+4.8%) but inside a 6% floor."""
    assert judged(run_metric(0.0105), history(STEADY), tolerance=0.06).status == "pass"
    assert judged(run_metric(0.0105), history(STEADY), tolerance=0.02).status == "regression"


def test_a_noisy_history_widens_the_limit_it_can_hold() -> None:
    noisy = [0.010, 0.0115, 0.0092, 0.0108, 0.0095, 0.0112, 0.0090, 0.0105]  # about 9% run to run
    assert judged(run_metric(0.0115), history(noisy)).status == "pass"
    assert judged(run_metric(0.0160), history(noisy)).status == "regression"


def test_alpha_is_split_over_the_runs_family_of_speed_metrics() -> None:
    alone, among_many = Policy(GATE, family_size=1), Policy(GATE, family_size=200)
    assert judged(run_metric(0.01055), history(STEADY), alone).status == "regression"
    assert judged(run_metric(0.01055), history(STEADY), among_many).status == "pass"


def test_auto_basis_uses_the_probe_where_it_steadies_the_history() -> None:
    """The machine's speed moves run to run and the probe moves with it: normalised, the workload is steady."""
    speeds = [1.0, 1.08, 0.95, 1.04, 0.92, 1.06, 0.97, 1.02]
    values, probes = [0.01 * s for s in speeds], [0.001 * s for s in speeds]
    runs = history(values, probes)
    same_but_slow_machine = run_metric(0.0112, probe=0.00112)
    assert judged(same_but_slow_machine, runs).status == "pass"
    really_slower = run_metric(0.0112, probe=0.001)
    assert judged(really_slower, runs).status == "regression"


def test_the_probe_sensitivity_is_learned_from_the_history() -> None:
    """A memory-bound workload moves twice as much as the probe when the machine slows: dividing by the probe leaves
    half the machine's noise in; the sensitivity learned from the history takes it out."""
    speeds = [1.0, 1.08, 0.95, 1.04, 0.92, 1.06, 0.97, 1.02, 1.1, 0.9]
    values, probes = [0.01 * s**2 for s in speeds], [0.001 * s for s in speeds]
    runs = history(values, probes)
    slow_machine = run_metric(0.01 * 1.09**2, probe=0.00109)  # +19% time, all of it the machine's
    verdict = judged(slow_machine, runs)
    assert verdict.status == "pass" and "probe sensitivity 2.00" in verdict.detail
    slower_workload = run_metric(0.01 * 1.09**2 * 1.08, probe=0.00109)  # that machine, and 8% slower work
    assert judged(slower_workload, runs).status == "regression"
    assert judged(slower_workload, runs, Policy(GATE, latency_basis="normalised")).status == "pass"  # misses it
    # +56%, the probe beyond any speed the history saw: adjusting for it would be an extrapolation
    slowest_machine = run_metric(0.01 * 1.25**2, probe=0.00125)
    verdict = judged(slowest_machine, runs)
    assert verdict.status == "inconclusive" and "calibration probe +2" in verdict.detail


def test_a_slow_phase_in_the_history_is_set_aside_and_recognised_later() -> None:
    """Eleven runs within 1% and one 33% slower (a process in a slow state): the one does not widen the limit for
    everyone, and a later run as slow as it is inconclusive, not a regression; a 10% slowdown is still caught."""
    rng = np.random.default_rng(3)
    values = [0.025 * (1 + 0.004 * rng.standard_normal()) for _ in range(11)] + [0.0335]
    probes = [0.00019 * (1 + 0.01 * rng.standard_normal()) for _ in range(12)]
    runs = history(values, probes)
    slower = judged(run_metric(0.0275, probe=0.00019), runs)
    assert slower.status == "regression" and slower.effective_tolerance < 0.1
    again_slow_phase = judged(run_metric(0.0330, probe=0.00019), runs)
    assert again_slow_phase.status == "inconclusive" and "set aside as a slow phase" in again_slow_phase.detail
    far_beyond = judged(run_metric(0.0500, probe=0.00019), runs)
    assert far_beyond.status == "regression"


def test_adjusted_prediction_interval_holds_its_false_alarm_rate() -> None:
    """Simulated unchanged runs (workload = sensitivity x probe + noise, on a log scale) exceed the limit at the
    nominal rate: 5% asked, within a binomial band for 4000 trials."""
    from pytest_accel.stats import adjusted_history_test

    rng = np.random.default_rng(11)
    alpha, trials, exceeded = 0.05, 4000, 0
    for _ in range(trials):
        machine = rng.normal(0, 0.15, 11)  # this VM's run-to-run swing
        probe = np.exp(-8 + machine + rng.normal(0, 0.02, 11))
        value = np.exp(-4 + 1.7 * machine + rng.normal(0, 0.03, 11))
        pairs = list(zip(value.tolist(), probe.tolist(), strict=True))
        exceeded += adjusted_history_test(pairs[:10], pairs[10], alpha).p_worse < alpha
    rate = exceeded / trials
    assert 0.04 <= rate <= 0.06, rate


def test_a_disturbed_machine_is_inconclusive_not_judged() -> None:
    absolute = Policy(GATE, latency_basis="absolute")
    disturbed = run_metric(0.0150, probe=0.0014)  # the probe itself far outside its own history
    verdict = judged(disturbed, history(STEADY), absolute)
    assert verdict.status == "inconclusive" and not verdict.fails_test
    assert "calibration probe +40.0% against its own history" in verdict.detail
    wild_rounds = run_metric(0.0150, spread=0.6)
    assert judged(wild_rounds, history(STEADY), absolute).status == "inconclusive"
    assert judged(wild_rounds, history(STEADY), Policy(GATE, latency_basis="absolute", fail_inconclusive=True)
                  ).fails_test
    slower_probe_steady = run_metric(0.0150, probe=0.001)
    assert judged(slower_probe_steady, history(STEADY), absolute).status == "regression"


def test_time_to_accuracy_is_judged_on_its_own_value() -> None:
    """25 epochs instead of 10 at the same epoch time: 2.5x longer to accuracy is a regression."""
    base = baseline_record(Metric("g.time_to_accuracy", 1.0, "s", "latency", "lower"), 0.05)
    obtained = Metric("g.time_to_accuracy", 2.5, "s", "latency", "lower")
    assert compare(obtained, base, 0.05, "default", Policy(GATE)).status == "regression"


def test_first_run_rule_never_hides_a_threefold_regression() -> None:
    base = baseline_record(Metric("m.first_run", 0.030, "s", "startup", "lower"), 1.0)
    three_fold = Metric("m.first_run", 0.095, "s", "startup", "lower")
    assert compare(three_fold, base, 1.0, "default", Policy(GATE)).status == "regression"
    a_bit = Metric("m.first_run", 0.065, "s", "startup", "lower")
    assert compare(a_bit, base, 1.0, "default", Policy(GATE)).status == "noise"
    runs = history([0.030, 0.031, 0.029, 0.030, 0.032, 0.030])
    with_history = {"value": 0.030, "unit": "s", "history": runs}
    assert compare(Metric("m.first_run", 0.065, "s", "startup", "lower"), with_history, 1.0, "default",
                   Policy(GATE)).status == "regression"
