"""An A/B comparison (:mod:`pytest_accel.ab`) as a person and a CI job read it: the terminal lines, the JSON
document (``pytest-accel/ab``), Markdown for a job's step summary, and a self-contained HTML page."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from pytest_accel.metrics import format_value
from pytest_accel.report.lines import aligned_table

if TYPE_CHECKING:
    from pytest_accel.ab import Comparison, QualityFinding, SpeedFinding

AB_SCHEMA = "pytest-accel/ab"
AB_SCHEMA_VERSION = 1


def _median(values: tuple[float, ...]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _where(finding: SpeedFinding | QualityFinding) -> tuple[str, str, str]:
    device, suite, test, name = finding.key
    return device, f"{suite}::{test}", name


def _ratio(finding: SpeedFinding) -> str:
    estimate = finding.estimate
    return f"{estimate.ratio:.3f} [{estimate.low:.3f}, {estimate.high:.3f}]"


def _verdict(finding: SpeedFinding) -> str:
    if finding.verdict == "no difference detected":
        detectable = finding.estimate.detectable
        if not math.isfinite(detectable):
            return (f"no difference detected (could have seen none: {finding.estimate.pairs} pairs cannot reach "
                    f"this comparison's level; at least {finding.fewest_pairs} are needed)")
        seen = f"±{detectable - 1:.1%}" if detectable < 2 else f"only a factor over {detectable:.3g}: more pairs"
        return f"no difference detected (could have seen {seen})"
    change = finding.slowdown if finding.verdict == "slower" else -finding.slowdown
    text = f"{finding.verdict} by {abs(change):.1%} (p={finding.adjusted_p:.2g} adjusted)"
    return text + (": fails the comparison" if finding.gates else "")


def headline(comparison: Comparison) -> str:
    slower = sum(f.verdict == "slower" for f in comparison.speed)
    faster = sum(f.verdict == "faster" for f in comparison.speed)
    worse = sum(f.gates for f in comparison.quality)
    failing = "B fails the comparison" if comparison.exit_code else "nothing fails the comparison"
    return (f"{len(comparison.speed)} timed metric(s) over {comparison.pairs} pairs: {slower} slower, {faster} "
            f"faster in B (family-wise alpha {comparison.alpha:g}, threshold {comparison.threshold:.0%}); "
            f"{len(comparison.quality)} accuracy/parity metric(s), {worse} worse in B; {failing}")


def _speed_rows(comparison: Comparison) -> list[list[str]]:
    return [[*_where(f), format_value(_median(f.a_values), f.unit), format_value(_median(f.b_values), f.unit),
             _ratio(f), _verdict(f)] for f in comparison.speed]


def _quality_rows(comparison: Comparison) -> list[list[str]]:
    return [[*_where(f), f"{f.a_median:.4g}", f"{f.b_median:.4g}", f.verdict] for f in comparison.quality]


SPEED_HEADER = ["device", "test", "metric", "A (median)", "B (median)", "B/A [interval]", "verdict"]
QUALITY_HEADER = ["device", "test", "metric", "A (median)", "B (median)", "verdict"]


def _differences(comparison: Comparison) -> str:
    return ", ".join(comparison.differences) or "nothing the runs' reports name (same versions)"


def _mode(comparison: Comparison) -> str:
    return comparison.mode or "not recorded"


def terminal_lines(comparison: Comparison) -> list[str]:
    lines = [f"A: {comparison.a.describe()}", f"B: {comparison.b.describe()}",
             f"what differs: {_differences(comparison)}", f"how the runs ran: {_mode(comparison)}",
             headline(comparison)]
    for header, rows in ((SPEED_HEADER, _speed_rows(comparison)), (QUALITY_HEADER, _quality_rows(comparison))):
        if not rows:
            continue
        lines.append("")
        lines.extend(aligned_table([header, *rows]))
    if comparison.unpaired:
        lines.append(f"not compared (missing from some run): {', '.join(comparison.unpaired)}")
    return lines


def to_dict(comparison: Comparison) -> dict[str, Any]:
    def side(which: Any) -> dict[str, Any]:
        return {"python": which.python, "options": list(which.options), "env": dict(which.env)}

    return {
        "schema": AB_SCHEMA, "schema_version": AB_SCHEMA_VERSION,
        "a": side(comparison.a), "b": side(comparison.b), "pairs": comparison.pairs, "order": "ABBA",
        "alpha": comparison.alpha, "threshold": comparison.threshold, "exit_code": comparison.exit_code,
        "seconds": comparison.seconds, "headline": headline(comparison),
        "speed": [{"device": f.key[0], "suite": f.key[1], "test": f.key[2], "name": f.key[3], "kind": f.kind,
                   "unit": f.unit, "direction": f.direction, "a": list(f.a_values), "b": list(f.b_values),
                   **f.estimate.to_dict(), "adjusted_p": f.adjusted_p, "slowdown": f.slowdown,
                   "verdict": f.verdict, "fails": f.gates} for f in comparison.speed],
        "quality": [{"device": f.key[0], "suite": f.key[1], "test": f.key[2], "name": f.key[3], "kind": f.kind,
                     "a_median": f.a_median, "b_median": f.b_median, "b_failed_runs": f.b_failed_runs,
                     "runs": f.runs, "verdict": f.verdict, "fails": f.gates} for f in comparison.quality],
        "unpaired": list(comparison.unpaired),
        "differences": list(comparison.differences),
        "mode": comparison.mode,
    }


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)]


def markdown(comparison: Comparison) -> str:
    lines = ["## pytest-accel A/B", "", f"- **A**: `{comparison.a.describe()}`",
             f"- **B**: `{comparison.b.describe()}`", f"- **What differs**: {_differences(comparison)}",
             f"- **How the runs ran**: {_mode(comparison)}", "",
             f"**{headline(comparison)}**", ""]
    if comparison.speed:
        lines += ["### Speed", "", *_markdown_table(SPEED_HEADER, _speed_rows(comparison)), ""]
    if comparison.quality:
        lines += ["### Accuracy and parity", "", *_markdown_table(QUALITY_HEADER, _quality_rows(comparison)), ""]
    if comparison.unpaired:
        lines += [f"Not compared (missing from some run): {', '.join(comparison.unpaired)}", ""]
    return "\n".join(lines)


def html_page(comparison: Comparison) -> str:
    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    sections = [f"<h2>Speed</h2>{table(SPEED_HEADER, _speed_rows(comparison))}" if comparison.speed else "",
                f"<h2>Accuracy and parity</h2>{table(QUALITY_HEADER, _quality_rows(comparison))}"
                if comparison.quality else ""]
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:4px 8px;text-align:left}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>pytest-accel A/B</title><style>{style}"
            f"</style></head><body><h1>pytest-accel A/B</h1><p>A: <code>{html.escape(comparison.a.describe())}"
            f"</code><br>B: <code>{html.escape(comparison.b.describe())}</code><br>What differs: "
            f"{html.escape(_differences(comparison))}<br>How the runs ran: {html.escape(_mode(comparison))}</p>"
            f"<p><strong>{html.escape(headline(comparison))}</strong></p>{''.join(sections)}</body></html>\n")
