"""The speed gate on a history of runs: prediction interval with the tolerance as floor, alpha split over the run's
family, disturbed machines inconclusive, regressions confirmed by a second measurement before failing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_accel.gatecheck_runner import Run, judge, summarise
from pytest_accel.metrics import METRIC_KINDS, Metric
from pytest_accel.options import OPT_INJECT_SLOWDOWN, OPT_RECORD_RUN, OPT_REPORT, OPT_UPDATE
from pytest_accel.records import baseline_record
from pytest_accel.verdicts import Policy, compare
from tests.helpers import baseline_files, literal, load_json

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


def test_record_run_builds_the_history_and_the_gate_uses_it(clocked_latency_project: pytest.Pytester) -> None:
    project = clocked_latency_project
    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)
    for _ in range(5):
        project.runpytest(OPT_RECORD_RUN).assert_outcomes(passed=1)
    [path] = baseline_files(project.path)
    stored = load_json(path)["metrics"]
    assert len(stored["toy.latency"]["history"]) == 6 and len(stored["toy.first_run"]["history"]) == 6
    assert project.runpytest().ret == 0

    project.path.joinpath("delay.txt").write_text("0.004")  # twice as slow
    result = project.runpytest(f"{OPT_REPORT}=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal("*toy.latency [latency]: obtained * ms, expected * ms*; last 6 runs * ms "
                                         "to * ms; time +*% (quartile absolute), limit +*%: "
                                         "worse than the run-to-run noise allows*; "
                                         "confirmed by a second measurement in a fresh process (* ms*)")])
    entry = next(m for m in load_json(project.path / "r.json")["results"][0]["metrics"] if m["name"] == "toy.latency")
    assert entry["remeasured_value"] > 0.0035 and entry["verdict"] == "regression"
    assert entry["effective_tolerance"] >= 0.05  # the limit it was held to, never below the tolerance floor
    result.stdout.fnmatch_lines(["  ✗ spin toy::test_latency toy.latency * ms, baseline * ms, +*% (limit +*%): "
                                 "last 6 runs*"])  # the summary's line for it

    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)  # a deliberate change starts the history anew
    assert len(load_json(path)["metrics"]["toy.latency"]["history"]) == 1


FLAKY_ONCE = """
from pathlib import Path

def test_latency(accel, spin):
    delay = Path(__file__).with_name("delay.txt")
    measurement = accel.measure_latency("toy", lambda: spin(float(delay.read_text())))
    delay.write_text("0.002")  # the slowness was passing: the confirmation measures the usual speed
    accel.check(*(m for m in measurement.metrics() if m.kind != "startup"))  # a first run happens once
"""


def test_a_regression_the_confirmation_does_not_see_passes(clocked_latency_project: pytest.Pytester) -> None:
    project = clocked_latency_project
    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)
    for _ in range(5):
        project.runpytest(OPT_RECORD_RUN).assert_outcomes(passed=1)
    project.makepyfile(test_toy=FLAKY_ONCE)
    project.path.joinpath("delay.txt").write_text("0.004")
    result = project.runpytest(f"{OPT_REPORT}=r.json")
    result.assert_outcomes(passed=1)
    entry = next(m for m in load_json(project.path / "r.json")["results"][0]["metrics"] if m["name"] == "toy.latency")
    assert entry["verdict"] == "noise" and entry["remeasured_value"] < 0.003
    assert entry["detail"].startswith("not confirmed by a second measurement in a fresh process (")


SLOW_PROCESS = """
from pathlib import Path

MARK = Path(__file__).with_name("slow-process")
SLOW = MARK.exists()  # this process runs in a slow state throughout; the next one will not
MARK.unlink(missing_ok=True)

def test_latency(accel, spin):
    delay = 0.004 if SLOW else 0.002
    measurement = accel.measure_latency("toy", lambda: spin(delay))
    accel.check(*(m for m in measurement.metrics() if m.kind != "startup"))
"""


def test_a_slow_process_is_not_a_regression_when_a_fresh_one_is_fast(
        clocked_latency_project: pytest.Pytester) -> None:
    """A measurement again in the same process would repeat the slow state and confirm it; a fresh process does
    not."""
    project = clocked_latency_project
    project.makepyfile(test_toy=SLOW_PROCESS)
    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)
    for _ in range(5):
        project.runpytest(OPT_RECORD_RUN).assert_outcomes(passed=1)
    project.path.joinpath("slow-process").touch()
    result = project.runpytest(f"{OPT_REPORT}=r.json")
    result.assert_outcomes(passed=1)
    entry = next(m for m in load_json(project.path / "r.json")["results"][0]["metrics"] if m["name"] == "toy.latency")
    assert entry["value"] > 0.0035, "the first measurement saw the slow state"
    assert entry["verdict"] == "noise" and entry["remeasured_value"] < 0.003
    assert "not confirmed by a second measurement in a fresh process" in entry["detail"]


def test_option_conflicts_are_usage_errors(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(OPT_UPDATE, OPT_RECORD_RUN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*starts every speed metric's history anew*give one of the two"])
    result = pytester.runpytest(f"{OPT_INJECT_SLOWDOWN}=fast")
    result.stderr.fnmatch_lines(["ERROR: --accel-inject-slowdown='fast': expected a fraction between 0 and 10*"])


def _report(folder: Path, name: str, value: float, probe: float = 0.001) -> Path:
    entry = {"name": "w.latency", "kind": "latency", "unit": "s", "direction": "lower", "value": value,
             "tolerance": 0.05, "run": {"value": value, "probe": probe, "spread": 0.05}}
    path = folder / name
    path.write_text(json.dumps({"schema": "pytest-accel/report", "schema_version": 1, "results": [
        {"nodeid": "t.py::test_w[cpu]", "device": "cpu", "suite": "t", "test": "test_w", "metrics": [entry]}]}))
    return path


def test_gate_check_judges_each_run_against_the_other_unchanged_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    runs = []
    for index in range(8):
        base = 0.010 * (1 + 0.01 * rng.standard_normal())
        runs.append(Run(0.0, index, _report(tmp_path, f"u{index}.json", base), 0, 1.0))
        runs.append(Run(0.2, index, _report(tmp_path, f"s{index}.json", base * 1.2), 0, 1.0))
    summary = summarise(runs, judge(runs, alpha=0.01))
    assert summary["run_false_alarm_rate"] == 0 and summary["detection_rate"] == {"0.2": 1.0}
    [metric] = summary["metrics"].values()
    assert metric["smallest_slowdown_caught_95"] == 0.2 and metric["judged_unchanged_runs"] == 8
    assert 0 < metric["run_cv"] < 0.03
