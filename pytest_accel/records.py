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
import math
import re
from datetime import datetime
from typing import Any, Callable, Mapping

from pytest_accel.disturbance import MAX_SPREAD
from pytest_accel.environment import utc_now
from pytest_accel.history import MAX_HISTORY, run_summary
from pytest_accel.metrics import KINDS, Metric
from pytest_accel.stats import MIN_SPREAD_ROUNDS
from pytest_accel.verdicts import Verdict

#: Stored timing samples are thinned to this many evenly spaced order statistics; enough for the rank test.
MAX_STORED_SAMPLES = 2000
#: the fields a report entry or baseline record may carry that a Metric takes as they are
_METRIC_FIELDS = ("limit", "samples", "probe_samples", "summary", "expected", "expected_source", "limit_reason",
                  "p_faster", "sections")


class RecordError(ValueError):
    """A dict that does not describe a metric: names the field and what was expected."""


#: Every field a baseline record may hold (:func:`baseline_record` writes them; :func:`check_baseline_record`
#: checks each): a misspelt field would otherwise be ignored, and the check it meant never made.
BASELINE_RECORD_FIELDS = ("value", "unit", "kind", "direction", "tolerance", "limit", "summary", "samples",
                          "probe_samples", "history", "recorded_at")
#: Every field one run of a speed metric's history may hold (:func:`pytest_accel.history.run_summary`).
HISTORY_FIELDS = ("value", "probe", "spread", "n", "floor", "probe_floor", "recorded_at")
#: A stored measurement lies within these magnitudes (0 aside): past them, ratios of stored values overflow or
#: lose all precision, and no latency, rate, byte count or energy is measured there.
MAX_MAGNITUDE = 1e15
MIN_MAGNITUDE = 1e-15
MAX_ROUNDS = 10**9
MAX_NAME_LENGTH = 200
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


