"""The run's summary in Markdown, for CI pages: GitHub Actions shows what a step appends to the file named by
``GITHUB_STEP_SUMMARY`` on the run's page.

Regressions first (each with its device, metric, obtained and expected values, the change against its tolerance or
the bound, the baseline file and, where an update can settle it, the command that updates it), then the other
verdicts that are not a pass and the metrics without a baseline with the command that records them, then the
matrix of the terminal's compact summary (a row per metric, a column per device and parameters, verdict marks).
The ordering, marks and speed-ups are the terminal summary's own (:mod:`pytest_accel.report.matrix`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from pytest_accel.metrics import format_value
from pytest_accel.options import OPT_UPDATE
from pytest_accel.paths import display_path
from pytest_accel.peers import summary_lines
from pytest_accel.report.facts import RunFacts, SpeedKey
from pytest_accel.report.matrix import (
    MARKS,
    Column,
    build_matrix,
    column_label,
    delta_text,
    mark_key,
    not_passing,
    record_missing_command,
    speedup_text,
)
from pytest_accel.report.safe_text import markdown_code, markdown_text
from pytest_accel.rerun import rerun_command
from pytest_accel.session import AccelSession, TestRecord
from pytest_accel.verdicts import Verdict

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
MAX_LISTED = 50


_code = markdown_code
_cell = markdown_text


@dataclass(frozen=True)
class MarkdownSummary:
    """The summary of ``session`` as Markdown lines, with the ``facts`` every report of the run shares; ``rootdir``
    is where node ids are relative to (the update commands name the test file from there)."""

    session: AccelSession
    facts: RunFacts
    rootdir: Path

    def lines(self) -> Iterator[str]:
        records = [r for r in self.session.records if r.verdicts]
        if not records:
            return
        devices = list(dict.fromkeys(r.device.spec for r in records))
        yield "## pytest-accel"
        yield ""
        listed = not_passing(records)
        regressions = [(r, v) for r, v in listed if v.regressed]
        others = [(r, v) for r, v in listed if not v.regressed]
        missing = [(r, v) for r in records for v in r.verdicts if v.status == "missing"]
        metrics = sum(len(r.verdicts) for r in records)
        failing = sum(v.fails_test for _, v in regressions)
        yield (f"{metrics} metric(s) on {len(devices)} device(s) ({', '.join(map(markdown_text, devices))}): "
               f"**{len(regressions)} regression(s)** ({failing} failing their test), {len(others)} other verdict(s) "
               f"not a plain pass, {len(missing)} without a baseline.")
        peers = summary_lines(self.facts.peers, self.session.options.gate, every_group=True)
        if peers:
            yield ""
            yield "### Devices against their peers"
            yield ""
            yield markdown_text(peers[0])
            yield ""
            yield from (f"- {markdown_text(line.strip())}" for line in peers[1:])
        if regressions:
            yield ""
            yield "### Regressions"
            yield ""
            yield from self._listed(regressions, with_files=True)
        if others:
            yield ""
            yield "### Other verdicts that are not a pass"
            yield ""
            yield from self._listed(others, with_files=False)
        if missing:
            yield ""
            yield "### No baseline (not checked)"
            yield ""
            by_file: dict[Path, list[str]] = {}
            for record, verdict in missing:
                by_file.setdefault(record.baseline_path, []).append(verdict.metric.name)
            for path, names in list(by_file.items())[:MAX_LISTED]:
                yield f"- {_code(self._display(path))}: {', '.join(map(markdown_text, names))}"
            if len(by_file) > MAX_LISTED:
                yield f"- ... and {len(by_file) - MAX_LISTED} more files"
            yield ""
            yield f"Record them with: {_code(record_missing_command(self.session.options.invocation_args))}"
        yield ""
        yield "### Per device"
        yield ""
        yield from self._matrix(records)

    def _listed(self, pairs: list[tuple[TestRecord, Verdict]], with_files: bool) -> Iterator[str]:
        for record, verdict in pairs[:MAX_LISTED]:
            metric = verdict.metric
            mark = MARKS[mark_key(verdict)]
            against = {"bound": "bound", "reference": "reference"}.get(metric.basis, "baseline")
            test = _code(f"{record.suite}::{record.test}")
            text = (f"- {mark.symbol} **{markdown_text(record.device.spec)}** {test} "
                    f"{_code(metric.name)}: obtained {format_value(metric.value, metric.unit)}, "
                    f"{against} {verdict.expected_text}")
            delta = delta_text(verdict)
            if delta != "-":
                text += f", {delta}"
            if metric.basis != "bound" and verdict.tolerance is not None:
                text += f" (tolerance {verdict.tolerance:.3g})"
            yield f"{text}; {mark.meaning}: {markdown_text(verdict.detail)}"
            if with_files:
                yield f"  - baseline: {_code(self._display(record.baseline_path))}"
                if metric.basis == "baseline":
                    yield f"  - update: {_code(self._update_command(record))}"
                else:
                    yield "  - a bound or reference is not a baseline: an update would not settle this"
        if len(pairs) > MAX_LISTED:
            yield f"- ... and {len(pairs) - MAX_LISTED} more (the JSON report, --accel-report, holds every one)"

    def _matrix(self, records: list[TestRecord]) -> Iterator[str]:
        columns, rows = build_matrix(records, self.session.options.device_specs)
        yield "| metric | " + " | ".join(_cell(column_label(column)) for column in columns) + " |"
        yield "|---|" + "---|" * len(columns)
        for heading, metrics in rows.items():
            yield f"| **{_cell(heading)}** |" + " |" * len(columns)
            for name, per_column in metrics.items():
                cells = [self._matrix_cell(per_column, column) for column in columns]
                yield f"| {_cell(name)} | " + " | ".join(cells) + " |"
        used = {mark_key(v) for r in records for v in r.verdicts}
        legend = [f"{mark.symbol} {mark.meaning}" for key, mark in MARKS.items() if key in used and mark.symbol]
        yield ""
        if legend:
            reference = self.facts.speedups.reference
            over = f" over {reference}" if reference else ""
            yield ("Legend: " + "; ".join(legend) + f". Speed metrics show their speed-up{over}, the run's first "
                   "device, at the same parameters.")

    def _matrix_cell(self, per_column: Mapping[Column, tuple[TestRecord, Verdict]], column: Column) -> str:
        found = per_column.get(column)
        if found is None:
            return ""
        record, verdict = found
        text = format_value(verdict.metric.value, verdict.metric.unit)
        if verdict.metric.kind_info.speed:
            text += speedup_text(self.facts.speedups.over(record.device.spec,
                                                          SpeedKey(record.suite, record.test, verdict.metric.name)))
        symbol = MARKS[mark_key(verdict)].symbol
        return _cell(f"{text} {symbol}" if symbol else text)

    def _display(self, path: Path) -> str:
        return display_path(path, self.session.options.invocation_dir)

    def _update_command(self, record: TestRecord) -> str:
        test_file = self.rootdir / record.nodeid.partition("::")[0]
        return rerun_command(self.session.options, test_file, record.nodeid, record.device.spec, OPT_UPDATE)


def append_step_summary(path: Path, summary: MarkdownSummary) -> str | None:
    """Append the summary to ``path`` (other steps write there too); the reason it could not, or None."""
    text = "\n".join(summary.lines())
    if not text:
        return None
    try:
        with path.open("a", encoding="utf-8") as file:
            file.write(text + "\n\n")
    except OSError as error:
        return f"{type(error).__name__}: {error.strerror or error}"
    return None


def post_to_step_summary(text: str, command: str) -> None:
    """A console command's Markdown appended to the CI step summary, where there is one; a line on stderr naming
    ``command`` where it cannot be written."""
    summary = step_summary_path()
    if summary is None:
        return
    try:
        with summary.open("a", encoding="utf-8") as file:
            file.write(text + "\n")
    except OSError as error:
        print(f"{command}: cannot append to the step summary {summary}: {error}", file=sys.stderr)


def step_summary_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    value = environ.get(STEP_SUMMARY_ENV, "").strip()
    return Path(value).expanduser() if value else None
