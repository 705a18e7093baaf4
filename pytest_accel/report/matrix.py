"""What the terminal and Markdown summaries share: the verdict marks, the per-device matrix (a row per metric, a
column per device and test parameters) and the order and wording of what they list."""

from __future__ import annotations

import shlex
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping

from pytest_accel.options import OPT_MISSING
from pytest_accel.session import TestRecord
from pytest_accel.verdicts import Verdict, limit_means_nothing

Markup = Mapping[str, bool]
PLAIN: Markup = {}
RED_BOLD: Markup = {"red": True, "bold": True}
RED: Markup = {"red": True}
YELLOW: Markup = {"yellow": True}
YELLOW_BOLD: Markup = {"yellow": True, "bold": True}
GREEN: Markup = {"green": True}
CYAN: Markup = {"cyan": True}


@dataclass(frozen=True)
class Mark:
    symbol: str
    #: for an output whose encoding cannot write ``symbol``
    ascii: str
    meaning: str
    markup: Markup = field(default_factory=dict)


#: verdict marks, in the legend's order; "info" has none (a value alone is reported, not judged)
MARKS: dict[str, Mark] = {
    "pass": Mark("✓", "ok", "pass", GREEN),
    "noise": Mark("~", "~", "pass: beyond the tolerance, but by what noise explains", GREEN),
    "regression": Mark("✗", "X", "regression (fails the test)", RED_BOLD),
    "ungated": Mark("!", "!", "regression outside the gate (reported, not failed)", RED),
    "inconclusive": Mark("?", "?", "inconclusive (disturbed machine; re-run)", YELLOW),
    "better": Mark("+", "+", "better than its baseline beyond the tolerance (check it, then update)", YELLOW),
    "missing": Mark("·", ".", "no baseline (not checked)", PLAIN),
    "written": Mark("*", "*", "written to its baseline", CYAN),
    "info": Mark("", "", "reported only", PLAIN),
}
#: the marks of the verdicts listed one by one under the matrix, in the order they are listed
LISTED_MARKS = ("regression", "ungated", "inconclusive", "better", "noise")


def mark_key(verdict: Verdict) -> str:
    status = verdict.status
    if status == "regression":
        return "regression" if verdict.gated else "ungated"
    if status in ("faster", "improved"):
        return "better"
    if status in ("recorded", "updated"):
        return "written"
    return status


def marks_encodable(encoding: str | None) -> bool:
    """Whether an output in ``encoding`` can write the Unicode marks (else their ASCII forms are used)."""
    text = "".join(mark.symbol for mark in MARKS.values())
    try:
        text.encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def delta_text(verdict: Verdict) -> str:
    if verdict.delta is None or verdict.metric.basis == "bound":  # a bound is not a change from a baseline
        return "-"
    text = f"{verdict.delta * 100:+.1f}%"
    limit = verdict.effective_tolerance  # judged on its history: the limit this runner can hold
    if limit is None or verdict.status == "inconclusive":  # a disturbed run: no limit applied
        return text
    if limit_means_nothing(limit, verdict.tolerance):
        return text + " (no useful limit)"
    return text + f" (limit {limit * 100:+.0f}%)"


def speedup_text(factor: float | None) -> str:
    return f" ({factor:.2f}x)" if factor is not None else ""


TestHeadingKey = tuple[tuple[str, ...], str]


def _test_key(record: TestRecord) -> TestHeadingKey:
    """The test apart from its device and parameters (those make the matrix's columns): where its file lies
    (see :func:`pytest_accel.identity.test_location`) and its function, with its variant."""
    function = record.function or record.test
    return record.location, f"{function}@{record.variant}" if record.variant else function


def _test_headings(records: list[TestRecord]) -> dict[TestHeadingKey, str]:
    """``suite::function`` for each test; where test files of one name in different folders would share a
    heading, their folders as well."""
    suites = {_test_key(record): record.suite for record in records}
    short = {key: f"{suite}::{key[1]}" for key, suite in suites.items()}
    shared = {heading for heading in short.values() if list(short.values()).count(heading) > 1}
    return {key: f"{'/'.join(key[0])}::{key[1]}" if heading in shared else heading for key, heading in short.items()}


def column_label(column: tuple[str, str]) -> str:
    spec, params = column
    return f"{spec} {params}" if params else spec


def _short_metric_name(suite: str, name: str) -> str:
    """Under its test's heading a metric named after the suite (``detection.map50``) needs no suite again."""
    return name[len(suite) + 1:] if name.startswith(f"{suite}.") and len(name) > len(suite) + 1 else name


Column = tuple[str, str]
#: per test heading, per metric (short name), the test's record and the verdict in each column
MatrixRows = OrderedDict[str, OrderedDict[str, dict[Column, tuple[TestRecord, Verdict]]]]


def build_matrix(records: list[TestRecord], device_specs: tuple[str, ...] | list[str]
                 ) -> tuple[list[Column], MatrixRows]:
    """The compact summary's matrix: columns (device spec, parameters) in the order the devices were asked for
    (xdist workers finish in any order), then as they came; rows by test heading and metric."""
    device_order = {spec: index for index, spec in enumerate(device_specs)}
    columns: list[Column] = []
    headings = _test_headings(records)
    rows: MatrixRows = OrderedDict()
    for record in records:
        device_order.setdefault(record.device.spec, len(device_order))
        column = (record.device.spec, record.params)
        if column not in columns:
            columns.append(column)
        metrics = rows.setdefault(headings[_test_key(record)], OrderedDict())
        for verdict in record.verdicts:
            metrics.setdefault(_short_metric_name(record.suite, verdict.metric.name), {})[column] = record, verdict
    columns.sort(key=lambda column: device_order[column[0]])  # stable: each device's parameters in run order
    return columns, rows


def merge_unparametrised_columns(columns: list[Column], rows: MatrixRows) -> tuple[list[Column], bool]:
    """Narrower: a device's column of tests without parameters (``cpu``, the matmul suite's) folded into the
    device's first column with parameters (``cpu fp32``) where no row has a value in both; ``rows`` are changed in
    place. Returns the columns left and whether any was folded."""
    folded = False
    for spec, params in list(columns):
        if params:
            continue
        target = next((c for c in columns if c[0] == spec and c[1]), None)
        if target is None or any((spec, "") in cells and target in cells
                                 for metrics in rows.values() for cells in metrics.values()):
            continue
        for metrics in rows.values():
            for cells in metrics.values():
                if (spec, "") in cells:
                    cells[target] = cells.pop((spec, ""))
        columns.remove((spec, ""))
        folded = True
    return columns, folded


def not_passing(records: list[TestRecord]) -> list[tuple[TestRecord, Verdict]]:
    """Every judged verdict that is not a pass (:data:`LISTED_MARKS`), regressions first, failing ones first."""
    return sorted(
        ((record, verdict) for record in records for verdict in record.verdicts if mark_key(verdict) in LISTED_MARKS),
        key=lambda pair: (LISTED_MARKS.index(mark_key(pair[1])), not pair[1].fails_test),
    )


def record_missing_command(invocation_args: tuple[str, ...] | list[str]) -> str:
    """The run's own command with ``--accel-missing-baseline=record`` in place of any value it gave."""
    args = [a for a in invocation_args if not a.startswith(OPT_MISSING)]
    return shlex.join(["pytest", *args, f"{OPT_MISSING}=record"])
