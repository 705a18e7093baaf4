"""Where a :class:`~pytest_accel.metrics.Metric` and a :class:`~pytest_accel.verdicts.Verdict` become dicts, and
come back: the one place for every form they take outside the process.

- a **baseline record** (:func:`baseline_record`): what a baseline file stores per metric;
- a **report entry** (:func:`report_entry`): what the ``--accel-report`` document holds per metric, read back by
  :func:`metric_from_dict` (the fresh-process confirmation, the gate self-check, ``pytest-accel compare``);
- the **transfer form** (:func:`verdict_to_dict` / :func:`verdict_from_dict`): every field, for pytest-xdist's
  workers;
and a speed metric's run summary (:func:`pytest_accel.history.run_summary`) is the same one in all of them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from pytest_accel.environment import utc_now
from pytest_accel.history import MAX_HISTORY, run_summary
from pytest_accel.metrics import Metric
from pytest_accel.verdicts import Verdict

#: Stored timing samples are thinned to this many evenly spaced order statistics; enough for the rank test.
MAX_STORED_SAMPLES = 2000
#: the fields a report entry or baseline record may carry that a Metric takes as they are
_METRIC_FIELDS = ("limit", "samples", "probe_samples", "summary", "expected", "expected_source", "limit_reason",
                  "p_faster", "sections")


class RecordError(ValueError):
    """A dict that does not describe a metric: names the field and what was expected."""


def thin_samples(samples: list[float]) -> list[float]:
    ordered = sorted(samples)
    if len(ordered) <= MAX_STORED_SAMPLES:
        return [float(f"{s:.6g}") for s in ordered]
    step = (len(ordered) - 1) / (MAX_STORED_SAMPLES - 1)
    return [float(f"{ordered[round(i * step)]:.6g}") for i in range(MAX_STORED_SAMPLES)]


def _measurement(metric: Metric) -> dict[str, Any]:
    """What both stored forms keep of a measurement beyond its value: its summary and its thinned samples."""
    kept: dict[str, Any] = {}
    if metric.summary:
        kept["summary"] = metric.summary
    if metric.samples:
        kept["samples"] = thin_samples(metric.samples)
    if metric.probe_samples:
        kept["probe_samples"] = thin_samples(metric.probe_samples)
    return kept


def baseline_record(
    metric: Metric, tolerance: float | None, history: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The stored form of ``metric``. Speed metrics carry ``history``: earlier runs' summaries plus this one's."""
    record: dict[str, Any] = {
        "value": metric.value,
        "unit": metric.unit,
        "kind": metric.kind,
        "direction": metric.direction,
        "tolerance": tolerance,
    }
    if metric.limit is not None:
        record["limit"] = metric.limit
    record |= _measurement(metric)
    if metric.kind_info.speed:
        record["history"] = [*(history or []), run_summary(metric)][-MAX_HISTORY:]
    record["recorded_at"] = utc_now()
    return record


def report_entry(verdict: Verdict) -> dict[str, Any]:
    """One metric as the JSON report holds it: the measurement, what it was held to and the verdict."""
    metric = verdict.metric
    entry: dict[str, Any] = {
        "name": metric.name,
        "kind": metric.kind,
        "value": metric.value,
        "unit": metric.unit,
        "direction": metric.direction,
        "baseline": verdict.baseline_value,
        "delta": verdict.delta,
        "tolerance": verdict.tolerance,
        "tolerance_source": verdict.tolerance_source,
        "verdict": verdict.status,
        "gated": verdict.gated,
        "detail": verdict.detail,
    }
    if metric.limit is not None:
        entry["limit"] = metric.limit
    if metric.p_faster is not None:
        entry["p_faster"] = metric.p_faster
    if verdict.effective_tolerance is not None:
        entry["effective_tolerance"] = verdict.effective_tolerance
    entry |= _measurement(metric)
    if metric.kind_info.speed:
        entry["run"] = run_summary(metric)
    if verdict.remeasured_value is not None:
        entry["remeasured_value"] = verdict.remeasured_value
    return entry


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_from_dict(name: str, data: Mapping[str, Any]) -> Metric:
    """The metric a baseline record, a report entry or the transfer form describes. :class:`RecordError` names
    what is missing or malformed (a report's broken run has ``value`` null: not a metric that can be judged)."""
    for key in ("value", "unit", "kind", "direction"):
        if key not in data:
            raise RecordError(f"metric {name!r} lacks {key!r}")
    if not _number(data["value"]):
        raise RecordError(f"metric {name!r} has value {data['value']!r}, not a number")
    for key in ("samples", "probe_samples"):
        values = data.get(key)
        if values is not None and not (isinstance(values, list) and all(_number(v) for v in values)):
            raise RecordError(f"metric {name!r} has malformed {key!r} (expected a list of numbers)")
    extra = {key: data[key] for key in _METRIC_FIELDS if data.get(key) is not None}
    if "sections" in extra:
        extra["sections"] = tuple(extra["sections"])
    try:
        return Metric(name, data["value"], str(data["unit"]), str(data["kind"]), data["direction"], **extra)
    except (TypeError, ValueError) as error:
        raise RecordError(str(error)) from None


def metric_to_dict(metric: Metric) -> dict[str, Any]:
    """Every field of ``metric`` (the transfer form): :func:`metric_from_dict` gives the same metric back."""
    data = {f.name: getattr(metric, f.name) for f in dataclasses.fields(metric) if f.init}
    data["sections"] = list(metric.sections)
    return data


def verdict_to_dict(verdict: Verdict) -> dict[str, Any]:
    """Every field of ``verdict``, its metric in the transfer form."""
    fields = {f.name: getattr(verdict, f.name) for f in dataclasses.fields(verdict) if f.name != "metric"}
    return {"metric": metric_to_dict(verdict.metric), **fields}


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict:
    fields = dict(data)
    raw = fields.pop("metric")
    return Verdict(metric=metric_from_dict(raw["name"], raw), **fields)
