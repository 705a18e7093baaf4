"""The terminal summary, in the form ``--accel-summary`` picks.

``compact`` (the default) is what a person reads after a run: one matrix, a row per metric (grouped under its
test) and a column per device and test parameters (``cpu fp32``, ``cpu bf16``, ``ort:cpu fp32``), each cell the
value with a verdict mark, a legend of the marks used; then every verdict that is not a pass, regressions first,
with its reason; then what needs attention (no baseline, unused or written baseline files, warnings), each said
once. ``full`` (the default under ``-v``) is the whole record: a table per device with baselines and deltas, the
devices side by side with speed-ups over the first, and every list in full.

``none`` prints only the ``!!`` warnings, which say that a gate checked less than it seems to (gated metrics
without a baseline, inconclusive speed checks, a tolerance naming no metric), and the JSON report's path. A gated
regression fails its test, so pytest's own failure report shows it with obtained / expected / diff / tolerance
whatever this form; regressions outside the gate are reported only, here and in the JSON report, so ``none`` is
for runs whose JSON report (or a gate on every kind) is what is read.

The summary is computed here as :class:`Line` objects (text pieces with pytest's colour markup); the plugin's hook
only prints them. pytest drops the markup itself under ``--color=no`` and where the output is no terminal.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Iterator, Sequence

from pytest_accel.metrics import KINDS, format_measured, format_value
from pytest_accel.options import (
    OPT_MISSING,
    OPT_PRUNE,
    OPT_RECORD_RUN,
    OPT_SUMMARY,
    OPT_TOLERANCE,
    OPT_UPDATE,
)
from pytest_accel.paths import display_path
from pytest_accel.report.facts import RunFacts, SpeedKey
from pytest_accel.report.lines import MAX_LINE_WIDTH, Line, aligned_table, wrapped
from pytest_accel.report.matrix import (
    CYAN,
    MARKS,
    PLAIN,
    RED,
    RED_BOLD,
    YELLOW,
    YELLOW_BOLD,
    Markup,
    build_matrix,
    column_label,
    delta_text,
    mark_key,
    merge_unparametrised_columns,
    not_passing,
    record_missing_command,
    speedup_text,
)
from pytest_accel.session import KEPT_OTHER_PARAMETERS, AccelSession, TestRecord
from pytest_accel.verdicts import Verdict

MAX_LISTED = 12
#: the legend's lines wrap at this width when the terminal's is not known
DEFAULT_WIDTH = 100



def _cell_width(cell: tuple[str, str, Markup]) -> int:
    value, symbol, _ = cell
    return len(value) + (len(symbol) + 1 if symbol else 0)


def _row_markup(verdict: Verdict) -> Markup:
    if verdict.fails_test:
        return RED_BOLD
    if verdict.regressed:
        return RED
    if verdict.status in ("inconclusive", "faster", "improved"):
        return YELLOW
    return PLAIN


def _listed_kind(verdict: Verdict) -> str:
    """How the line over the list of verdicts that are not a pass counts this one."""
    if verdict.regressed:
        return "regression(s) that fail their test" if verdict.gated else \
            "regression(s) outside the gate (reported, not failed)"
    return {"faster": "suspiciously faster", "improved": "improved beyond the tolerance",
            "noise": "pass(es) within the noise"}.get(verdict.status, verdict.status)


class TerminalSummary:
    """The summary of a run in one form (``form``, else the run's ``--accel-summary``). ``facts``: what every report
    of the run shares; ``unicode``: whether the output can write the Unicode marks; ``width``: the terminal's, at
    which the legend wraps."""

    def __init__(self, session: AccelSession, facts: RunFacts, form: str | None = None, *, unicode: bool = True,
                 width: int = DEFAULT_WIDTH) -> None:
        self.session = session
        self.facts = facts
        self.form = form or session.options.summary
        self.unicode = unicode
        self.width = max(width, 40)

    def lines(self) -> Iterator[Line]:
        records = [r for r in self.session.records if r.verdicts]
        if self.form == "none":
            yield from wrapped(self._warnings(records))
            return
        if not records and not self.session.written:
            return
        if self.form == "full":
            by_device: OrderedDict[str, list[TestRecord]] = OrderedDict()
            for record in records:
                by_device.setdefault(record.device.spec, []).append(record)
            for device_records in by_device.values():
                yield from self._device_table(device_records)
            if len(by_device) > 1:
                yield from self._side_by_side(by_device)
        elif records:
            yield from self._matrix(records)
            yield from wrapped(self._not_passing(records))
        yield from wrapped(self._attention(records))

    # -- compact ----------------------------------------------------------------------------------------------

    def _symbol(self, key: str) -> str:
        mark = MARKS[key]
        return mark.symbol if self.unicode else mark.ascii

    def _cell(self, verdict: Verdict) -> tuple[str, str, Markup]:
        """(value, mark, the mark's markup)."""
        key = mark_key(verdict)
        return format_value(verdict.metric.value, verdict.metric.unit), self._symbol(key), MARKS[key].markup

    def _matrix(self, records: list[TestRecord]) -> Iterator[Line]:
        """One screen: reported-only metrics are left to the full form, and a device's tests without parameters
        share a column with its first parameters where their rows do not meet."""
        columns, rows = build_matrix(records, self.session.options.device_specs)
        reported_only = 0
        for metrics in rows.values():
            for name in [n for n, per_column in metrics.items()
                         if all(mark_key(verdict) == "info" for _, verdict in per_column.values())]:
                del metrics[name]
                reported_only += 1
        for label in [label for label, metrics in rows.items() if not metrics]:
            del rows[label]
        columns, folded = merge_unparametrised_columns(columns, rows)
        columns = [c for c in columns if any(c in cells for metrics in rows.values() for cells in metrics.values())]
        cells = {(label, name): {column: self._cell(verdict) for column, (_, verdict) in per_column.items()}
                 for label, metrics in rows.items() for name, per_column in metrics.items()}
        if not cells:  # nothing but reported-only metrics: no matrix to draw
            yield Line.of(f"  {reported_only} reported-only metric(s): {OPT_SUMMARY}=full")
            return
        label_width = max(len("metric"), *(len(name) + 2 for _, name in cells))
        widths = [
            max([len(column_label(column))]
                + [_cell_width(per_column[column]) for per_column in cells.values() if column in per_column])
            for column in columns
        ]
        yield Line.of("  " + "metric".ljust(label_width) + "".join(
            "  " + column_label(column).ljust(width) for column, width in zip(columns, widths, strict=True)).rstrip(),
            {"bold": True})
        for label, metrics in rows.items():
            yield Line.of(f"  {label}")
            for name in metrics:
                parts: list[tuple[str, Markup]] = [(f"    {name}".ljust(label_width + 2), PLAIN)]
                padding = ""  # written only when another cell follows: no trailing blanks
                for column, width in zip(columns, widths, strict=True):
                    cell = cells[label, name].get(column)
                    if cell is None:
                        padding += "  " + " " * width
                        continue
                    value, symbol, markup = cell
                    parts.append((f"{padding}  {value}", PLAIN))
                    if symbol:
                        parts += [(" ", PLAIN), (symbol, markup)]
                    padding = " " * (width - _cell_width(cell))
                yield Line(tuple(parts))
        used = {mark_key(verdict) for metrics in rows.values() for per_column in metrics.values()
                for _, verdict in per_column.values()}
        gaps = any(len(per_column) < len(columns) for per_column in cells.values())
        matrix_width = 2 + label_width + sum(2 + width for width in widths)
        yield from self._legend(used, gaps, reported_only, folded, min(max(self.width, matrix_width), MAX_LINE_WIDTH))
        yield Line.of("")

    def _legend(self, used: set[str], gaps: bool, reported_only: int, folded: bool, width: int) -> Iterator[Line]:
        """The marks used, wrapped at ``width`` (the matrix's, on a terminal narrower than it)."""
        entries: list[list[tuple[str, Markup]]] = []
        for key, mark in MARKS.items():
            if key not in used:
                continue
            symbol = self._symbol(key)
            if symbol:
                entries.append([(symbol, mark.markup), (f" {mark.meaning}", PLAIN)])
            else:
                entries.append([(f"a value alone: {mark.meaning}", PLAIN)])
        if gaps:
            entries.append([("empty: not run there", PLAIN)])
        if folded:
            entries.append([("a test without parameters: under its device's first column", PLAIN)])
        if reported_only:
            entries.append([(f"{reported_only} reported-only metric(s) more: {OPT_SUMMARY}=full", PLAIN)])
        prefix = "  legend: "
        parts: list[tuple[str, Markup]] = [(prefix, PLAIN)]
        length = len(prefix)
        for entry in entries:
            entry_length = sum(len(text) for text, _ in entry)
            if length > len(prefix) and length + 3 + entry_length > width:
                yield Line(tuple(parts))
                parts, length = [(" " * len(prefix), PLAIN)], len(prefix)
            elif length > len(prefix):
                parts.append(("   ", PLAIN))
                length += 3
            parts.extend(entry)
            length += entry_length
        yield Line(tuple(parts))

    def _not_passing(self, records: list[TestRecord]) -> Iterator[Line]:
        """Every judged verdict that is not a pass, regressions first. Metrics without a baseline and written
        ones are left to the attention section, which groups them by file."""
        listed = not_passing(records)
        if not listed:
            return
        counts: OrderedDict[str, int] = OrderedDict()
        for _, verdict in listed:
            kind = _listed_kind(verdict)
            counts[kind] = counts.get(kind, 0) + 1
        yield Line.of(f"{len(listed)} verdict(s) not a plain pass: "
                      + ", ".join(f"{count} {kind}" for kind, count in counts.items()), {"bold": True})
        for record, verdict in listed[:MAX_LISTED]:
            metric = verdict.metric
            key = mark_key(verdict)
            against = {"bound": "bound", "reference": "reference"}.get(metric.basis, "baseline")
            text = (f"{record.device.spec} {record.suite}::{record.test} {metric.name} "
                    f"{format_measured(metric)}, {against} {verdict.expected_text}")
            delta = delta_text(verdict)
            if delta != "-":
                text += f", {delta}"
            yield Line(((f"  {self._symbol(key)} ", MARKS[key].markup),
                        (f"{text}: {verdict.detail}", _row_markup(verdict))))
        if len(listed) > MAX_LISTED:
            yield Line.of(f"  ... and {len(listed) - MAX_LISTED} more ({OPT_SUMMARY}=full lists every one)")

    # -- full -------------------------------------------------------------------------------------------------

    def _device_table(self, records: list[TestRecord]) -> Iterator[Line]:
        device = records[0].device
        yield Line.of(f"{device.spec} -> {device.key}  ({device.info.describe()})")
        rows = [["test", "metric", "value", "baseline", "delta", "verdict"]]
        markups = [PLAIN]
        for record in records:
            for verdict in record.verdicts:
                metric = verdict.metric
                rows.append(
                    [f"{record.suite}::{record.test}", metric.name, format_measured(metric),
                     verdict.expected_text, delta_text(verdict), verdict.label]
                )
                markups.append(_row_markup(verdict))
        for text, markup in zip(aligned_table(rows), markups, strict=True):
            yield Line.of(text, markup)
        yield Line.of("")

    def _side_by_side(self, by_device: OrderedDict[str, list[TestRecord]]) -> Iterator[Line]:
        specs = list(by_device)
        cells: OrderedDict[tuple[str, str, str], dict[str, Verdict]] = OrderedDict()
        for spec, records in by_device.items():
            for record in records:
                for verdict in record.verdicts:
                    cells.setdefault((record.suite, record.test, verdict.metric.name), {})[spec] = verdict
        speed = [kind.title for kind in KINDS.values() if kind.speed]
        speedups = self.facts.speedups
        yield Line.of(f"side by side (speed-up over {speedups.reference or specs[0]} for {', '.join(speed[:-1])} and "
                      f"{speed[-1]})")
        rows = [["test", "metric", *specs]]
        for (suite, test, name), per_device in cells.items():
            row = [f"{suite}::{test}", name]
            for spec in specs:
                cell = per_device.get(spec)
                if cell is None:
                    row.append("-")
                    continue
                text = format_value(cell.metric.value, cell.metric.unit)
                if cell.metric.kind_info.speed:
                    text += speedup_text(speedups.over(spec, SpeedKey(suite, test, name)))
                row.append(text)
            rows.append(row)
        yield from (Line.of(text) for text in aligned_table(rows))
        yield Line.of("")

    # -- what needs attention (both forms; ``none`` keeps only the warnings) -------------------------------------

    def _warnings(self, records: list[TestRecord]) -> Iterator[Line]:
        """The ``!!`` lines alone, each complete without the lists that follow them in the other forms."""
        missing = [(r, v) for r in records for v in r.verdicts if v.status == "missing"]
        unguarded = self._unguarded_warning(missing)
        if unguarded is not None:
            yield unguarded
        inconclusive = [(r, v) for r in records for v in r.verdicts if v.status == "inconclusive"]
        if inconclusive:
            yield self._inconclusive_warning(len(inconclusive), f" ({OPT_SUMMARY}=compact lists them)")
        unmatched = self._unmatched_tolerance_warning(records)
        if unmatched is not None:
            yield unmatched

    def _unguarded_warning(self, missing: list[tuple[TestRecord, Verdict]]) -> Line | None:
        gated: OrderedDict[str, int] = OrderedDict()
        for record, verdict in missing:
            if verdict.gated:
                gated[record.device.key] = gated.get(record.device.key, 0) + 1
        if not gated:
            return None
        keys = ", ".join(f"{key} ({count})" for key, count in gated.items())
        return Line.of(f"!! {sum(gated.values())} gated metric(s) had no baseline, so nothing gated them, on device "
                       f"key(s) {keys}: a new device key (CPU model, core count, GPU) starts without baselines; CI "
                       f"should use {OPT_MISSING}=fail once they are recorded", YELLOW_BOLD)

    def _inconclusive_warning(self, count: int, listed: str) -> Line:
        failing = self.session.options.fail_inconclusive
        return Line.of(f"!! {count} speed check(s) INCONCLUSIVE: the machine was disturbed during them, so they were "
                       f"{'failed (--accel-fail-inconclusive)' if failing else 'neither passed nor failed'}; re-run "
                       f"on a quiet machine{listed}", RED_BOLD if failing else YELLOW_BOLD)

    def _unmatched_tolerance_warning(self, records: list[TestRecord]) -> Line | None:
        produced = {v.metric.name for r in records for v in r.verdicts}
        unmatched = sorted(k for k in self.session.options.cli_tolerances if "." in k and k not in produced)
        if not (unmatched and produced):
            return None
        return Line.of(f"!! {OPT_TOLERANCE} names metric(s) this run did not produce, so it set nothing: "
                       f"{', '.join(unmatched)} (a misspelling? the run's metrics are listed in the "
                       f"{'tables' if self.form == 'full' else 'matrix'} above)", YELLOW_BOLD)

    def _attention(self, records: list[TestRecord]) -> Iterator[Line]:
        full = self.form == "full"
        options = self.session.options
        missing = [(r, v) for r in records for v in r.verdicts if v.status == "missing"]
        if missing:
            unguarded = self._unguarded_warning(missing)
            if unguarded is not None:
                yield unguarded
            by_file: OrderedDict[Path, list[str]] = OrderedDict()
            for record, verdict in missing:
                by_file.setdefault(record.baseline_path, []).append(verdict.metric.name)
            not_checked = f"{OPT_MISSING}={options.missing_baseline}: not checked"
            if full:
                yield Line.of(f"{len(missing)} metric(s) had no baseline ({not_checked}):")
                for path, names in list(by_file.items())[:MAX_LISTED]:
                    yield Line.of(f"  {self._display(path)}: {', '.join(names)}")
                if len(by_file) > MAX_LISTED:
                    yield Line.of(f"  ... and {len(by_file) - MAX_LISTED} more files")
            else:
                yield Line.of(f"{len(missing)} metric(s) had no baseline ({not_checked}), marked "
                              f"{self._symbol('missing')} above; their {len(by_file)} file(s) are listed under "
                              f"{OPT_SUMMARY}=full")
            yield Line.of(f"  record them with: {record_missing_command(options.invocation_args)}")
        absent = [r for r in records if r.absent]
        if absent:
            yield Line.of(f"{sum(len(r.absent) for r in absent)} baseline metric(s) no longer produced by their tests:")
            for record in absent[:MAX_LISTED]:
                yield Line.of(f"  {self._display(record.baseline_path)}: {', '.join(record.absent)}")
        inconclusive = [(r, v) for r in records for v in r.verdicts if v.status == "inconclusive"]
        if inconclusive:
            yield self._inconclusive_warning(len(inconclusive), ":" if full else " (listed above)")
            if full:
                for record, verdict in inconclusive[:MAX_LISTED]:
                    yield Line.of(f"  {record.device.spec} {verdict.metric.name}: {verdict.detail}", YELLOW)
        if full:  # the compact form lists these one by one with the other verdicts that are not a pass
            yield from self._listed_by_status(
                [(r, v) for r in records for v in r.verdicts if v.regressed and not v.gated],
                "regression(s) in kinds outside the gate (reported, not failed):", RED)
            yield from self._listed_by_status(
                [(r, v) for r in records for v in r.verdicts if v.status == "faster"],
                "metric(s) suspiciously faster than their baseline:", YELLOW)
        unmatched = self._unmatched_tolerance_warning(records)
        if unmatched is not None:
            yield unmatched
        yield from self._unused()
        yield from self._written(full)

    def _unused(self) -> Iterator[Line]:
        """Baseline files no test used: those pruned, or those pruning would delete; and those it keeps, one line
        saying why for each reason (their files listed where this run collected their test files whole)."""
        unused = self.facts.unused_baselines
        if self.session.pruned:
            yield Line.of(f"{len(self.session.pruned)} unused baseline file(s) deleted ({OPT_PRUNE}):")
            yield from self._paths(self.session.pruned)
        elif unused.deletable:
            yield Line.of(f"{len(unused.deletable)} baseline file(s) beside this run's belong to no test it collected "
                          f"(removed or renamed tests); {OPT_PRUNE} deletes them:")
            yield from self._paths(unused.deletable)
        for reason, paths in unused.kept:
            yield Line.of(f"{len(paths)} baseline file(s) beside this run's were used by no test, kept: {reason}"
                          + ("" if reason == KEPT_OTHER_PARAMETERS else f" ({OPT_PRUNE} deletes none of them)"))
            if reason == KEPT_OTHER_PARAMETERS:
                yield from self._paths(paths)

    def _paths(self, paths: Sequence[Path]) -> Iterator[Line]:
        for path in paths[:MAX_LISTED]:
            yield Line.of(f"  {self._display(path)}")
        if len(paths) > MAX_LISTED:
            yield Line.of(f"  ... and {len(paths) - MAX_LISTED} more")

    def _listed_by_status(self, pairs: list[tuple[TestRecord, Verdict]], heading: str,
                          markup: Markup) -> Iterator[Line]:
        if not pairs:
            return
        yield Line.of(f"{len(pairs)} {heading}")
        for record, verdict in pairs[:MAX_LISTED]:
            yield Line.of(f"  {record.device.spec} {verdict.metric.name}: {verdict.detail}", markup)

    def _written(self, full: bool) -> Iterator[Line]:
        """Written baseline files with what changed in them. The compact form caps the files and leaves out the
        values of new files (the matrix shows them, marked as written)."""
        written = self.session.written
        if not written:
            return
        options = self.session.options
        why = OPT_UPDATE if options.update_baselines else OPT_RECORD_RUN if options.record_run else \
            f"{OPT_MISSING}=record"
        yield Line.of(f"{len(written)} baseline file(s) written ({why}):", CYAN)
        shown = written if full else written[:MAX_LISTED]
        for entry in shown:
            yield Line.of(f"  {entry.action} {self._display(entry.path)}")
            if full or entry.action != "created":
                for change in entry.changes[:MAX_LISTED]:
                    yield Line.of(f"    {change}")
        if len(written) > len(shown):
            yield Line.of(f"  ... and {len(written) - len(shown)} more ({OPT_SUMMARY}=full lists every one)")

    def _display(self, path: Path) -> str:
        return display_path(path, self.session.options.invocation_dir)

