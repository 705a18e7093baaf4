"""The terminal summary: a table per device, the devices side by side, and what needs attention."""

from __future__ import annotations

import shlex
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

from pytest_accel.metrics import KINDS, format_value
from pytest_accel.options import OPT_MISSING, OPT_PRUNE, OPT_RECORD_RUN, OPT_TOLERANCE, OPT_UPDATE
from pytest_accel.paths import display_path
from pytest_accel.session import AccelSession, TestRecord
from pytest_accel.verdicts import Verdict

MAX_LISTED = 12


def _table(rows: list[list[str]], indent: str = "  ") -> Iterator[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        yield indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


def _delta(verdict: Verdict) -> str:
    if verdict.delta is None or verdict.metric.basis == "bound":  # a bound is not a change from a baseline
        return "-"
    text = f"{verdict.delta * 100:+.1f}%"
    if verdict.effective_tolerance is not None:  # judged on its history: the limit this runner can hold
        text += f" (limit {verdict.effective_tolerance * 100:+.0f}%)"
    return text


def _speedup(first: Verdict, other: Verdict) -> str:
    a, b = first.metric.value, other.metric.value
    if a <= 0 or b <= 0:
        return ""
    factor = b / a if first.metric.direction == "higher" else a / b
    return f" ({factor:.2f}x)"


class TerminalSummary:
    def __init__(self, session: AccelSession) -> None:
        self.session = session

    def lines(self) -> Iterator[str]:
        records = [r for r in self.session.records if r.verdicts]
        if not records and not self.session.written:
            return
        by_device: OrderedDict[str, list[TestRecord]] = OrderedDict()
        for record in records:
            by_device.setdefault(record.device.spec, []).append(record)
        for device_records in by_device.values():
            yield from self._device_table(device_records)
        if len(by_device) > 1:
            yield from self._side_by_side(by_device)
        yield from self._attention(records)

    def _device_table(self, records: list[TestRecord]) -> Iterator[str]:
        device = records[0].device
        yield f"{device.spec} -> {device.key}  ({device.info.describe()})"
        rows = [["test", "metric", "value", "baseline", "delta", "verdict"]]
        for record in records:
            for verdict in record.verdicts:
                metric = verdict.metric
                rows.append(
                    [f"{record.suite}::{record.test}", metric.name, format_value(metric.value, metric.unit),
                     verdict.expected_text, _delta(verdict), verdict.label]
                )
        yield from _table(rows)
        yield ""

    def _side_by_side(self, by_device: OrderedDict[str, list[TestRecord]]) -> Iterator[str]:
        specs = list(by_device)
        cells: OrderedDict[tuple[str, str, str], dict[str, Verdict]] = OrderedDict()
        for spec, records in by_device.items():
            for record in records:
                for verdict in record.verdicts:
                    cells.setdefault((record.suite, record.test, verdict.metric.name), {})[spec] = verdict
        speed = [kind.title for kind in KINDS.values() if kind.speed]
        yield f"side by side (speed-up over {specs[0]} for {', '.join(speed[:-1])} and {speed[-1]})"
        rows = [["test", "metric", *specs]]
        for (suite, test, name), per_device in cells.items():
            first = per_device.get(specs[0])
            row = [f"{suite}::{test}", name]
            for spec in specs:
                cell = per_device.get(spec)
                if cell is None:
                    row.append("-")
                    continue
                text = format_value(cell.metric.value, cell.metric.unit)
                if first is not None and spec != specs[0] and cell.metric.kind_info.speed:
                    text += _speedup(first, cell)
                row.append(text)
            rows.append(row)
        yield from _table(rows)
        yield ""

    def _attention(self, records: list[TestRecord]) -> Iterator[str]:
        options = self.session.options
        missing = [(r, v) for r in records for v in r.verdicts if v.status == "missing"]
        if missing:
            gated: OrderedDict[str, int] = OrderedDict()
            for record, verdict in missing:
                if verdict.gated:
                    gated[record.device.key] = gated.get(record.device.key, 0) + 1
            if gated:
                keys = ", ".join(f"{key} ({count})" for key, count in gated.items())
                yield (f"!! {sum(gated.values())} gated metric(s) had no baseline, so nothing gated them, on device "
                       f"key(s) {keys}: a new device key (CPU model, core count, GPU) starts without baselines; CI "
                       f"should use {OPT_MISSING}=fail once they are recorded")
            yield f"{len(missing)} metric(s) had no baseline ({OPT_MISSING}={options.missing_baseline}: not checked):"
            by_file: OrderedDict[Path, list[str]] = OrderedDict()
            for record, verdict in missing:
                by_file.setdefault(record.baseline_path, []).append(verdict.metric.name)
            for path, names in list(by_file.items())[:MAX_LISTED]:
                yield f"  {self._display(path)}: {', '.join(names)}"
            if len(by_file) > MAX_LISTED:
                yield f"  ... and {len(by_file) - MAX_LISTED} more files"
            yield f"  record them with: {self._rerun_command(f'{OPT_MISSING}=record')}"
        absent = [r for r in records if r.absent]
        if absent:
            yield f"{sum(len(r.absent) for r in absent)} baseline metric(s) no longer produced by their tests:"
            for record in absent[:MAX_LISTED]:
                yield f"  {self._display(record.baseline_path)}: {', '.join(record.absent)}"
        inconclusive = [(r, v) for r in records for v in r.verdicts if v.status == "inconclusive"]
        if inconclusive:
            failing = options.fail_inconclusive
            yield (f"!! {len(inconclusive)} speed check(s) INCONCLUSIVE: the machine was disturbed during them, so "
                   f"they were {'failed (--accel-fail-inconclusive)' if failing else 'neither passed nor failed'}; "
                   "re-run on a quiet machine:")
            for record, verdict in inconclusive[:MAX_LISTED]:
                yield f"  {record.device.spec} {verdict.metric.name}: {verdict.detail}"
        ungated = [(r, v) for r in records for v in r.verdicts if v.regressed and not v.gated]
        if ungated:
            yield f"{len(ungated)} regression(s) in kinds outside the gate (reported, not failed):"
            for record, verdict in ungated[:MAX_LISTED]:
                yield f"  {record.device.spec} {verdict.metric.name}: {verdict.detail}"
        flagged = [(r, v) for r in records for v in r.verdicts if v.status == "faster"]
        if flagged:
            yield f"{len(flagged)} metric(s) suspiciously faster than their baseline:"
            for record, verdict in flagged[:MAX_LISTED]:
                yield f"  {record.device.spec} {verdict.metric.name}: {verdict.detail}"
        produced = {v.metric.name for r in records for v in r.verdicts}
        unmatched = sorted(k for k in options.cli_tolerances if "." in k and k not in produced)
        if unmatched and produced:
            yield (f"!! {OPT_TOLERANCE} names metric(s) this run did not produce, so it set nothing: "
                   f"{', '.join(unmatched)} (a misspelling? the run's metrics are listed in the tables above)")
        if self.session.pruned:
            yield f"{len(self.session.pruned)} unused baseline file(s) deleted ({OPT_PRUNE}):"
            for path in self.session.pruned[:MAX_LISTED]:
                yield f"  {self._display(path)}"
        else:
            unused = self.session.unused_baseline_files()
            if unused:
                yield (f"{len(unused)} baseline file(s) beside this run's were used by no test (removed or renamed "
                       f"tests, or variants and dtypes this run did not ask for); {OPT_PRUNE} deletes them:")
                for path in unused[:MAX_LISTED]:
                    yield f"  {self._display(path)}"
                if len(unused) > MAX_LISTED:
                    yield f"  ... and {len(unused) - MAX_LISTED} more"
        if self.session.written:
            why = OPT_UPDATE if options.update_baselines else OPT_RECORD_RUN if options.record_run else \
                f"{OPT_MISSING}=record"
            yield f"{len(self.session.written)} baseline file(s) written ({why}):"
            for written in self.session.written:
                yield f"  {written.action} {self._display(written.path)}"
                for change in written.changes[:MAX_LISTED]:
                    yield f"    {change}"

    def _display(self, path: Path) -> str:
        return display_path(path, self.session.options.invocation_dir)

    def _rerun_command(self, extra: str) -> str:
        args = [a for a in self.session.options.invocation_args if not a.startswith(OPT_MISSING)]
        return shlex.join(["pytest", *args, extra])
