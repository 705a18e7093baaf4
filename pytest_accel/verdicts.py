"""Judging one metric: the :class:`Verdict`, made final by :func:`compare`, and its one-line description.

``compare`` is given everything a verdict depends on (the stored value, the resolved tolerance and the run's
:class:`Policy`: gate, significance level, latency basis, update/record mode), so the verdict the report shows is
the one made here; nothing patches it afterwards.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Literal, Mapping, NamedTuple, Sequence

from pytest_accel.disturbance import (
    HOST_BUSY_SHARE,
    history_disturbance,
    host_disturbance,
    single_run_disturbance,
    unstorable_spread,
)
from pytest_accel.history import run_summary
from pytest_accel.metrics import Metric, format_measured, format_value
from pytest_accel.stats import HistoryTest, timing_shift

Status = Literal[
    "pass", "improved", "faster", "noise", "missing", "recorded", "updated", "info", "regression", "inconclusive"
]
LATENCY_BASES = ("auto", "both", "absolute", "normalised", "adjusted")
#: Without a history, a first run is one sample: differences under this are not judged, unless the ratio is past
#: STARTUP_ALWAYS_JUDGED times the tolerance (a 3x slower first inference is never hidden).
STARTUP_SLACK_SECONDS = 0.1
STARTUP_ALWAYS_JUDGED = 2.0
#: Runs of history a speed metric needs before its verdict uses them (a prediction interval from fewer is too wide
#: to detect anything); until then the within-run test decides, at this multiple of the tolerance, because it
#: cannot see the run-to-run part of the noise.
MIN_HISTORY = 5
FALLBACK_TOLERANCE_FACTOR = 2.0
#: a history's limit above +100%, and above 3 tolerances, is spoken of as no limit at all
NOISY_LIMIT, NOISY_LIMIT_TOLERANCES = 1.0, 3.0


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
    #: a convergence check faster than its reference allows ("faster?") fails the test instead of being reported
    fail_faster_convergence: bool = False
    #: --accel-update-baselines: every metric is written; those judged against their baseline read "updated"
    update: bool = False
    #: --accel-missing-baseline=record: metrics with no baseline are written and read "recorded"
    record_missing: bool = False
    #: ini accel_busy_host_share: other processes' share of the host's CPU time beyond which a slower speed is
    #: inconclusive (1: never)
    busy_host_share: float = HOST_BUSY_SHARE


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
    #: for fail_faster_convergence: a "faster?" verdict of a bound that also bounds the other direction
    fails_when_faster: bool = False
    #: the relative change this metric was held to when judged on its run history: the prediction interval's
    #: limit or the tolerance under it, whichever is larger (the tolerance it can hold on this runner)
    effective_tolerance: float | None = None

    @property
    def fails_test(self) -> bool:
        if self.status == "inconclusive":
            return self.fails_when_inconclusive and self.gated
        if self.status == "faster":
            return self.fails_when_faster and self.gated
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
    device_probes: Sequence[float] = (),
    others_share: float | None = None,
) -> Verdict:
    """The final verdict on ``metric``. ``stored`` is the device's baseline record for it (or None); a metric that
    carries a device-independent reference (``expected``) is judged against that instead. ``tolerance`` is already
    resolved (marker > CLI > ini > default). ``device_probes``: the calibration probe's times in all of the device's
    baselines, the evidence of a disturbed machine where the metric's own baseline has no probe
    (:mod:`pytest_accel.disturbance`); ``others_share``: the share of the host's CPU time other processes used
    during the test, the direct evidence of a busy neighbour."""
    against: Mapping[str, Any] | None = stored
    if metric.basis == "reference":
        against = {"value": metric.expected, "unit": metric.unit}
    if not metric.is_finite:  # a broken run: never a pass, never a baseline
        return Verdict(metric, "regression" if metric.basis != "none" else "info",
                       float(against["value"]) if against is not None else None, tolerance, tolerance_source,
                       f"the value or its timing samples are not finite numbers (value {metric.value}): a broken run, "
                       "never a pass or a baseline",
                       gated=metric.kind in policy.gate, fails_when_inconclusive=policy.fail_inconclusive)
    judged = _judge(metric, against, tolerance, policy, device_probes)
    status, detail = judged[0], judged[1]
    limit = judged.limit if isinstance(judged, HistoryJudgement) else None
    if status == "regression" and metric.kind_info.disturbed_by_load and (
            busy := host_disturbance(others_share, policy.busy_host_share)):
        status, detail = "inconclusive", (f"{detail}; but the machine was disturbed ({busy}): neither passed nor "
                                          "failed, re-run it on a quiet machine")
    writes = False
    if policy.update:
        writes = True
        if metric.basis == "baseline":
            status = "updated"
    elif status == "missing" and policy.record_missing:
        writes, status = True, "recorded"
    if writes and (disturbed := unstorable_spread(metric)):  # recorded beside a busy neighbour: no baseline
        writes, status = False, "inconclusive"
        detail = f"not written: {disturbed}; record it again on a quiet machine"
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
        fails_when_faster=policy.fail_faster_convergence and metric.p_faster is not None,
        effective_tolerance=limit,
    )


class HistoryJudgement(NamedTuple):
    status: Status
    detail: str
    limit: float  # relative: 0.12 = held to +12%


def _judge(
    metric: Metric, against: Mapping[str, Any] | None, tolerance: float | None, policy: Policy,
    device_probes: Sequence[float],
) -> tuple[Status, str] | HistoryJudgement:
    basis = metric.basis
    if basis == "none":
        return "info", "reported only"
    if basis == "bound":
        if tolerance is None:
            return "info", f"no limit given for this {metric.kind} metric: reported only"
        within = metric.value <= tolerance if metric.direction == "lower" else metric.value >= tolerance
        if not within:
            return "regression", "outside the bound"
        if metric.p_faster is not None and metric.p_faster < tolerance:
            return "faster", (f"faster than the reference allows (p_faster={metric.p_faster:.2g} < {tolerance:g}): "
                              "a changed recipe or a broken evaluation? MLPerf fails such results")
        return "pass", "within the bound"
    if against is None:
        return "missing", "no baseline"
    assert tolerance is not None
    base_value = float(against["value"])

    history = [h for h in against.get("history") or [] if isinstance(h, Mapping)]
    if metric.kind_info.speed and len(history) >= policy.min_history and metric.value > 0:
        return _judge_history(metric, history, tolerance, policy, device_probes)
    if metric.kind_info.timed:  # a single-run baseline cannot see the run-to-run noise
        tolerance *= FALLBACK_TOLERANCE_FACTOR
    if metric.is_timed and against.get("samples") and _rank_test_can_decide(
            len(metric.samples or []), len(against["samples"]), policy.alpha):
        return _judge_timed(metric, against, tolerance, policy, device_probes)

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
        disturbance = single_run_disturbance(metric, against, policy.alpha, device_probes) if (
            metric.kind_info.disturbed_by_load) else ""
        if disturbance:
            return "inconclusive", (f"worse than the {name} beyond the tolerance, but the machine was disturbed "
                                    f"({disturbance}): neither passed nor failed, re-run it on a quiet machine")
        return "regression", f"worse than the {name} beyond the tolerance"
    if better:
        return "improved", f"better than the {name} beyond the tolerance; update it if this is real"
    return "pass", "within the tolerance"


def _rank_test_can_decide(obtained: int, stored: int, alpha: float) -> bool:
    """Whether the rank test can reach ``alpha`` however many rounds the other side has: with every round of one
    side slower than every round of the other, its z tends to sqrt(3 k) for k rounds on the smaller side. A side
    below that (one stored round) would let any slowdown pass, so the value is judged on its ratio instead."""
    needed = statistics.NormalDist().inv_cdf(1 - alpha) ** 2 / 3
    return min(obtained, stored) >= 2 and min(obtained, stored) > needed


def _worse_oriented(value: float, direction: str) -> float:
    """Times as they are, rates inverted: larger is always worse."""
    return value if direction == "lower" else 1 / value


def _judge_history(
    metric: Metric, history: list[Mapping[str, Any]], tolerance: float, policy: Policy, device_probes: Sequence[float]
) -> HistoryJudgement:
    """Against the run-level values of the last runs: a prediction interval (the run-to-run noise), the
    tolerance as its floor, the significance split over the run's family of such metrics."""
    alpha = policy.alpha / max(policy.family_size, 1)
    now_summary = run_summary(metric)  # the same summary the history holds for each earlier run
    tests = _history_tests(now_summary, history, metric.direction, alpha)
    if policy.latency_basis == "auto":
        chosen = [next(basis for basis in AUTO_PREFERENCE if basis in tests)]
    elif policy.latency_basis == "both":
        chosen = [basis for basis in ("absolute", "normalised") if basis in tests]
    else:
        chosen = [policy.latency_basis if policy.latency_basis in tests else "absolute"]
    limits = {basis: max(1 + tolerance, tests[basis].threshold) for basis in tests}
    values = sorted(float(h["value"]) for h in history)
    head = (f"last {len(history)} runs "
            f"{format_value(values[0], metric.unit)} to {format_value(values[-1], metric.unit)}")
    shown = chosen[0] if len(chosen) == 1 else "absolute"
    text = (f"{head}; {'time' if metric.direction == 'lower' else '1/rate'} {_percent(tests[shown].ratio - 1)} "
            f"({shown}), {_limit_text(limits[shown] - 1, tolerance)}")
    def judgement(status: Status, detail: str) -> HistoryJudgement:
        return HistoryJudgement(status, detail, limits[shown] - 1)

    sensitivity = tests[shown].sensitivity
    if sensitivity is not None:
        text += f", probe sensitivity {sensitivity:.2f}"
    if all(tests[basis].ratio > limits[basis] for basis in chosen):
        # nearer (on a log scale) to a slow phase the unchanged runner went through than to its usual runs
        slow_phase = tests[shown].slowest_set_aside
        if slow_phase is not None and math.sqrt(slow_phase) <= tests[shown].ratio <= slow_phase * (1 + tolerance):
            return judgement("inconclusive", f"{text}; but {tests[shown].set_aside} unchanged run(s) of the history "
                             f"were as slow ({_percent(slow_phase - 1)}, set aside as a slow phase of this runner): "
                             "neither passed nor failed, re-run it")
        disturbance = history_disturbance(now_summary, history, alpha, device_probes)
        if disturbance:
            return judgement("inconclusive", f"{text}; but the machine was disturbed ({disturbance}): neither "
                             "passed nor failed, re-run it on a quiet machine")
        return judgement("regression", f"{text}: worse than the run-to-run noise allows (one-sided p < {alpha:.2g})")
    if all(tests[basis].ratio < 1 / limits[basis] for basis in chosen):
        return judgement("faster", f"{text}: better than the run-to-run noise allows; check the work is still done")
    absolute = tests["absolute"]
    machine_part = absolute.ratio / tests[shown].ratio  # what the probe's slowdown accounts for
    if "absolute" not in chosen and absolute.ratio > limits["absolute"] and machine_part > 1 + tolerance:
        disturbance = history_disturbance(now_summary, history, alpha, device_probes)
        if disturbance:  # the probe left the range the history saw: its adjustment is an extrapolation
            return judgement("inconclusive", f"{text}; the absolute time ({_percent(absolute.ratio - 1)}) is beyond "
                             f"its own limit and the machine was disturbed ({disturbance}): neither passed nor "
                             "failed, re-run it on a quiet machine")
        return judgement("noise", f"{text}; the absolute time ({_percent(absolute.ratio - 1)}) is beyond its own "
                         f"limit ({_percent(limits['absolute'] - 1)}) but the calibration probe slowed with it: the "
                         "machine was slower as a whole, not the workload")
    return judgement("pass", text)


