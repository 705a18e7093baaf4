"""Judging one metric: the :class:`Verdict`, made final by :func:`compare`, and its one-line description.

``compare`` is given everything a verdict depends on (the stored value, the resolved tolerance and the run's
:class:`Policy`: gate, significance level, latency basis, update/record mode), so the verdict the report shows is
the one made here; nothing patches it afterwards.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from pytest_accel.metrics import Metric, format_value
from pytest_accel.stats import timing_shift

Status = Literal[
    "pass", "improved", "faster", "noise", "missing", "recorded", "updated", "info", "regression", "inconclusive"
]
LATENCY_BASES = ("auto", "both", "absolute", "normalised")
#: Without a history, a first run is one sample: differences under this are not judged, unless the ratio is past
#: STARTUP_ALWAYS_JUDGED times the tolerance (a 3x slower first inference is never hidden).
STARTUP_SLACK_SECONDS = 0.1
STARTUP_ALWAYS_JUDGED = 2.0
#: Runs of history a speed metric needs before its verdict uses them (a prediction interval from fewer is too wide
#: to detect anything); until then the within-run test decides, at this multiple of the tolerance, because it
#: cannot see the run-to-run part of the noise.
MIN_HISTORY = 5
FALLBACK_TOLERANCE_FACTOR = 2.0
#: A round-time spread this many times the history's typical one (taken as at least DISTURBED_MIN_USUAL_SPREAD,
#: so a workload whose rounds agree to 0.1% is not "disturbed" by ordinary 2% jitter) means the run was disturbed.
DISTURBED_SPREAD_FACTOR = 3.0
DISTURBED_MIN_USUAL_SPREAD = 0.05


@dataclass(frozen=True)
class Policy:
    """How this run judges: what fails tests and what gets written."""

    gate: frozenset[str]
    #: false-alarm rate allowed per run for speed metrics judged on their history (split over the family)
    alpha: float = 0.01
    latency_basis: str = "auto"
    #: how many history-judged speed metrics the run may judge: each gets alpha / family_size (Bonferroni)
    family_size: int = 1
    min_history: int = MIN_HISTORY
    #: an inconclusive speed metric (a disturbed machine) fails the test instead of being reported
    fail_inconclusive: bool = False
    #: --accel-update-baselines: every metric is written; those judged against their baseline read "updated"
    update: bool = False
    #: --accel-missing-baseline=record: metrics with no baseline are written and read "recorded"
    record_missing: bool = False


@dataclass(frozen=True)
class Verdict:
    metric: Metric
    status: Status
    baseline_value: float | None
    tolerance: float | None
    tolerance_source: str
    detail: str
    gated: bool = True
    #: the metric goes into the test's baseline file
    writes_baseline: bool = False

    @property
    def regressed(self) -> bool:
        return self.status == "regression"

    #: the same metric measured again to confirm a regression (its value), if it was
    remeasured_value: float | None = None
    #: for fail_inconclusive
    fails_when_inconclusive: bool = False

    @property
    def fails_test(self) -> bool:
        if self.status == "inconclusive":
            return self.fails_when_inconclusive and self.gated
        return self.regressed and self.gated

    @property
    def delta(self) -> float | None:
        """Relative change of the value against the baseline (+0.05 = 5% higher)."""
        if self.baseline_value in (None, 0):
            return None
        return self.metric.value / self.baseline_value - 1

    @property
    def label(self) -> str:
        if self.status == "regression" and not self.gated:
            return "regression (not gated)"
        return {"faster": "faster?", "noise": "pass (noise)"}.get(self.status, self.status)

    @property
    def expected_text(self) -> str:
        """What the value was held against, as the tables print it: a bound, or the stored value."""
        metric = self.metric
        if metric.basis == "bound" and self.tolerance is not None:
            return f"{'<=' if metric.direction == 'lower' else '>='} {self.tolerance:.3g}"
        return format_value(self.baseline_value, metric.unit)


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


def compare(
    metric: Metric,
    stored: Mapping[str, Any] | None,
    tolerance: float | None,
    tolerance_source: str,
    policy: Policy,
) -> Verdict:
    """The final verdict on ``metric``. ``stored`` is the device's baseline record for it (or None); a metric that
    carries a device-independent reference (``expected``) is judged against that instead. ``tolerance`` is already
    resolved (marker > CLI > ini > default)."""
    against: Mapping[str, Any] | None = stored
    if metric.basis == "reference":
        against = {"value": metric.expected, "unit": metric.unit}
    if not metric.is_finite:  # a broken run: never a pass, never a baseline
        return Verdict(metric, "regression" if metric.basis != "none" else "info",
                       float(against["value"]) if against is not None else None, tolerance, tolerance_source,
                       f"the value or its timing samples are not finite numbers (value {metric.value}): a broken run, "
                       "never a pass or a baseline",
                       gated=metric.kind in policy.gate, fails_when_inconclusive=policy.fail_inconclusive)
    status, detail = _judge(metric, against, tolerance, policy)
    writes = False
    if policy.update:
        writes = True
        if metric.basis == "baseline":
            status = "updated"
    elif status == "missing" and policy.record_missing:
        writes, status = True, "recorded"
    return Verdict(
        metric,
        status,
        float(against["value"]) if against is not None else None,
        tolerance,
        tolerance_source,
        detail,
        gated=metric.kind in policy.gate,
        writes_baseline=writes,
        fails_when_inconclusive=policy.fail_inconclusive,
    )


def _judge(
    metric: Metric, against: Mapping[str, Any] | None, tolerance: float | None, policy: Policy
) -> tuple[Status, str]:
    basis = metric.basis
    if basis == "none":
        return "info", "reported only"
    if basis == "bound":
        if tolerance is None:
            return "info", f"no limit given for this {metric.kind} metric: reported only"
        within = metric.value <= tolerance if metric.direction == "lower" else metric.value >= tolerance
        return ("pass", "within the bound") if within else ("regression", "outside the bound")
    if against is None:
        return "missing", "no baseline"
    assert tolerance is not None
    base_value = float(against["value"])

    history = [h for h in against.get("history") or [] if isinstance(h, Mapping)]
    if metric.kind_info.speed and len(history) >= policy.min_history and metric.value > 0:
        return _judge_history(metric, history, tolerance, policy)
    if metric.kind_info.timed:  # a single-run baseline cannot see the run-to-run noise
        tolerance *= FALLBACK_TOLERANCE_FACTOR
    if metric.is_timed and against.get("samples"):
        return _judge_timed(metric, against, tolerance, policy)

    if base_value == 0:
        worse = metric.value != 0 and ((metric.value > 0) == (metric.direction == "lower"))
        return ("regression" if worse else "pass"), "baseline is 0"
    ratio = metric.value / base_value
    if metric.direction == "higher":
        worse, better = ratio < 1 - tolerance, ratio > 1 + tolerance
    else:
        worse, better = ratio > 1 + tolerance, ratio < 1 - tolerance
    if (worse and metric.kind == "startup" and abs(metric.value - base_value) < STARTUP_SLACK_SECONDS
            and abs(math.log(ratio)) < math.log(1 + STARTUP_ALWAYS_JUDGED * tolerance)):
        return "noise", (f"beyond the tolerance but by less than {STARTUP_SLACK_SECONDS:g} s, which a single "
                         "sample cannot tell from scheduling noise (record more runs to judge it on its history)")
    name = basis  # "reference" or "baseline"
    if worse:
        return "regression", f"worse than the {name} beyond the tolerance"
    if better:
        return "improved", f"better than the {name} beyond the tolerance; update it if this is real"
    return "pass", "within the tolerance"


def _worse_oriented(value: float, direction: str) -> float:
    """Times as they are, rates inverted: larger is always worse."""
    return value if direction == "lower" else 1 / value


def _judge_history(
    metric: Metric, history: list[Mapping[str, Any]], tolerance: float, policy: Policy
) -> tuple[Status, str]:
    """Against the run-level values of the last runs: a prediction interval (the run-to-run noise), the
    tolerance as its floor, the significance split over the run's family of such metrics."""
    from pytest_accel.baselines import run_summary
    from pytest_accel.stats import history_test

    alpha = policy.alpha / max(policy.family_size, 1)
    now_summary = run_summary(metric)  # the same summary the history holds for each earlier run
    now = _series(now_summary, metric.direction)
    past = [_series(h, metric.direction) for h in history]
    series = {basis: ([p[basis] for p in past], value) for basis, value in now.items() if all(basis in p for p in past)}
    if policy.latency_basis != "auto":  # the quartile series are auto's choice only
        series = {basis: item for basis, item in series.items() if basis in ("absolute", "normalised")}
    tests = {basis: history_test(values, now, alpha) for basis, (values, now) in series.items()}
    if policy.latency_basis == "auto":
        chosen = [min(tests, key=lambda basis: tests[basis].spread)]
    elif policy.latency_basis == "both":
        chosen = [basis for basis in ("absolute", "normalised") if basis in tests]
    else:
        chosen = [policy.latency_basis if policy.latency_basis in tests else "absolute"]
    limits = {basis: max(1 + tolerance, tests[basis].threshold) for basis in chosen}
    values = sorted(float(h["value"]) for h in history)
    head = (f"last {len(history)} runs "
            f"{format_value(values[0], metric.unit)} to {format_value(values[-1], metric.unit)}")
    shown = chosen[0] if len(chosen) == 1 else "absolute"
    text = (f"{head}; {'time' if metric.direction == 'lower' else '1/rate'} {_percent(tests[shown].ratio - 1)} "
            f"({shown}), limit {_percent(limits[shown] - 1)}")
    if all(tests[basis].ratio > limits[basis] for basis in chosen):
        disturbance = _disturbance(now_summary, history, alpha)
        if disturbance:
            return "inconclusive", (f"{text}; but the machine was disturbed ({disturbance}): neither passed nor "
                                    "failed, re-run it on a quiet machine")
        return "regression", f"{text}: worse than the run-to-run noise allows (one-sided p < {alpha:.2g})"
    if all(tests[basis].ratio < 1 / limits[basis] for basis in chosen):
        return "faster", f"{text}: better than the run-to-run noise allows; check the work is still done"
    return "pass", text


