"""The ``--accel-report`` document's format: its schema, one test's entry, and the one reader of saved reports.

Every reader of a saved report (``pytest-accel report`` and ``compare``, the fresh-process confirmation of a
regression, the gate self-check) goes through :func:`load_report`, which refuses what is not a report of this
schema version in one line, and :func:`read_metrics`, which gives every metric entry back as a
:class:`~pytest_accel.metrics.Metric` and says which entries are not one (a broken run's value is null).
The whole run's document is built by :mod:`pytest_accel.report.json_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from pytest_accel.jsonfile import JsonFileError, read_json_file
from pytest_accel.metrics import Metric
from pytest_accel.records import RecordError, metric_from_dict, report_entry
from pytest_accel.report.safe_text import printable_text

if TYPE_CHECKING:
    from pytest_accel.session import TestRecord

REPORT_SCHEMA = "pytest-accel/report"
REPORT_SCHEMA_VERSION = 1
EXPECTED = "a pytest-accel JSON report (written by pytest --accel-report=PATH)"


def result_entry(record: TestRecord) -> dict[str, Any]:
    """One test on one device as the report holds it: where it ran, its baseline file and every metric. The names
    :func:`check_report` requires on one line are written with their unprintable characters escaped (a test may name
    a metric ``toy.\\x1b[31m``: the run reports it, and the report stays readable)."""
    return {
        "nodeid": printable_text(record.nodeid),
        "device": printable_text(record.device.spec),
        "device_key": record.device.key,
        "suite": printable_text(record.suite),
        "test": printable_text(record.test),
        # the test apart from its device: the function and its other parameters (the dtype, where it has one)
        "function": record.function,
        "params": record.params,
        "baseline_file": str(record.baseline_path),
        "metrics": [_printable_name(report_entry(verdict)) for verdict in record.verdicts],
    }


def _printable_name(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "name": printable_text(entry["name"])}


class ReportError(Exception):
    """A report that cannot be read; the message is one line naming the file and what was expected."""


def load_report(path: Path) -> dict[str, Any]:
    """The report in ``path``, checked (:func:`check_report`); :class:`ReportError` in one line naming the file
    otherwise. Bounded as :mod:`pytest_accel.jsonfile` bounds it: size, nesting and finite numbers only (a report
    is written with a broken run's NaN as null, so a non-finite number was never written by pytest-accel)."""
    try:
        document = read_json_file(path)
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file; expected {EXPECTED}") from None
    except JsonFileError as error:
        raise ReportError(f"{error}; expected {EXPECTED}") from None
    check_report(document, str(path))
    return document


def _shown(value: Any) -> str:
    """A value as a message shows it: its repr, cut short (a hostile file's value can be megabytes)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def check_report(document: Any, source: str) -> None:
    """Raise :class:`ReportError` unless ``document`` has the report schema's shape (what every reader indexes
    without a check: each result's device, suite and test, and each metric entry's name), their text on one line."""
    if not isinstance(document, dict) or document.get("schema") != REPORT_SCHEMA:
        found = _shown(document.get("schema")) if isinstance(document, dict) else repr(type(document).__name__)
        raise ReportError(f"{source}: not a pytest-accel report (schema {found}, expected {REPORT_SCHEMA!r}); "
                          f"expected {EXPECTED}")
    version = document.get("schema_version")
    if version != REPORT_SCHEMA_VERSION or isinstance(version, bool):
        raise ReportError(f"{source}: report schema version {_shown(version)}; this pytest-accel reads version "
                          f"{REPORT_SCHEMA_VERSION}")
    results = document.get("results")
    if not isinstance(results, list):
        raise ReportError(f"{source}: malformed report: 'results' is not a list")
    for index, result in enumerate(results):
        if not isinstance(result, dict) or not isinstance(result.get("metrics"), list) \
                or not all(isinstance(m, dict) and isinstance(m.get("name"), str) for m in result["metrics"]):
            raise ReportError(f"{source}: malformed report: results[{index}] is not a test with a list of named "
                              "metrics")
        for key in ("device", "suite", "test"):
            if not isinstance(result.get(key), str):
                raise ReportError(f"{source}: malformed report: results[{index}] has no {key!r}")
        if not isinstance(result.get("nodeid", ""), str):
            raise ReportError(f"{source}: malformed report: results[{index}] has a 'nodeid' that is not a string")
        # every reader prints these as table cells and message parts, one per line
        named = [(f"results[{index}].{key}", result.get(key, "")) for key in ("device", "suite", "test", "nodeid")]
        named += [(f"results[{index}].metrics[{i}].name", m["name"]) for i, m in enumerate(result["metrics"])]
        for field, text in named:
            if not text.isprintable():
                raise ReportError(f"{source}: malformed report: {field} is {_shown(text)}, with a line break or "
                                  "another control character")


@dataclass(frozen=True)
class ReportedMetric:
    """One metric entry of a saved report, read back: the test entry it belongs to, the entry as stored, and the
    metric it describes."""

    result: Mapping[str, Any]
    entry: Mapping[str, Any]
    metric: Metric


def read_metrics(document: Mapping[str, Any]) -> tuple[list[ReportedMetric], list[str]]:
    """Every metric entry of a checked report (:func:`check_report`) as a metric, and a line for each entry that
    is not one (``cpu matmul::test_latency matmul.latency: metric 'matmul.latency' has value None, not a
    number``)."""
    read: list[ReportedMetric] = []
    unreadable: list[str] = []
    for result in document["results"]:
        for entry in result["metrics"]:
            try:
                read.append(ReportedMetric(result, entry, metric_from_dict(entry["name"], entry)))
            except RecordError as error:
                unreadable.append(f"{result['device']} {result['suite']}::{result['test']} {entry['name']}: {error}")
    return read, unreadable


def as_mapping(value: Any) -> Mapping[str, Any]:
    """A report's value where a table is expected, or an empty one (reports are read, not trusted)."""
    return value if isinstance(value, dict) else {}


def as_number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def metric_entries(report: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """Every (result, metric) of a report, in order."""
    for result in report.get("results", []):
        for metric in result["metrics"]:
            yield result, metric
