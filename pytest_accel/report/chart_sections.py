"""The HTML report's charts, chosen from a report dict (a saved ``--accel-report`` or a fresh one): speed-ups over
the first device, sample distributions against the baseline's, throughput by batch, training curves against the
reference band, parity per dtype. Each section feeds the page (:mod:`pytest_accel.report.html`) and pytest-html's
extras; :mod:`pytest_accel.report.plots` draws them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pytest_accel.baselines import BaselineError, load_document
from pytest_accel.metrics import KINDS, ROUND_KINDS, measurement_of
from pytest_accel.report.document import as_mapping, as_number, metric_entries
from pytest_accel.report.facts import SpeedKey, SpeedRow, Speedups

if TYPE_CHECKING:
    from pytest_accel.report.plots import Band

#: verdicts in the order the page lists them: what needs attention first
STATUS_ORDER = ("regression", "inconclusive", "faster", "improved", "noise", "missing", "recorded", "updated",
                "pass", "info")
STATUS_CLASS = {"regression": "bad", "inconclusive": "warn", "faster": "warn", "improved": "warn", "noise": "ok",
                "pass": "ok", "missing": "none", "recorded": "none", "updated": "none", "info": "none"}
_DTYPE = re.compile(r"^(fp\d+|bf16|tf32|int\d+|uint\d+|fp8\w*|float\d+|half|mixed)$", re.I)
_BATCH_NAME = re.compile(r"^(?P<prefix>.+)\.b(?P<batch>\d+)\.throughput$")
LINESTYLES = {"fp32": "-", "fp16": "--", "bf16": "-.", "int8": ":"}


# -- reading a report -------------------------------------------------------------------------------------------


def dtype_of(result: Mapping[str, Any]) -> str:
    """The dtype among a test's parameters (``fp16`` of ``test_parity[fp16-cpu]``), else its other parameters
    (the device's own id left out), else ``-``."""
    params = result.get("params")
    if not isinstance(params, str):  # a report written before the field: read the node id
        match = re.search(r"\[(.*)\]$", str(result.get("nodeid", "")))
        params = match.group(1) if match else ""
        device_id = str(result.get("device", "")).replace(":", "-")
        params = params.removesuffix(device_id).removeprefix(device_id).strip("-")
    parts = [part for part in params.split("-") if part]
    return next((part for part in parts if _DTYPE.match(part)), params or "-")


def attention_rank(metric: Mapping[str, Any]) -> tuple[int, bool]:
    """Sort key: regressions first (those that fail their test before the ungated), passes last; a verdict this
    version does not know with the ones that need a look."""
    status = str(metric.get("verdict"))
    index = STATUS_ORDER.index(status if status in STATUS_ORDER else "missing")
    return index, not metric.get("gated", True)


def is_speed(metric: Mapping[str, Any]) -> bool:
    kind = KINDS.get(str(metric.get("kind")))
    return kind is not None and kind.speed


def is_bound(metric: Mapping[str, Any]) -> bool:
    kind = KINDS.get(str(metric.get("kind")))
    return kind is not None and kind.judgement == "bound"


def verdict_label(metric: Mapping[str, Any]) -> str:
    status = str(metric.get("verdict", "?"))
    if status == "regression" and not metric.get("gated", True):
        return "regression (not gated)"
    return status


@dataclass
class Context:
    """What rendering one report shares: device order and colours, baseline files read once."""

    report: Mapping[str, Any]
    base_dir: Path | None = None
    devices: list[str] = field(default_factory=list)
    colours: dict[str, str] = field(default_factory=dict)
    _baselines: dict[str, tuple[dict[str, Any] | None, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from pytest_accel.report.plots import colour

        asked = as_mapping(self.report.get("options")).get("devices")
        asked = [d for d in asked if isinstance(d, str)] if isinstance(asked, list) else []
        ran = [r["device"] for r in self.report.get("results", [])]
        self.devices = [d for d in dict.fromkeys([*asked, *ran]) if d in ran]
        self.colours = {device: colour(i) for i, device in enumerate(self.devices)}

    def baseline_metrics(self, result: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The metrics of a result's baseline file, or None and why not."""
        name = result.get("baseline_file")
        if not isinstance(name, str) or not name:
            return None, "no baseline file named"
        if name not in self._baselines:
            path = Path(name)
            if not path.is_absolute() and self.base_dir is not None:
                path = self.base_dir / path
            try:  # the store's one reader: a FIFO, a huge or a deeply nested file is refused, not read
                document = load_document(path)
            except BaselineError:
                self._baselines[name] = None, "baseline file unreadable"
            else:
                self._baselines[name] = (document["metrics"], "") if document else (None, "no baseline file")
        return self._baselines[name]


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str


@dataclass
class Section:
    anchor: str
    title: str
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    body: str = ""


# -- chart sections (each also feeds pytest-html's extras) ------------------------------------------------------


def speedup_section(ctx: Context) -> Section:
    from pytest_accel.report.plots import speedup_chart

    section = Section("speedup", "Speed-up over the first device")
    if len(ctx.devices) < 2:
        section.notes.append("One device in this run: no speed-up to show.")
        return section
    rows = [SpeedRow(result["device"], SpeedKey(result["suite"], result["test"], metric["name"]),
                     as_number(metric.get("value")), str(metric.get("direction")))
            for result, metric in metric_entries(ctx.report) if is_speed(metric)]
    speedups = Speedups.pair(rows, ctx.devices)
    first = speedups.reference or ctx.devices[0]
    paired = {row.key for row in rows if speedups.paired(row.device, row.key)}
    keys = [key for key in dict.fromkeys(row.key for row in rows) if key in paired]
    series: dict[str, list[float | None]] = {device: [speedups.over(device, key) for key in keys]
                                             for device in ctx.devices if device != first}
    series = {device: row for device, row in series.items() if any(row)}
    labels = [f"{key.test}  {_short(key.suite, key.metric)}" for key in keys]
    if not labels or not series:
        section.notes.append(f"No speed metric ran on {first} and another device: no speed-up to show.")
        return section
    section.charts.append(Chart(f"speed-up over {first}", speedup_chart(labels, series, first, ctx.colours)))
    return section


def _short(suite: str, name: str) -> str:
    return name[len(suite) + 1:] if name.startswith(f"{suite}.") else name


def distribution_section(ctx: Context) -> Section:
    from pytest_accel.report.plots import Distribution, distribution_chart

    section = Section("distributions", "Sample distributions against the baselines")
    grouped: dict[tuple[str, str, str], list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = {}
    for result, metric in metric_entries(ctx.report):
        samples = metric.get("samples")
        if isinstance(samples, list) and any(as_number(s) is not None for s in samples):
            key = (result["suite"], _function(result), measurement_of(metric["name"], str(metric.get("kind"))))
            if not any(r is result for r, _ in grouped.get(key, [])):
                grouped.setdefault(key, []).append((result, metric))
    if not grouped:
        section.notes.append("No metric in this report carries timed samples: no distribution to show.")
        return section
    for (_, function, name), entries in grouped.items():
        panels = []
        kind, unit = str(entries[0][1].get("kind")), str(entries[0][1].get("unit", ""))
        in_seconds = unit == "s" or kind in ROUND_KINDS  # a rate's samples are its rounds' times
        for result, metric in entries:
            run = [v for v in (as_number(s) for s in metric["samples"]) if v is not None]
            stored, why = ctx.baseline_metrics(result)
            entry = stored.get(metric["name"]) if stored else None
            baseline = entry.get("samples") if isinstance(entry, dict) else None
            baseline = [v for v in (as_number(s) for s in baseline or []) if v is not None] or None
            note = "" if baseline else (why or "baseline has no samples")
            panels.append(Distribution(result["device"], _line_label(result), run, baseline, note))
        axis = "round time (ms)" if in_seconds else f"per round ({unit})" if unit else "per round"
        title = f"{function}  {name}" + (" rounds" if name != entries[0][1]["name"] else "")
        section.charts.append(Chart(title, distribution_chart(title, panels, 1e3 if in_seconds else 1.0, axis,
                                                              ctx.colours)))
    return section


def _function(result: Mapping[str, Any]) -> str:
    """The test apart from its device and parameters (a report written before ``function`` was: its test)."""
    function = result.get("function")
    return function if isinstance(function, str) and function else str(result["test"])


def _line_label(result: Mapping[str, Any]) -> str:
    dtype = dtype_of(result)
    return f"{result['device']} {dtype}" if dtype != "-" else str(result["device"])


def _style(device: str, dtype: str, ctx: Context) -> tuple[str, str]:
    return ctx.colours.get(device, "#000000"), LINESTYLES.get(dtype, "-")


def batch_section(ctx: Context) -> Section:
    from pytest_accel.report.plots import batch_chart

    section = Section("batch", "Throughput against batch size")
    charts: dict[tuple[str, str], dict[str, list[tuple[int, float]]]] = {}
    units: dict[tuple[str, str], str] = {}
    styles: dict[str, tuple[str, str]] = {}
    for result, metric in metric_entries(ctx.report):
        if metric.get("kind") != "throughput":
            continue
        match = _BATCH_NAME.match(metric["name"])
        summary = as_mapping(metric.get("summary"))
        batch = summary.get("batch_size") if isinstance(summary.get("batch_size"), int) else \
            int(match.group("batch")) if match else None
        value = as_number(metric.get("value"))
        if batch is None or value is None:
            continue
        prefix = match.group("prefix") if match else metric["name"].removesuffix(".throughput")
        dtype = dtype_of(result)
        key = (result["suite"], prefix)
        line = _line_label(result)
        charts.setdefault(key, {}).setdefault(line, []).append((batch, value))
        units[key] = str(metric.get("unit", ""))
        styles[line] = _style(result["device"], dtype, ctx)
    shown = {key: lines for key, lines in charts.items() if any(len({b for b, _ in p}) > 1 for p in lines.values())}
    if not shown:
        section.notes.append("No throughput was measured at two or more batch sizes: no batch-size chart.")
        return section
    for (suite, prefix), lines in shown.items():
        ordered = {label: sorted(points) for label, points in lines.items()}
        section.charts.append(Chart(f"{prefix} throughput", batch_chart(f"{prefix} throughput by batch size",
                                                                        ordered, units[suite, prefix], styles)))
    return section


def _series(mapping: Mapping[str, Any], key: str, length: int) -> list[float] | None:
    values = mapping.get(key)
    if not isinstance(values, list) or len(values) != length:
        return None
    numbers = [as_number(v) for v in values]
    return None if any(v is None for v in numbers) else [float(v) for v in numbers if v is not None]


def _band(reference: Mapping[str, Any], name: str) -> Band | None:
    from pytest_accel.report.plots import Band

    epochs = _series(reference, "epoch", len(reference.get("epoch") or []))
    if not epochs:
        return None
    low, high = _series(reference, f"{name}_low", len(epochs)), _series(reference, f"{name}_high", len(epochs))
    return Band(epochs, low, high) if low and high else None


def curves_section(ctx: Context) -> Section:
    from pytest_accel.report.plots import Curve, curves_chart

    section = Section("curves", "Training curves against the reference band")
    groups: dict[tuple[str, str], list[Curve]] = {}
    bands: dict[tuple[str, str], tuple[Band | None, Band | None, str]] = {}
    for result, metric in metric_entries(ctx.report):
        summary = metric.get("summary")
        curves = summary.get("curves") if isinstance(summary, dict) else None
        if not isinstance(curves, dict):
            continue
        epochs = _series(curves, "epoch", len(curves.get("epoch") or []))
        if not epochs:
            section.notes.append(f"{result['device']} {result['test']} {metric['name']}: curves without epochs, "
                                 "left out.")
            continue
        dtype = dtype_of(result)
        colour, linestyle = _style(result["device"], dtype, ctx)
        label = _line_label(result)
        curve = Curve(label, epochs, _series(curves, "val_accuracy", len(epochs)),
                      _series(curves, "val_loss", len(epochs)), _series(curves, "train_loss", len(epochs)),
                      colour, linestyle)
        key = (result["suite"], metric["name"])
        groups.setdefault(key, []).append(curve)
        reference = summary.get("reference_curves") if isinstance(summary, dict) else None
        if key not in bands and isinstance(reference, dict):
            accuracy_band, loss_band = _band(reference, "val_accuracy"), _band(reference, "val_loss")
            if accuracy_band or loss_band:
                runs = reference.get("runs")
                bands[key] = (accuracy_band, loss_band,
                              f"reference, {runs} runs (min to max)" if runs else "reference (min to max)")
    if not groups:
        section.notes.append("No metric in this report carries training curves: no curve chart.")
        return section
    for key, curves_of in groups.items():
        accuracy_band, loss_band, band_label = bands.get(key, (None, None, ""))
        if key not in bands:
            section.notes.append(f"{key[1]}: the reference has no per-epoch band; the curves are shown alone.")
        title = f"{key[1]}: validation accuracy and loss per epoch"
        section.charts.append(Chart(title, curves_chart(title, curves_of, accuracy_band, loss_band, band_label)))
    return section


def parity_section(ctx: Context) -> Section:
    from pytest_accel.report.plots import ParityPanel, parity_chart

    section = Section("parity", "Parity errors per dtype")
    panels: dict[str, dict[str, Any]] = {}
    for result, metric in metric_entries(ctx.report):
        if metric.get("kind") != "parity":
            continue
        panel = panels.setdefault(metric["name"], {"bars": [], "direction": metric.get("direction")})
        dtype = dtype_of(result)
        # each check's own bound: bf16 is held to a looser one than fp32
        panel["bars"].append((dtype if dtype != "-" else "no dtype", result["device"], as_number(metric.get("value")),
                              as_number(metric.get("tolerance"))))
    if not panels:
        section.notes.append("No parity metric in this report: no parity chart.")
        return section
    ordered = [ParityPanel(name, sorted(p["bars"], key=lambda bar: ctx.devices.index(bar[1])), str(p["direction"]))
               for name, p in panels.items()]
    section.charts.append(Chart("parity per dtype", parity_chart(ordered, ctx.colours)))
    return section


def roofline_section(ctx: Context) -> Section:
    from pytest_accel.report.plots import roofline_chart
    from pytest_accel.report.roofline import rooflines

    section = Section("roofline", "Against the datasheet: rooflines")
    lines = rooflines(ctx.report)
    if not lines:
        section.notes.append("No ceiling or roofline metric in this report (the matmul suite's ceilings, the "
                             "detector's model latency, the gesture training): no roofline.")
        return section
    for device, line in lines.items():
        bandwidth, source = line.roof_bandwidth
        if not line.peaks:
            section.notes.append(f"{device}: no peak ({line.origin}); the chart shows measured ceilings only.")
        if bandwidth is not None and not line.bandwidth_gbs:
            section.notes.append(f"{device}: the bandwidth roof is {source}: no datasheet bandwidth.")
        title = f"{device}: roofline"
        # the roofs of the precisions something here ran in (an int8 or fp64 roof over fp32 work says nothing)
        shown = {p.precision for p in line.points} | set(line.matmul) | {"fp32"}
        peaks = {precision: peak for precision, peak in line.peaks.items() if precision in shown}
        best_stream = dict([max(line.stream.items(), key=lambda item: item[1])]) if line.stream else {}
        section.charts.append(Chart(title, roofline_chart(
            title, peaks, bandwidth, line.matmul, best_stream,
            [(f"{p.name} {p.precision}", p.intensity, p.tflops) for p in line.points],
            ctx.colours.get(device, "#1f77b4"))))
    return section


CHART_SECTIONS = (speedup_section, distribution_section, batch_section, curves_section, parity_section,
                  roofline_section)


def charts(report: Mapping[str, Any], base_dir: Path | None = None) -> list[Chart]:
    """Every chart of a report's page, as standalone SVG (what pytest-html gets for one test's result)."""
    ctx = Context(report, base_dir)
    return [chart for make in CHART_SECTIONS for chart in make(ctx).charts]
