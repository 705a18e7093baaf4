"""What a workload measured: one :class:`Metric` per quantity, and the one table of metric kinds.

Every rule that depends on a metric's kind reads :data:`KINDS`: its default tolerance, whether the tolerance is an
absolute bound or a relative change from a stored value, whether it comes from timed rounds (and so gets the
significance test), whether devices are compared on it as a speed-up, and whether it can be gated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["lower", "higher"]
#: What a kind's values are judged against: an absolute bound that holds with no baseline ("bound"), a relative
#: change from a stored value ("relative"), or nothing ("none": reported only).
Judgement = Literal["bound", "relative", "none"]
#: What one metric is judged against. "bound" and "reference" are not baselines: no update can settle them.
Basis = Literal["bound", "reference", "baseline", "none"]


@dataclass(frozen=True)
class MetricKind:
    name: str
    judgement: Judgement
    #: relative tolerance for "relative" kinds; None for bounds (the metric's own limit) and for "none"
    default_tolerance: float | None
    #: values come from timed rounds: a slowdown must be significant as well as beyond the tolerance
    timed: bool
    #: shown as a speed-up when devices are compared side by side
    speed: bool
    description: str
    #: how people call this kind's values in prose, where the name would read oddly
    label: str = ""
    #: tolerances must stay below this to mean anything (a relative drop of 100% lets any value through; a p-value
    #: bound is below 1); None: any non-negative value
    tolerance_below: float | None = None
    #: the report section (a scorecard's) its metrics are listed in, or None; a workload adds others per metric
    section: str | None = None
    #: a busy machine moves its values (times, rates, energy): a slower value measured beside a disturbed
    #: calibration probe is inconclusive, not a regression (:mod:`pytest_accel.disturbance`)
    disturbed_by_load: bool = False

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def gateable(self) -> bool:
        return self.judgement != "none"


INFO_KIND = "info"

KINDS: dict[str, MetricKind] = {
    kind.name: kind
    for kind in (
        # accuracy 0.01 is MLPerf's "at least 99% of the reference"
        MetricKind("accuracy", "relative", 0.01, False, False, "relative drop allowed, higher is better (mAP)",
                   tolerance_below=1.0, section="accuracy"),
        MetricKind("parity", "bound", None, False, False, "absolute bound on an error against a golden run",
                   section="parity"),
        MetricKind("convergence", "bound", None, False, False, "absolute bound, e.g. a convergence test's p-value",
                   tolerance_below=1.0),
        # 0.05: the floor under the run-to-run prediction interval (a history of runs); a single-run baseline is
        # judged by the within-run test at twice it, since it cannot see the run-to-run noise
        MetricKind("latency", "relative", 0.05, True, True, "timed samples; significant and relative slowdown",
                   section="speed", disturbed_by_load=True),
        MetricKind("throughput", "relative", 0.05, True, True, "timed samples; significant and relative drop",
                   tolerance_below=1.0, section="speed", disturbed_by_load=True),
        MetricKind("memory", "relative", 0.10, False, False, "relative growth of peak memory"),
        MetricKind("startup", "relative", 1.0, False, True, "one-shot load + compile + first run; relative, loose",
                   label="first run", section="speed", disturbed_by_load=True),
        # 0.10: one window of the minimum 20 counter periods can be off by one period's energy (5%), and a board's
        # power moves a few percent with its temperature and clocks between runs; the value is a median of several
        # windows, with no round samples for a significance test, so the tolerance alone must cover both. Not a
        # speed: energy per inference is compared between devices as it is, not as a speed-up
        MetricKind("energy", "relative", 0.10, False, False, "energy per inference from a device's energy meter; "
                   "relative growth", section="energy", disturbed_by_load=True),
        # a share of the datasheet's (or the host estimate's) peak: judged only against a floor the user or a
        # vendor's manifest sets ("bf16 matmul at least 0.6 of peak"); without one, reported
        MetricKind("share", "bound", None, False, False, "share of the device's peak; a floor from a manifest or "
                   "--accel-tolerance", label="share of peak", tolerance_below=1.0, section="ceiling"),
        MetricKind(INFO_KIND, "none", None, False, False, "recorded and reported, never checked"),
    )
}
#: The kinds a metric can be checked as (and gated, and given a tolerance): every kind but info.
METRIC_KINDS: tuple[str, ...] = tuple(name for name, kind in KINDS.items() if kind.gateable)
#: Built-in relative tolerance per kind; bound kinds use the metric's own ``limit``.
DEFAULT_TOLERANCES: dict[str, float] = {
    name: kind.default_tolerance for name, kind in KINDS.items() if kind.default_tolerance is not None
}


#: the report sections a metric can be listed in (:attr:`Metric.report_sections`), in the scorecard's order
SECTIONS = ("accuracy", "parity", "precision", "speed", "energy", "ceiling")

#: kinds measured from one set of timed rounds: ``<measurement>.latency`` and ``<measurement>.throughput``
ROUND_KINDS = ("latency", "throughput")


def measurement_of(name: str, kind: str) -> str:
    """What a speed metric was measured from: the latency and throughput of ``detection.b4`` share their rounds
    (one measurement, ``detection.b4``); every other metric is its own."""
    prefix, _, last = name.rpartition(".")
    return prefix if kind in ROUND_KINDS and last in ROUND_KINDS and prefix else name


@dataclass
class Metric:
    """One measured quantity.

    ``limit`` is an absolute bound that holds without any baseline (a parity error must stay under it), and
    ``limit_reason`` why it holds, shown beside it when the bound fails;
    ``samples`` (seconds per round) and ``probe_samples`` (the calibration probe's seconds, interleaved) carry the
    raw data the latency significance test needs.
    """

    name: str
    value: float
    unit: str
    kind: str
    direction: Direction
    limit: float | None = None
    samples: list[float] | None = None
    probe_samples: list[float] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    #: a device-independent reference (e.g. the fp32 mAP in suites/reference/) checked instead of the device's
    #: own baseline; ``expected_source`` names where it came from
    expected: float | None = None
    expected_source: str | None = None
    limit_reason: str | None = None
    #: for a bound on a p-value of being slower (a convergence test): the one-sided p-value of the other direction;
    #: under the bound the verdict reads "faster?"
    p_faster: float | None = None
    #: report sections the workload lists this metric in beside its kind's (:data:`SECTIONS`): an info metric of
    #: the precision compute ran in is "precision", a parity metric that also breaks its compute down is both
    sections: tuple[str, ...] = ()
    #: this run's summary for the speed history, computed once (:func:`pytest_accel.history.run_summary`)
    run_summary_cache: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.direction not in ("lower", "higher"):
            raise ValueError(f"metric {self.name!r}: direction {self.direction!r} must be 'lower' or 'higher'")
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown:
            raise ValueError(f"metric {self.name!r}: section(s) {', '.join(map(repr, unknown))} unknown; known: "
                             f"{', '.join(SECTIONS)}")
        self.value = float(self.value)

    @property
    def report_sections(self) -> tuple[str, ...]:
        """The report sections this metric is listed in: its kind's, then those the workload declared."""
        kind_section = self.kind_info.section
        declared = tuple(s for s in self.sections if s != kind_section)
        return ((kind_section,) if kind_section else ()) + declared

    @property
    def is_finite(self) -> bool:
        """The value and every timing sample are finite numbers (NaN and inf come from broken runs)."""
        values = [self.value, *(self.samples or []), *(self.probe_samples or [])]
        return all(math.isfinite(v) for v in values)

    @property
    def kind_info(self) -> MetricKind:
        return KINDS[self.kind]

    @property
    def is_timed(self) -> bool:
        return self.kind_info.timed and bool(self.samples)

    @property
    def basis(self) -> Basis:
        """What this metric is judged against. Only "baseline" is the device's own stored value, which
        ``--accel-update-baselines`` can settle; a bound or a device-independent reference it cannot."""
        judgement = self.kind_info.judgement
        if judgement == "none":
            return "none"
        if judgement == "bound":
            return "bound"
        return "reference" if self.expected is not None else "baseline"


def format_value(value: float | None, unit: str) -> str:
    """Human units: seconds become ms/us, joules mJ/uJ, bytes MiB/GiB; ratios get 4 significant digits."""
    if value is None:
        return "-"
    if unit == "s":
        if abs(value) >= 1:
            return f"{value:.3g} s"
        if abs(value) >= 1e-3:
            return f"{value * 1e3:.3g} ms"
        return f"{value * 1e6:.3g} us"
    if unit == "J":
        if abs(value) >= 1 or value == 0:
            return f"{value:.4g} J"
        if abs(value) >= 1e-3:
            return f"{value * 1e3:.4g} mJ"
        return f"{value * 1e6:.4g} uJ"
    if unit == "B":
        if abs(value) >= 2**30:
            return f"{value / 2**30:.2f} GiB"
        return f"{value / 2**20:.1f} MiB"
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text


def format_measured(metric: Metric) -> str:
    """The value in human units, with ``± uncertainty`` where the measurement states one (energy metrics)."""
    text = format_value(metric.value, metric.unit)
    uncertainty = metric.summary.get("uncertainty")
    if isinstance(uncertainty, (int, float)) and math.isfinite(uncertainty):
        text += f" ± {format_value(uncertainty, metric.unit)}"
    return text
