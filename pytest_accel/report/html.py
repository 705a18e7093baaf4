"""``--accel-html=PATH`` and ``pytest-accel report``: one self-contained HTML page of a run's JSON report.

Both paths render the dict :func:`pytest_accel.report.json_report.build_report` makes (saved or fresh), so a page
made later from a saved report is the page the run wrote. The page fetches nothing: CSS inline, charts as inline
SVG (chosen by :mod:`pytest_accel.report.chart_sections`, drawn by :mod:`pytest_accel.report.plots`), no scripts.
What a chart needs and the report lacks leaves the chart out with a one-line note; any metric kind is listed in the
tables, including kinds this version does not know.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_accel.baselines import atomic_write_text
from pytest_accel.metrics import format_value
from pytest_accel.report.chart_sections import (
    CHART_SECTIONS,
    STATUS_CLASS,
    STATUS_ORDER,
    Context,
    Section,
    as_mapping,
    as_number,
    attention_rank,
    is_bound,
    metric_entries,
    verdict_label,
)


def write_html(path: Path, report: Mapping[str, Any], base_dir: Path | None = None) -> None:
    atomic_write_text(path, render(report, base_dir))


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
    return f'<span class="badge {STATUS_CLASS.get(status, "warn")}">{escape(verdict_label(metric))}</span>'


def _value(metric: Mapping[str, Any], key: str = "value") -> str:
    value = as_number(metric.get(key))
    return "-" if value is None else format_value(value, str(metric.get("unit", "")))


def _against(metric: Mapping[str, Any]) -> str:
    tolerance = as_number(metric.get("tolerance"))
    if is_bound(metric) and tolerance is not None:
        return f"{'≤' if metric.get('direction') == 'lower' else '≥'} {tolerance:.4g} (bound)"
    if metric.get("baseline") is None:
        return "-"
    return _value(metric, "baseline")


def _change(metric: Mapping[str, Any]) -> str:
    delta = as_number(metric.get("delta"))
    if delta is None or is_bound(metric):
        return "-"
    text = f"{delta * 100:+.1f}%"
    tolerance = as_number(metric.get("effective_tolerance")) or as_number(metric.get("tolerance"))
    return text + (f" (tol {tolerance * 100:.0f}%)" if tolerance is not None else "")


def _detail(metric: Mapping[str, Any]) -> str:
    """The verdict's detail, and for a compiled model's delegation the operators its delegate left on the host."""
    detail = str(metric.get("detail", ""))
    summary = metric.get("summary")
    on_host = summary.get("on_host") if isinstance(summary, Mapping) else None
    if isinstance(on_host, Mapping) and on_host:
        detail += ("; " if detail else "") + "on the host: " + ", ".join(f"{op} {n}" for op, n in on_host.items())
    return detail


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
                  (escape(_detail(metric)), "detail")]
        lines.append(_row(cells))
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _ordered(rows: list[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> list[tuple[Mapping[str, Any],
                                                                                      Mapping[str, Any]]]:
    return sorted(rows, key=lambda pair: attention_rank(pair[1]))  # stable: run order within a verdict


def _describe(device: Mapping[str, Any]) -> str:
    parts = [f"{device.get('vendor') or ''} {device.get('model') or ''}".strip()]
    if device.get("cores"):
        parts.append(f"{device['cores']} cores")
    if as_number(device.get("memory_bytes")):
        parts.append(f"{device['memory_bytes'] / 2**30:.1f} GiB")
    runtime = device.get("runtime")
    if isinstance(runtime, dict):
        parts += [f"{name} {version}" for name, version in runtime.items()]
    return ", ".join(part for part in parts if part) or "-"


def _header(report: Mapping[str, Any], ctx: Context) -> str:
    options = as_mapping(report.get("options"))
    gate = options.get("gate")
    lines = ["<h1>pytest-accel report</h1>",
             f'<p class="meta">{escape(str(report.get("created_at", "")))} &middot; pytest-accel '
             f'{escape(str(report.get("pytest_accel", "?")))} &middot; exit status '
             f'{escape(str(report.get("exit_status", "?")))} &middot; commit '
             f'{escape(str(report.get("git_commit") or "unknown"))} &middot; gate '
             f'{escape(",".join(map(str, gate)) if isinstance(gate, list) and gate else "none")}<br>'
             f'<code>{escape(str(report.get("command", "")))}</code></p>']
    devices = as_mapping(report.get("devices"))
    rows = ["<table><thead><tr><th>device</th><th>key</th><th>hardware and runtime</th><th>verdicts</th></tr>"
            "</thead><tbody>"]
    for spec in ctx.devices:
        info = as_mapping(devices.get(spec))
        counts: dict[str, int] = {}
        for result, metric in metric_entries(report):
            if result["device"] == spec:
                counts[verdict_label(metric)] = counts.get(verdict_label(metric), 0) + 1
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
    listed = _ordered([(r, m) for r, m in metric_entries(report) if m.get("verdict") not in ("pass", "info")])
    if not listed:
        section.notes.append("Every judged metric passed.")
        return section
    section.body = _metric_table(listed, with_device=True)
    return section


def _peers(report: Mapping[str, Any]) -> Section:
    """Each device of a peer group against its peers' median: the spread a node's identical devices show."""
    section = Section("peers", "Devices against their peers")
    findings = [f for f in report.get("peers") or [] if isinstance(f, dict)]
    if not findings:
        section.notes.append("No run of three or more devices of one key: no peer comparison.")
        return section
    head = ["", "device", "key", "test", "metric", "value", "peers' median", "worse by", "peers", "their spread",
            "p (Holm)"]
    rows = ["<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for f in sorted(findings, key=lambda f: (str(f.get("key")), str(f.get("test")), str(f.get("metric")),
                                             -(as_number(f.get("worse_by")) or 0))):
        flagged = f.get("flagged") is True
        badge = '<span class="badge bad">off its peers</span>' if flagged else '<span class="badge ok">with</span>'
        unit = str(f.get("unit") or "")
        numbers = [as_number(f.get(k)) for k in ("value", "peer_median", "worse_by", "peer_spread", "adjusted_p")]
        cells = [(badge, ""), (escape(str(f.get("device"))), ""), (escape(str(f.get("key"))), ""),
                 (escape(f"{f.get('suite')}::{f.get('test')}"), ""), (escape(str(f.get("metric"))), ""),
                 (escape(format_value(numbers[0], unit)), "num"), (escape(format_value(numbers[1], unit)), "num"),
                 (f"{numbers[2]:+.1%}" if numbers[2] is not None else "-", "num"),
                 (escape(str(f.get("peers"))), "num"),
                 (f"{numbers[3]:.1%}" if numbers[3] is not None else "-", "num"),
                 (f"{numbers[4]:.2g}" if numbers[4] is not None else "-", "num")]
        rows.append(_row(cells))
    rows.append("</tbody></table>")
    section.body = "\n".join(rows)
    return section


def _device_sections(report: Mapping[str, Any], ctx: Context) -> Section:
    section = Section("devices", "Metrics per device")
    parts = []
    for spec in ctx.devices:
        rows = _ordered([(r, m) for r, m in metric_entries(report) if r["device"] == spec])
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


def render(report: Mapping[str, Any], base_dir: Path | None = None, *, lead: Sequence[Section] = (),
           heading: str | None = None) -> str:
    """The whole page. ``base_dir``: where relative baseline file names in the report are found; ``lead``:
    sections before the run's own and ``heading`` in place of the run's header (the fleet page of many runs)."""
    ctx = Context(report, base_dir)
    sections = [*lead, _attention(report), *(make(ctx) for make in CHART_SECTIONS)]
    if report.get("peers"):
        sections.append(_peers(report))
    sections.append(_device_sections(report, ctx))
    nav = " ".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    body = "\n".join(_section_html(section) for section in sections)
    title = heading or f"pytest-accel report: {', '.join(ctx.devices) or 'no devices'}"
    header = _header(report, ctx) if heading is None else f"<h1>{escape(heading)}</h1>"
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{escape(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n{header}\n<nav>{nav}</nav>\n{body}\n"
            "</main>\n</body>\n</html>\n")