def _series(summary: Mapping[str, Any], direction: str) -> dict[str, float]:
    """The values of one run-level summary a history can be judged on, larger always worse: the value
    (times, or 1/rate), divided by the probe's median, and the round-time lower quartile (a time for latency and
    throughput alike; steadier on a busy machine), divided by the probe's."""
    absolute = _worse_oriented(float(summary["value"]), direction)
    series = {"absolute": absolute}
    if summary.get("probe"):
        series["normalised"] = absolute / float(summary["probe"])
    if summary.get("floor"):
        series["quartile"] = float(summary["floor"])
        if summary.get("probe_floor"):
            series["quartile normalised"] = float(summary["floor"]) / float(summary["probe_floor"])
    return series


def _disturbance(now: Mapping[str, Any], history: list[Mapping[str, Any]], alpha: float) -> str:
    """Evidence that this run's machine was not the quiet one the history was recorded on, or ''."""
    from pytest_accel.stats import history_test

    found = []
    probes = [float(h["probe"]) for h in history if h.get("probe")]
    if now.get("probe") and len(probes) >= 2:
        probe_test = history_test(probes, float(now["probe"]), alpha)
        if probe_test.ratio > probe_test.threshold:
            found.append(f"calibration probe {_percent(probe_test.ratio - 1)} against its own history")
    spreads = [float(h["spread"]) for h in history if h.get("spread")]
    usual = statistics.median(spreads) if spreads else None
    spread = now.get("spread")
    if spread is not None and usual is not None and spread > DISTURBED_SPREAD_FACTOR * max(usual,
                                                                                       DISTURBED_MIN_USUAL_SPREAD):
        found.append(f"round-time spread {spread:.0%} against a usual {usual:.1%}")
    return "; ".join(found)