#: makes the error for a field (its path in the record) and what it may hold
_Complaint = Callable[[str, str], RecordError]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def stored_number(value: Any, largest: float = MAX_MAGNITUDE) -> float | None:
    """``value`` as a float when it is a JSON number (not a bool) within the stored magnitudes, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and abs(value) > largest:  # before float(): a huge int does not convert
        return None
    number = float(value)
    if not math.isfinite(number) or abs(number) > largest or (number != 0 and abs(number) < MIN_MAGNITUDE):
        return None
    return number


def is_timestamp(value: Any) -> bool:
    """A time stamp as :func:`pytest_accel.environment.utc_now` writes it (``2026-12-06T05:02:08Z``)."""
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


def _is_label(value: Any, empty: bool = False) -> bool:
    return (isinstance(value, str) and (empty or bool(value)) and len(value) <= MAX_NAME_LENGTH
            and not _CONTROL.search(value))


def check_baseline_record(name: Any, record: Any) -> None:
    """The one check of a stored metric, made when a baseline file is read and before one is written, so the
    writer never stores what the reader refuses. :class:`RecordError` names the metric, the field, the value
    and what the field may hold."""
    if not _is_label(name):
        raise RecordError(f"metric name {_shown(name)} is not a name (1 to {MAX_NAME_LENGTH} characters, no control "
                          "characters)")
    if not isinstance(record, dict):
        raise RecordError(f"metric {name!r} is a JSON {type(record).__name__}, not an object")

    def bad(field: str, expected: str) -> RecordError:
        value: Any = record
        for part in re.findall(r"\w+", field):
            value = value[int(part)] if isinstance(value, list) else value.get(part)
        return RecordError(f"metric {name!r} field {field!r} is {_shown(value)}; expected {expected}")

    unknown = [key for key in record if key not in BASELINE_RECORD_FIELDS]
    if unknown:
        raise RecordError(f"metric {name!r} has unknown field {_shown(unknown[0])}; a baseline record holds "
                          f"{', '.join(BASELINE_RECORD_FIELDS)}")
    for key in ("value", "unit", "kind", "direction"):
        if key not in record:
            raise RecordError(f"metric {name!r} lacks field {key!r}")
    kind = record["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        raise bad("kind", f"one of {', '.join(KINDS)}")
    info = KINDS[kind]
    if record["direction"] not in ("lower", "higher"):
        raise bad("direction", "'lower' or 'higher'")
    if not _is_label(record["unit"], empty=True):
        raise bad("unit", f"a unit (at most {MAX_NAME_LENGTH} characters, no control characters)")
    _check_value(record, info.name, bad)
    tolerance = record.get("tolerance")
    if tolerance is not None:
        number = stored_number(tolerance)
        below = info.tolerance_below
        if number is None or number < 0 or (below is not None and number >= below):
            raise bad("tolerance", "null or a number from 0" + (f" to below {below:g}" if below is not None else ""))
    if record.get("limit") is not None and stored_number(record["limit"]) is None:
        raise bad("limit", f"null or a number within +-{MAX_MAGNITUDE:g}")
    if "summary" in record and not isinstance(record["summary"], dict):
        raise bad("summary", "an object")
    for key in ("samples", "probe_samples"):
        values = record.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or not 0 < len(values) <= MAX_STORED_SAMPLES:
            raise bad(key, f"null or a list of 1 to {MAX_STORED_SAMPLES} round times in seconds")
        for index, seconds in enumerate(values):
            number = stored_number(seconds)
            if number is None or number <= 0:
                raise bad(f"{key}[{index}]", f"a positive number of seconds, {MIN_MAGNITUDE:g} to {MAX_MAGNITUDE:g}")
    if "recorded_at" in record and not is_timestamp(record["recorded_at"]):
        raise bad("recorded_at", "a UTC time stamp such as 2026-12-06T05:02:08Z")
    if record.get("history") is not None:
        if not info.speed:
            raise bad("history", f"null: only speed metrics keep a run history, and a {kind} metric is none")
        _check_history(name, record, bad)


def _check_value(record: dict[str, Any], kind: str, bad: _Complaint) -> None:
    if kind == KINDS["info"].name:
        if stored_number(record["value"], largest=1e300) is None:
            raise bad("value", "a finite number")
        return
    value = stored_number(record["value"])
    speed, higher = KINDS[kind].speed, KINDS[kind].judgement == "relative" and record["direction"] == "higher"
    expected = (f"{'a positive number' if speed or higher else '0 or a number'} from {MIN_MAGNITUDE:g} to "
                f"{MAX_MAGNITUDE:g}")
    if value is None:
        raise bad("value", expected)
    if value < 0:
        raise bad("value", f"{expected} (a measured {kind} is never negative)")
    if value == 0 and speed:
        raise bad("value", f"{expected} (a measured {kind} of 0 is a broken measurement)")
    if value == 0 and higher:
        raise bad("value", f"{expected} (a baseline of 0 for a higher-is-better metric lets every value pass)")


def _check_history(name: str, record: dict[str, Any], bad: _Complaint) -> None:
    history = record["history"]
    if not isinstance(history, list) or not 0 < len(history) <= MAX_HISTORY:
        raise bad("history", f"null or a list of 1 to {MAX_HISTORY} runs")
    for index, run in enumerate(history):
        where = f"history[{index}]"
        if not isinstance(run, dict):
            raise bad(where, "an object (one run's summary)")
        unknown = [key for key in run if key not in HISTORY_FIELDS]
        if unknown:
            raise RecordError(f"metric {name!r} field '{where}' has unknown field "
                              f"{_shown(unknown[0])}; a run holds {', '.join(HISTORY_FIELDS)}")
        if "value" not in run:
            raise bad(f"{where}.value", "a positive number (the run's value)")
        for field in ("value", "probe", "floor", "probe_floor"):
            if field in run and (field == "value" or run[field] is not None):
                number = stored_number(run[field])
                if number is None or number <= 0:
                    raise bad(f"{where}.{field}", f"a positive number, {MIN_MAGNITUDE:g} to {MAX_MAGNITUDE:g}")
        spread, rounds = run.get("spread"), run.get("n")
        if spread is not None:
            number = stored_number(spread)
            if number is None or not 0 <= number <= MAX_SPREAD:
                raise bad(f"{where}.spread", f"null or a number from 0 to {MAX_SPREAD:g} (the run's (p90 - p10) / "
                          "median of round times)")
        if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int)
                                   or not MIN_SPREAD_ROUNDS <= rounds <= MAX_ROUNDS):
            raise bad(f"{where}.n", f"null or a whole number of rounds from {MIN_SPREAD_ROUNDS} (the fewest a spread "
                      f"is computed from) to {MAX_ROUNDS}")
        if (spread is None) != (rounds is None):
            raise bad(f"{where}.{'n' if rounds is None else 'spread'}",
                      "a value, as 'spread' and 'n' come together (the spread of n rounds)")
        if "recorded_at" in run and not is_timestamp(run["recorded_at"]):
            raise bad(f"{where}.recorded_at", "a UTC time stamp such as 2026-12-06T05:02:08Z")
    if float(history[-1]["value"]) != float(record["value"]):
        raise bad(f"history[{len(history) - 1}].value", f"{_shown(record['value'])}, the metric's value: the last "
                  "run of the history is the run that stored it")


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
