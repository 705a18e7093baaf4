"""Verdict rules of baselines.compare, metric kind by metric kind."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_accel.baselines import compare, metric_record
from pytest_accel.metrics import Metric


def judge(metric: Metric, baseline: Metric | None, tolerance: float | None, basis: str = "both") -> str:
    stored = metric_record(baseline, tolerance) if baseline is not None else None
    return compare(metric, stored, tolerance, "test", alpha=0.01, latency_basis=basis).status


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


def test_startup_ignores_small_absolute_changes() -> None:
    base = Metric("m.first_run", 0.002, "s", "startup", "lower")
    assert judge(Metric("m.first_run", 0.006, "s", "startup", "lower"), base, 1.0) == "noise"
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
        ("absolute", 1.5, 1.5, "regression"),
        ("normalised", 1.5, 1.5, "noise"),
        ("both", 1.05, 1.0, "pass"),  # significant but inside the 10% tolerance
        ("both", 0.5, 1.0, "faster"),
    ],
)
def test_latency_bases(basis: str, workload_slower: float, probe_slower: float, expected: str) -> None:
    base = timed(0.010, 0.001, seed=1)
    obtained = timed(0.010 * workload_slower, 0.001 * probe_slower, seed=2)
    assert judge(obtained, base, 0.10, basis) == expected