def _limit_text(limit: float, tolerance: float) -> str:
    """The limit a history holds a run to, or words where its runs vary so much that the number would say nothing
    (a history that allows +45114% detects nothing)."""
    if limit_means_nothing(limit, tolerance):
        return "no useful limit (its runs vary too much: record the history on a quiet machine)"
    return f"limit {_percent(limit)}"


def limit_means_nothing(limit: float, tolerance: float | None) -> bool:
    """Whether a history's limit is so wide (above +100% and three tolerances) that it detects nothing."""
    return limit > max(NOISY_LIMIT, NOISY_LIMIT_TOLERANCES * (tolerance or 0.0))


#: the series ``auto`` judges, the first the history has: probe-adjusted lower quartiles, then medians, then the
#: plain ratios, then without a probe (a device that has none). A fixed order: picking per metric whichever
#: series looks steadiest in a short history picks the one whose spread happened to be underestimated, and raises
#: the false-alarm rate.
AUTO_PREFERENCE = ("quartile adjusted", "adjusted", "quartile normalised", "normalised", "quartile absolute",
                   "absolute")


def _history_tests(now: Mapping[str, Any], history: list[Mapping[str, Any]], direction: str,
                   alpha: float) -> dict[str, HistoryTest]:
    """Every series a history can judge this run on, each tested one-sidedly at ``alpha``: absolute, divided by
    the probe, and adjusted for the probe by its learned sensitivity; of medians and of lower quartiles."""
    from pytest_accel.stats import adjusted_history_test, history_test, measurement_noise

    candidates = int(now.get("candidates", 1))  # the median of this many fresh runs (pytest-accel repeat)
    runs = [h for h in history if h.get("spread") and h.get("n")]
    noise_floor = measurement_noise([float(h["spread"]) for h in runs], [int(h["n"]) for h in runs])
    pairs_now = _pairs(now, direction)
    pairs_past = [_pairs(h, direction) for h in history]
    tests: dict[str, HistoryTest] = {}
    for flavour, prefix in (("median", ""), ("quartile", "quartile ")):
        if flavour not in pairs_now or not all(flavour in p for p in pairs_past):
            continue
        value_now, probe_now = pairs_now[flavour]
        past = [p[flavour] for p in pairs_past]
        tests[prefix + "absolute" if prefix else "absolute"] = history_test([v for v, _ in past], value_now, alpha,
                                                                            noise_floor, candidates)
        probes = [probe for _, probe in past]
        if probe_now is not None and all(probe is not None for probe in probes):
            known = [(v, float(probe)) for v, probe in past if probe is not None]
            tests[prefix + "normalised"] = history_test([v / pr for v, pr in known], value_now / probe_now, alpha,
                                                        noise_floor, candidates)
            if len(known) >= 3:
                tests[prefix + "adjusted"] = adjusted_history_test(known, (value_now, probe_now), alpha, noise_floor,
                                                                   candidates)
    return tests


