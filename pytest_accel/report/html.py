"""``--accel-html=PATH`` and ``pytest-accel report``: one self-contained HTML page of a run's JSON report.

Both paths render the dict :func:`pytest_accel.report.json_report.build_report` makes (saved or fresh), so a page
made later from a saved report is the page the run wrote. The page fetches nothing: CSS inline, charts as inline
SVG (:mod:`pytest_accel.report.plots`), no scripts. What a chart needs and the report lacks leaves the chart out
with a one-line note; any metric kind is listed in the tables, including kinds this version does not know.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from pytest_accel.baselines import atomic_write_text
from pytest_accel.metrics import KINDS, ROUND_KINDS, format_value, measurement_of
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


def write_html(path: Path, report: Mapping[str, Any], base_dir: Path | None = None) -> None:
    atomic_write_text(path, render(report, base_dir))


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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _rank(metric: Mapping[str, Any]) -> tuple[int, bool]:
    """Sort key: regressions first (those that fail their test before the ungated), passes last; a verdict this
    version does not know with the ones that need a look."""
    status = str(metric.get("verdict"))
    index = STATUS_ORDER.index(status if status in STATUS_ORDER else "missing")
    return index, not metric.get("gated", True)


def _is_speed(metric: Mapping[str, Any]) -> bool:
    kind = KINDS.get(str(metric.get("kind")))
    return kind is not None and kind.speed


def _is_bound(metric: Mapping[str, Any]) -> bool:
    kind = KINDS.get(str(metric.get("kind")))
    return kind is not None and kind.judgement == "bound"


def _label(metric: Mapping[str, Any]) -> str:
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

        options = self.report.get("options")
        asked = options.get("devices", []) if isinstance(options, dict) else []
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
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
                metrics = document["metrics"]
                self._baselines[name] = (metrics, "") if isinstance(metrics, dict) else (None, "baseline unreadable")
            except FileNotFoundError:
                self._baselines[name] = None, "no baseline file"
            except (OSError, ValueError, KeyError, TypeError):
                self._baselines[name] = None, "baseline file unreadable"
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


def _metrics(report: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    for result in report.get("results", []):
        for metric in result["metrics"]:
            yield result, metric


# -- chart sections (each also feeds pytest-html's extras) ------------------------------------------------------


def speedup_section(ctx: Context) -> Section:
    from pytest_accel.report.plots import speedup_chart

    section = Section("speedup", "Speed-up over the first device")
    if len(ctx.devices) < 2:
        section.notes.append("One device in this run: no speed-up to show.")
        return section
    rows = [SpeedRow(result["device"], SpeedKey(result["suite"], result["test"], metric["name"]),
                     _number(metric.get("value")), str(metric.get("direction")))
            for result, metric in _metrics(ctx.report) if _is_speed(metric)]
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
    for result, metric in _metrics(ctx.report):
        samples = metric.get("samples")
        if isinstance(samples, list) and any(_number(s) is not None for s in samples):
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
            run = [v for v in (_number(s) for s in metric["samples"]) if v is not None]
            stored, why = ctx.baseline_metrics(result)
            entry = stored.get(metric["name"]) if stored else None
            baseline = entry.get("samples") if isinstance(entry, dict) else None
            baseline = [v for v in (_number(s) for s in baseline or []) if v is not None] or None
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
    for result, metric in _metrics(ctx.report):
        if metric.get("kind") != "throughput":
            continue
        match = _BATCH_NAME.match(metric["name"])
        summary = _mapping(metric.get("summary"))
        batch = summary.get("batch_size") if isinstance(summary.get("batch_size"), int) else \
            int(match.group("batch")) if match else None
        value = _number(metric.get("value"))
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
    numbers = [_number(v) for v in values]
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
    for result, metric in _metrics(ctx.report):
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
    for result, metric in _metrics(ctx.report):
        if metric.get("kind") != "parity":
            continue
        panel = panels.setdefault(metric["name"], {"bars": [], "direction": metric.get("direction")})
        dtype = dtype_of(result)
        # each check's own bound: bf16 is held to a looser one than fp32
        panel["bars"].append((dtype if dtype != "-" else "no dtype", result["device"], _number(metric.get("value")),
                              _number(metric.get("tolerance"))))
    if not panels:
        section.notes.append("No parity metric in this report: no parity chart.")
        return section
    ordered = [ParityPanel(name, sorted(p["bars"], key=lambda bar: ctx.devices.index(bar[1])), str(p["direction"]))
               for name, p in panels.items()]
    section.charts.append(Chart("parity per dtype", parity_chart(ordered, ctx.colours)))
    return section


CHART_SECTIONS = (speedup_section, distribution_section, batch_section, curves_section, parity_section)


def charts(report: Mapping[str, Any], base_dir: Path | None = None) -> list[Chart]:
    """Every chart of a report's page, as standalone SVG (what pytest-html gets for one test's result)."""
    ctx = Context(report, base_dir)
    return [chart for make in CHART_SECTIONS for chart in make(ctx).charts]


# -- the page ---------------------------------------------------------------------------------------------------


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d1d1f;
background:#fafafa}
main{max-width:1240px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.meta{color:#555;font-size:13px}.meta code{font-size:12px;word-break:break-all}
nav a{margin-right:14px;color:#0b57d0;text-decoration:none;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:12.5px;background:#fff;margin:6px 0}
th,td{border:1px solid #e2e2e2;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.detail{color:#555;font-size:11.5px;max-width:420px}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:11.5px;font-weight:600;white-space:nowrap}
.bad{background:#fde2e1;color:#a50e0e}.warn{background:#fff1cc;color:#7a4d00}.ok{background:#e3f4e6;color:#146c2e}
.none{background:#eceff1;color:#455a64}
.counts span{margin-right:10px}
figure.chart{margin:10px 0 18px;background:#fff;border:1px solid #e2e2e2;padding:6px;width:fit-content;
max-width:100%;box-sizing:border-box}
figure.chart svg{max-width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#555}
p.note{color:#666;font-style:italic;margin:4px 0}
"""


