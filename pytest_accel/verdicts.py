"""Judging one metric: the :class:`Verdict`, made final by :func:`compare`, and its one-line description.

``compare`` is given everything a verdict depends on (the stored value, the resolved tolerance and the run's
:class:`Policy`: gate, significance level, latency basis, update/record mode), so the verdict the report shows is
the one made here; nothing patches it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

from pytest_accel.metrics import Metric, format_value
from pytest_accel.stats import timing_shift

Status = Literal[
    "pass", "improved", "faster", "noise", "missing", "recorded", "updated", "info", "regression"
]
PASSING: tuple[Status, ...] = ("pass", "improved", "faster", "noise", "missing", "recorded", "updated", "info")
LATENCY_BASES = ("both", "absolute", "normalised")
#: A first run is one sample, so no significance test applies; differences under this are not judged.
STARTUP_SLACK_SECONDS = 0.1


@dataclass(frozen=True)
class Policy:
    """How this run judges: what fails tests and what gets written."""

    gate: frozenset[str]
    alpha: float = 0.01
    latency_basis: str = "both"
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

    @property
    def fails_test(self) -> bool:
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
    if worse and metric.kind == "startup" and abs(metric.value - base_value) < STARTUP_SLACK_SECONDS:
        return "noise", (f"beyond the tolerance but by less than {STARTUP_SLACK_SECONDS:g} s, which a single "
                         "sample cannot tell from scheduling noise")
    name = basis  # "reference" or "baseline"
    if worse:
        return "regression", f"worse than the {name} beyond the tolerance"
    if better:
        return "improved", f"better than the {name} beyond the tolerance; update it if this is real"
    return "pass", "within the tolerance"


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

