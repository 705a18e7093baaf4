"""One record form: a Metric and a Verdict become dicts and come back in one module (records.py); the baseline,
the report and the verdict hold one run summary per speed metric, with one time stamp."""

from __future__ import annotations

import json
import math

import pytest

from pytest_accel import history
from pytest_accel.metrics import Metric
from pytest_accel.records import (
    RecordError,
    baseline_record,
    metric_from_dict,
    report_entry,
    verdict_from_dict,
    verdict_to_dict,
)
from pytest_accel.verdicts import Policy, compare


def _latency() -> Metric:
    return Metric("toy.latency", 0.002, "s", "latency", "lower", samples=[0.002, 0.0021, 0.0019] * 10,
                  probe_samples=[0.001] * 30, summary={"rounds": 30})


def test_a_verdict_travels_whole_through_the_transfer_form() -> None:
    metric = Metric("toy.map", 0.83, "", "accuracy", "higher", expected=0.834, expected_source="ref.json",
                    sections=("accuracy",), limit_reason="why")
    verdict = compare(metric, None, 0.01, "default", Policy(frozenset({"accuracy"})))
    again = verdict_from_dict(json.loads(json.dumps(verdict_to_dict(verdict))))
    assert again == verdict


def test_a_report_entry_reads_back_as_the_metric_it_reported() -> None:
    metric = Metric("toy.p", 0.2, "", "convergence", "lower", limit=0.01, p_faster=0.5, summary={"epochs": 3})
    verdict = compare(metric, None, 0.01, "limit", Policy(frozenset({"convergence"})))
    back = metric_from_dict("toy.p", json.loads(json.dumps(report_entry(verdict))))
    assert (back.value, back.unit, back.kind, back.direction, back.limit, back.p_faster, back.summary) == (
        0.2, "", "convergence", "lower", 0.01, 0.5, {"epochs": 3})


@pytest.mark.parametrize(("entry", "said"), [
    ({"value": None, "unit": "s", "kind": "latency", "direction": "lower"}, "has value None, not a number"),
    ({"value": "1", "unit": "s", "kind": "latency", "direction": "lower"}, "has value '1', not a number"),
    ({"value": 1.0, "unit": "s", "kind": "speed", "direction": "lower"}, "kind 'speed' is not one of"),
    ({"value": 1.0, "unit": "s", "kind": "latency"}, "lacks 'direction'"),
    ({"value": 1.0, "unit": "s", "kind": "latency", "direction": "lower", "samples": ["a"]}, "malformed 'samples'"),
])
def test_what_is_not_a_metric_is_named(entry: dict, said: str) -> None:
    with pytest.raises(RecordError, match=said):
        metric_from_dict("m", entry)


def test_one_run_summary_per_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verdict, the baseline's history and the report's ``run`` hold the same summary: computed once, stamped
    once, however much time passes between them."""
    stamps = iter(f"2026-12-06T05:00:0{i}Z" for i in range(10))
    monkeypatch.setattr(history, "utc_now", lambda: next(stamps))
    metric = _latency()
    verdict = compare(metric, None, 0.05, "default", Policy(frozenset({"latency"}), record_missing=True))
    stored = baseline_record(metric, 0.05)
    reported = report_entry(verdict)
    assert stored["history"] == [reported["run"]] and reported["run"]["recorded_at"] == "2026-12-06T05:00:00Z"
    assert math.isclose(reported["run"]["value"], 0.002)
