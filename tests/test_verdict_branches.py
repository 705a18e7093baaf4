"""Every branch of the within-run timed verdict and of the convergence verdict, each with a case that fails when the
branch is removed or inverted (the history verdict's branches: test_history_verdicts.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_accel.metrics import METRIC_KINDS, Metric
from pytest_accel.verdicts import FALLBACK_TOLERANCE_FACTOR, Policy, compare

GATE = frozenset(METRIC_KINDS)
TOLERANCE = 0.05  # a single-run baseline: the within-run test holds it to twice this
LIMIT = 1 + FALLBACK_TOLERANCE_FACTOR * TOLERANCE


def rounds(median: float, count: int, seed: int, spread: float = 0.02) -> list[float]:
    rng = np.random.default_rng(seed)
    return (median * (1 + spread * rng.standard_normal(count))).tolist()


def timed_verdict(ratio: float, count: int, probe_ratio: float = 1.0, basis: str = "auto") -> tuple[str, bool]:
    """A single-run baseline of ``count`` rounds at 10 ms, and a run ``ratio`` times as long (its probe
    ``probe_ratio`` times as long)."""
    base_samples = rounds(0.010, count, seed=1)
    stored = {"value": float(np.median(base_samples)), "unit": "s", "samples": base_samples,
              "probe_samples": rounds(0.001, count, seed=2)}
    samples = rounds(0.010 * ratio, count, seed=3)
    metric = Metric("w.latency", float(np.median(samples)), "s", "latency", "lower", samples=samples,
                    probe_samples=rounds(0.001 * probe_ratio, count, seed=4))
    verdict = compare(metric, stored, TOLERANCE, "test", Policy(GATE, latency_basis=basis))
    return verdict.status, verdict.fails_test


def four_rounds_each(ratio: float) -> tuple[str, bool]:
    """Four rounds a side, every obtained round slower than every baseline round: the rank test cannot reach
    p < 0.01 with four samples (one-sided p about 0.01-0.02), so no slowdown from so few is significant."""
    base_samples = [0.0100, 0.0104, 0.0098, 0.0102]
    stored = {"value": 0.0101, "unit": "s", "samples": base_samples, "probe_samples": [0.001] * 4}
    samples = [s * ratio for s in (0.0101, 0.0105, 0.0099, 0.0103)]
    metric = Metric("w.latency", float(np.median(samples)), "s", "latency", "lower", samples=samples,
                    probe_samples=[0.001] * 4)
    verdict = compare(metric, stored, TOLERANCE, "test", Policy(GATE))
    return verdict.status, verdict.fails_test


@pytest.mark.parametrize(
    ("case", "ratio", "count", "probe_ratio", "expected"),
    [
        ("significant, beyond the tolerance", 1.3, 60, 1.0, ("regression", True)),
        ("significant, within the tolerance", 1.06, 60, 1.0, ("pass", False)),
        ("the probe slowed as much: the machine", 1.3, 60, 1.3, ("noise", False)),
        ("significantly faster beyond the tolerance", 0.7, 60, 1.0, ("faster", False)),
        ("faster, within the tolerance", 0.95, 60, 1.0, ("pass", False)),
    ],
)
def test_within_run_timed_verdict(case: str, ratio: float, count: int, probe_ratio: float,
                                  expected: tuple[str, bool]) -> None:
    assert timed_verdict(ratio, count, probe_ratio) == expected, case


def test_a_slowdown_beyond_the_tolerance_that_is_not_significant_passes() -> None:
    """+30% from four rounds a side (p about 0.015): beyond the tolerance, not significant at 0.01, so it passes;
    removing the significance condition would fail it."""
    assert LIMIT < 1.3
    assert four_rounds_each(1.3) == ("pass", False)
    assert four_rounds_each(0.7)[0] == "pass"  # nor is a speed-up from so few


def test_absolute_basis_ignores_the_probe_and_normalised_trusts_it() -> None:
    assert timed_verdict(1.3, 60, 1.3, basis="absolute") == ("regression", True)
    assert timed_verdict(1.3, 60, 1.3, basis="normalised")[0] == "noise"
    assert timed_verdict(1.3, 60, 1.0, basis="normalised") == ("regression", True)


def test_the_gate_decides_whether_a_timed_regression_fails() -> None:
    base_samples = rounds(0.010, 60, seed=1)
    stored = {"value": 0.010, "unit": "s", "samples": base_samples}
    samples = rounds(0.013, 60, seed=3)
    metric = Metric("w.latency", float(np.median(samples)), "s", "latency", "lower", samples=samples)
    ungated = compare(metric, stored, TOLERANCE, "test", Policy(frozenset({"accuracy"})))
    assert ungated.status == "regression" and not ungated.fails_test and ungated.label == "regression (not gated)"


def convergence(p_slower: float, p_faster: float | None, policy: Policy | None = None) -> tuple[str, bool]:
    metric = Metric("g.convergence_p_slower", p_slower, "", "convergence", "higher", limit=0.01, p_faster=p_faster)
    verdict = compare(metric, None, 0.01, "the metric's limit", policy or Policy(GATE))
    return verdict.status, verdict.fails_test


@pytest.mark.parametrize(
    ("case", "p_slower", "p_faster", "expected"),
    [
        ("slower, significant", 0.004, 0.99, ("regression", True)),
        ("slower, not significant", 0.04, 0.9, ("pass", False)),
        ("at the bound exactly: not below it", 0.01, 0.9, ("pass", False)),
        ("faster, significant: reported", 0.99, 0.003, ("faster", False)),
        ("faster, not significant", 0.8, 0.2, ("pass", False)),
        ("no faster test offered", 0.99, None, ("pass", False)),
    ],
)
def test_convergence_verdict(case: str, p_slower: float, p_faster: float | None, expected: tuple[str, bool]) -> None:
    assert convergence(p_slower, p_faster) == expected, case


def test_faster_convergence_fails_only_when_asked() -> None:
    asked = Policy(GATE, fail_faster_convergence=True)
    assert convergence(0.99, 0.003, asked) == ("faster", True)
    assert convergence(0.8, 0.2, asked) == ("pass", False)
    assert convergence(0.99, 0.003, Policy(frozenset({"accuracy"}), fail_faster_convergence=True)) == (
        "faster", False)  # convergence not gated


def test_faster_timed_metrics_are_not_failed_by_the_convergence_option() -> None:
    base_samples = rounds(0.010, 60, seed=1)
    stored = {"value": 0.010, "unit": "s", "samples": base_samples}
    samples = rounds(0.007, 60, seed=3)
    metric = Metric("w.latency", float(np.median(samples)), "s", "latency", "lower", samples=samples)
    verdict = compare(metric, stored, TOLERANCE, "test", Policy(GATE, fail_faster_convergence=True))
    assert verdict.status == "faster" and not verdict.fails_test


FASTER_CONVERGENCE_TEST = """
from pytest_accel.metrics import Metric

def test_training(accel):
    accel.check(Metric("toy.convergence_p_slower", 0.999, "", "convergence", "higher", limit=0.01, p_faster=0.0004))
"""


def test_faster_convergence_is_reported_and_fails_with_the_option(pytester: pytest.Pytester) -> None:
    from pytest_accel.options import OPT_FAIL_FASTER_CONVERGENCE, OPT_REPORT
    from tests.helpers import load_json

    pytester.makepyfile(test_toy=FASTER_CONVERGENCE_TEST)
    result = pytester.runpytest(f"{OPT_REPORT}=report.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*toy.convergence_p_slower*faster than the reference allows (p_faster=0.0004 < "
                                 "0.01)*"])
    entry = load_json(pytester.path / "report.json")["results"][0]["metrics"][0]
    assert entry["verdict"] == "faster" and entry["p_faster"] == 0.0004
    failed = pytester.runpytest(OPT_FAIL_FASTER_CONVERGENCE)
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*toy.convergence_p_slower ?convergence?: obtained 0.999, expected >= 0.01*faster "
                                 "than the reference allows*"])
