"""Verdict rules of verdicts.compare, metric kind by metric kind, and verdicts final when made."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_accel.metrics import METRIC_KINDS, Metric
from pytest_accel.records import baseline_record
from pytest_accel.verdicts import Policy, compare

GATE_ALL = frozenset(METRIC_KINDS)


def judge(metric: Metric, baseline: Metric | None, tolerance: float | None, basis: str = "both") -> str:
    stored = baseline_record(baseline, tolerance) if baseline is not None else None
    return compare(metric, stored, tolerance, "test", Policy(GATE_ALL, latency_basis=basis)).status


def timed(median: float, probe: float, seed: int) -> Metric:
    rng = np.random.default_rng(seed)
    samples = (median + rng.exponential(median * 0.02, 200)).tolist()
    probes = (probe + rng.exponential(probe * 0.02, 200)).tolist()
    return Metric("w.latency", float(np.median(samples)), "s", "latency", "lower", samples=samples,
                  probe_samples=probes)


def test_accuracy_is_relative_and_higher_is_better() -> None:
    base = Metric("m.acc", 0.80, "", "accuracy", "higher")
    assert judge(Metric("m.acc", 0.795, "", "accuracy", "higher"), base, 0.01) == "pass"  # 99.4% of the reference
    assert judge(Metric("m.acc", 0.79, "", "accuracy", "higher"), base, 0.01) == "regression"  # 98.75%
    assert judge(Metric("m.acc", 0.90, "", "accuracy", "higher"), base, 0.01) == "improved"
    assert judge(Metric("m.acc", 0.90, "", "accuracy", "higher"), None, 0.01) == "missing"


def test_parity_is_an_absolute_bound_in_either_direction() -> None:
    assert judge(Metric("p.err", 1e-5, "", "parity", "lower", limit=1e-4), None, 1e-4) == "pass"
    assert judge(Metric("p.err", 2e-4, "", "parity", "lower", limit=1e-4), None, 1e-4) == "regression"
    assert judge(Metric("p.match", 0.995, "", "parity", "higher", limit=0.99), None, 0.99) == "pass"
    assert judge(Metric("p.match", 0.95, "", "parity", "higher", limit=0.99), None, 0.99) == "regression"
    assert judge(Metric("p.err", 2e-4, "", "parity", "lower"), None, None) == "info"


def test_startup_ignores_small_absolute_changes_but_never_a_threefold_one() -> None:
    base = Metric("m.first_run", 0.002, "s", "startup", "lower")
    assert judge(Metric("m.first_run", 0.005, "s", "startup", "lower"), base, 1.0) == "noise"
    assert judge(Metric("m.first_run", 0.007, "s", "startup", "lower"), base, 1.0) == "regression"
    slow_base = Metric("m.first_run", 0.5, "s", "startup", "lower")
    assert judge(Metric("m.first_run", 1.2, "s", "startup", "lower"), slow_base, 1.0) == "regression"


def test_zero_baseline() -> None:
    base = Metric("m.mem", 0, "B", "memory", "lower")
    assert judge(Metric("m.mem", 0, "B", "memory", "lower"), base, 0.1) == "pass"
    assert judge(Metric("m.mem", 10, "B", "memory", "lower"), base, 0.1) == "regression"


@pytest.mark.parametrize(
    ("basis", "workload_slower", "probe_slower", "expected"),
    [
        ("both", 1.5, 1.0, "regression"),  # the workload alone slowed: a real regression
        ("both", 1.5, 1.5, "noise"),  # the whole machine slowed
        ("absolute", 1.5, 1.2, "regression"),  # judged on absolute times, the probe +20%: not disturbed
        ("absolute", 1.5, 2.0, "inconclusive"),  # the probe twice its baseline's: a disturbed machine
        ("normalised", 1.5, 1.5, "noise"),
        ("both", 1.05, 1.0, "pass"),  # significant but inside the 10% tolerance
        ("both", 0.5, 1.0, "faster"),
    ],
)
def test_latency_bases(basis: str, workload_slower: float, probe_slower: float, expected: str) -> None:
    base = timed(0.010, 0.001, seed=1)
    obtained = timed(0.010 * workload_slower, 0.001 * probe_slower, seed=2)
    assert judge(obtained, base, 0.10, basis) == expected


def test_update_mode_settles_baselines_but_not_bounds_or_references() -> None:
    """Under --accel-update-baselines every metric is written, but only one judged against its own baseline reads
    'updated': a bound or a device-independent reference still fails."""
    update = Policy(GATE_ALL, update=True)
    stored = baseline_record(Metric("m.latency", 1.0, "s", "startup", "lower"), 1.0)
    slower = compare(Metric("m.latency", 9.0, "s", "startup", "lower"), stored, 1.0, "test", update)
    assert (slower.status, slower.writes_baseline, slower.fails_test) == ("updated", True, False)
    bound = compare(Metric("p.err", 2e-4, "", "parity", "lower", limit=1e-4), None, 1e-4, "limit", update)
    assert (bound.status, bound.writes_baseline, bound.fails_test) == ("regression", True, True)
    below_reference = Metric("m.acc", 0.5, "", "accuracy", "higher", expected=0.8, expected_source="ref.json")
    judged = compare(below_reference, None, 0.01, "default", update)
    assert (judged.status, judged.baseline_value, judged.fails_test) == ("regression", 0.8, True)


def test_record_mode_writes_only_what_has_no_baseline() -> None:
    record = Policy(GATE_ALL, record_missing=True)
    new = compare(Metric("m.acc", 0.5, "", "accuracy", "higher"), None, 0.01, "default", record)
    assert (new.status, new.writes_baseline) == ("recorded", True)
    stored = baseline_record(Metric("m.acc", 0.5, "", "accuracy", "higher"), 0.01)
    known = compare(Metric("m.acc", 0.5, "", "accuracy", "higher"), stored, 0.01, "default", record)
    assert (known.status, known.writes_baseline) == ("pass", False)


def test_the_gate_is_part_of_the_verdict() -> None:
    worse = Metric("m.acc", 0.5, "", "accuracy", "higher")
    stored = baseline_record(Metric("m.acc", 0.8, "", "accuracy", "higher"), 0.01)
    gated = compare(worse, stored, 0.01, "default", Policy(frozenset({"accuracy"})))
    reported = compare(worse, stored, 0.01, "default", Policy(frozenset({"latency"})))
    assert (gated.fails_test, gated.label) == (True, "regression")
    assert (reported.fails_test, reported.label) == (False, "regression (not gated)")