def _pairs(summary: Mapping[str, Any], direction: str) -> dict[str, tuple[float, float | None]]:
    """(value, probe time) of one run-level summary, larger always worse: the value (times, or 1/rate) with the
    probe's median, and the round-time lower quartile (steadier on a busy machine) with the probe's."""
    probe = float(summary["probe"]) if summary.get("probe") else None
    value = _worse_oriented(float(summary["value"]), direction)
    pairs: dict[str, tuple[float, float | None]] = {"median": (value, probe)}
    if summary.get("floor"):
        probe_floor = float(summary["probe_floor"]) if summary.get("probe_floor") else None
        pairs["quartile"] = (float(summary["floor"]), probe_floor)
    return pairs


def _judge_timed(
    metric: Metric, against: Mapping[str, Any], tolerance: float, policy: Policy, device_probes: Sequence[float]
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
        disturbance = single_run_disturbance(metric, against, alpha, device_probes)
        if disturbance:  # the probe far from the baseline's: normalising by it is an extrapolation
            return "inconclusive", (f"{text}, slower beyond the tolerance of {tolerance:.3g}, but the machine was "
                                    f"disturbed ({disturbance}): neither passed nor failed, re-run it on a quiet "
                                    "machine")
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
    parts = [f"obtained {format_measured(m)}", f"expected {expected}"]
    if m.basis != "bound":
        if v.delta is not None:
            parts.append(f"diff {_percent(v.delta)}")
        if v.tolerance is not None:
            parts.append(f"tolerance {v.tolerance:.3g} ({v.tolerance_source})")
    return f"{m.name} [{m.kind}]: " + ", ".join(parts) + f"; {v.detail}"