def _badge(metric: Mapping[str, Any]) -> str:
    status = str(metric.get("verdict", "?"))
    return f'<span class="badge {STATUS_CLASS.get(status, "warn")}">{escape(_label(metric))}</span>'


def _value(metric: Mapping[str, Any], key: str = "value") -> str:
    value = _number(metric.get(key))
    return "-" if value is None else format_value(value, str(metric.get("unit", "")))


def _against(metric: Mapping[str, Any]) -> str:
    tolerance = _number(metric.get("tolerance"))
    if _is_bound(metric) and tolerance is not None:
        return f"{'≤' if metric.get('direction') == 'lower' else '≥'} {tolerance:.4g} (bound)"
    if metric.get("baseline") is None:
        return "-"
    return _value(metric, "baseline")


def _change(metric: Mapping[str, Any]) -> str:
    delta = _number(metric.get("delta"))
    if delta is None or _is_bound(metric):
        return "-"
    text = f"{delta * 100:+.1f}%"
    tolerance = _number(metric.get("effective_tolerance")) or _number(metric.get("tolerance"))
    return text + (f" (tol {tolerance * 100:.0f}%)" if tolerance is not None else "")


def _row(cells: Sequence[tuple[str, str]]) -> str:
    return "<tr>" + "".join(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>" for text, cls in cells) \
        + "</tr>"


def _metric_table(rows: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], with_device: bool) -> str:
    head = ["verdict", *(["device"] if with_device else []), "test", "metric", "kind", "value", "against",
            "change", "detail"]
    lines = ["<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for result, metric in rows:
        cells = [(_badge(metric), "")]
        if with_device:
            cells.append((escape(result["device"]), ""))
        cells += [(escape(f"{result['suite']}::{result['test']}"), ""), (escape(metric["name"]), ""),
                  (escape(str(metric.get("kind", ""))), ""), (escape(_value(metric)), "num"),
                  (escape(_against(metric)), "num"), (escape(_change(metric)), "num"),
                  (escape(str(metric.get("detail", ""))), "detail")]
        lines.append(_row(cells))
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _ordered(rows: list[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> list[tuple[Mapping[str, Any],
                                                                                      Mapping[str, Any]]]:
    return sorted(rows, key=lambda pair: _rank(pair[1]))  # stable: run order within a verdict


def _describe(device: Mapping[str, Any]) -> str:
    parts = [f"{device.get('vendor') or ''} {device.get('model') or ''}".strip()]
    if device.get("cores"):
        parts.append(f"{device['cores']} cores")
    if _number(device.get("memory_bytes")):
        parts.append(f"{device['memory_bytes'] / 2**30:.1f} GiB")
    runtime = device.get("runtime")
    if isinstance(runtime, dict):
        parts += [f"{name} {version}" for name, version in runtime.items()]
    return ", ".join(part for part in parts if part) or "-"


def _header(report: Mapping[str, Any], ctx: Context) -> str:
    options = _mapping(report.get("options"))
    gate = options.get("gate")
    lines = ["<h1>pytest-accel report</h1>",
             f'<p class="meta">{escape(str(report.get("created_at", "")))} &middot; pytest-accel '
             f'{escape(str(report.get("pytest_accel", "?")))} &middot; exit status '
             f'{escape(str(report.get("exit_status", "?")))} &middot; commit '
             f'{escape(str(report.get("git_commit") or "unknown"))} &middot; gate '
             f'{escape(",".join(gate) if isinstance(gate, list) and gate else "none")}<br>'
             f'<code>{escape(str(report.get("command", "")))}</code></p>']
    devices = _mapping(report.get("devices"))
    rows = ["<table><thead><tr><th>device</th><th>key</th><th>hardware and runtime</th><th>verdicts</th></tr>"
            "</thead><tbody>"]
    for spec in ctx.devices:
        info = _mapping(devices.get(spec))
        counts: dict[str, int] = {}
        for result, metric in _metrics(report):
            if result["device"] == spec:
                counts[_label(metric)] = counts.get(_label(metric), 0) + 1
        shown = ", ".join(f"{n} {label}" for label, n in sorted(counts.items(), key=lambda c: _order(c[0])))
        rows.append(_row([(f'<span class="badge" style="background:{ctx.colours[spec]};color:#fff">'
                           f"{escape(spec)}</span>", ""), (escape(str(info.get("key", "-"))), ""),
                          (escape(_describe(info)), ""), (escape(shown), "")]))
    rows.append("</tbody></table>")
    return "\n".join(lines + rows)


def _order(label: str) -> int:
    status = label.split(" ")[0]
    return STATUS_ORDER.index(status) * 2 + (label != status) if status in STATUS_ORDER else 0


def _attention(report: Mapping[str, Any]) -> Section:
    section = Section("attention", "Needs attention")
    listed = _ordered([(r, m) for r, m in _metrics(report) if m.get("verdict") not in ("pass", "info")])
    if not listed:
        section.notes.append("Every judged metric passed.")
        return section
    section.body = _metric_table(listed, with_device=True)
    return section


def _device_sections(report: Mapping[str, Any], ctx: Context) -> Section:
    section = Section("devices", "Metrics per device")
    parts = []
    for spec in ctx.devices:
        rows = _ordered([(r, m) for r, m in _metrics(report) if r["device"] == spec])
        parts.append(f"<h3>{escape(spec)}</h3>\n{_metric_table(rows, with_device=False)}")
    if not parts:
        section.notes.append("No test recorded a metric in this run.")
    section.body = "\n".join(parts)
    return section


def _section_html(section: Section) -> str:
    parts = [f'<section id="{section.anchor}"><h2>{escape(section.title)}</h2>']
    parts += [f'<p class="note">{escape(note)}</p>' for note in section.notes]
    if section.body:
        parts.append(section.body)
    for chart in section.charts:
        from pytest_accel.report.plots import inline

        parts.append(f'<figure class="chart">{inline(chart.svg)}<figcaption>{escape(chart.title)}</figcaption>'
                     "</figure>")
    parts.append("</section>")
    return "\n".join(parts)


def render(report: Mapping[str, Any], base_dir: Path | None = None) -> str:
    """The whole page. ``base_dir``: where relative baseline file names in the report are found."""
    ctx = Context(report, base_dir)
    sections = [_attention(report), *(make(ctx) for make in CHART_SECTIONS), _device_sections(report, ctx)]
    nav = " ".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    body = "\n".join(_section_html(section) for section in sections)
    title = f"pytest-accel report: {', '.join(ctx.devices) or 'no devices'}"
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{escape(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n{_header(report, ctx)}\n<nav>{nav}</nav>\n{body}\n"
            "</main>\n</body>\n</html>\n")