def _judge_timed(
    metric: Metric, against: Mapping[str, Any], tolerance: float, policy: Policy
) -> tuple[Status, str]:
    """Latency and throughput both come from round times; 'slower' means longer rounds for either."""
    shift = timing_shift(metric.samples or [], against["samples"], metric.probe_samples, against.get("probe_samples"))
    normalised = shift.normalised_ratio
    alpha = policy.alpha
    text = f"median time {_percent(shift.ratio - 1)}"
    if normalised is not None:
        text += f" (probe-normalised {_percent(normalised - 1)})"
    if policy.latency_basis == "absolute" or normalised is None:
        ratios = [shift.ratio]
    elif policy.latency_basis == "normalised":
        ratios = [normalised]
    else:
        ratios = [shift.ratio, normalised]
    limit = 1 + tolerance
    if shift.p_slower < alpha and all(r > limit for r in ratios):
        return "regression", (f"{text}, slower beyond the tolerance of {tolerance:.3g}; Mann-Whitney "
                              f"p={shift.p_slower:.2g} < {alpha:g}")
    if shift.p_slower < alpha and shift.ratio > limit:
        return "noise", f"{text}: the calibration probe slowed as much, so the machine, not the workload"
    if shift.p_faster < alpha and all(r < 1 / limit for r in ratios):
        return "faster", (f"{text}: faster beyond the tolerance (p={shift.p_faster:.2g}); check the work is still "
                          "done, then update the baseline")
    return "pass", f"{text}, within {tolerance:.3g} or not significant at {alpha:g}"


def describe_verdict(v: Verdict) -> str:
    """``name [kind]: obtained X, expected Y, diff Z, tolerance T (source); detail``."""
    m = v.metric
    expected = format_value(v.baseline_value, m.unit) if v.baseline_value is not None else "-"
    if m.basis == "bound" and v.tolerance is not None:
        expected = f"{'<=' if m.direction == 'lower' else '>='} {v.tolerance:.4g} ({v.tolerance_source})"
    if m.expected is not None and m.expected_source:
        expected += f" (reference {m.expected_source})"
    parts = [f"obtained {format_value(m.value, m.unit)}", f"expected {expected}"]
    if m.basis != "bound":
        if v.delta is not None:
            parts.append(f"diff {_percent(v.delta)}")
        if v.tolerance is not None:
            parts.append(f"tolerance {v.tolerance:.3g} ({v.tolerance_source})")
    return f"{m.name} [{m.kind}]: " + ", ".join(parts) + f"; {v.detail}"

