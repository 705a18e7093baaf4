"""``--accel-report=PATH``: every measurement of the run with device info, software stack and verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_accel import __version__, environment
from pytest_accel.baselines import atomic_write_json, json_safe, run_summary, thin_samples, utc_now
from pytest_accel.session import AccelSession, TestRecord

REPORT_SCHEMA = "pytest-accel/report"
REPORT_SCHEMA_VERSION = 1


def result_entry(record: TestRecord) -> dict[str, Any]:
    """One test on one device as the report holds it: where it ran, its baseline file and every metric."""
    metrics = []
    for verdict in record.verdicts:
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
        if metric.summary:
            entry["summary"] = metric.summary
        if metric.samples:
            entry["samples"] = thin_samples(metric.samples)
        if metric.probe_samples:
            entry["probe_samples"] = thin_samples(metric.probe_samples)
        if metric.kind_info.speed:
            entry["run"] = run_summary(metric)
        if verdict.remeasured_value is not None:
            entry["remeasured_value"] = verdict.remeasured_value
        metrics.append(entry)
    return {
        "nodeid": record.nodeid,
        "device": record.device.spec,
        "device_key": record.device.key,
        "suite": record.suite,
        "test": record.test,
        # the test apart from its device: the function and its other parameters (the dtype, where it has one)
        "function": record.function,
        "params": record.params,
        "baseline_file": str(record.baseline_path),
        "metrics": metrics,
    }


def build_report(session: AccelSession, exit_status: int) -> dict[str, Any]:
    devices: dict[str, Any] = {}
    for record in session.records:
        device = record.device
        devices.setdefault(device.spec, {"key": device.key, "available": device.available, **device.info.to_dict()})
    results = [result_entry(record) for record in session.records]
    options = session.options
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "created_at": utc_now(),
        "pytest_accel": __version__,
        "command": environment.command_line(),
        "exit_status": exit_status,
        "git_commit": session.git_commit,
        "software": session.software,
        "options": {
            "devices": list(options.device_specs),
            "profile": options.profile or "per device (quick on CPU, standard on accelerators)",
            "baseline_dir": str(options.baseline_dir),
            "gate": sorted(options.gate),
            "missing_baseline": options.missing_baseline,
            "update_baselines": options.update_baselines,
            "latency_basis": options.latency_basis,
            "allow_tf32": options.allow_tf32,
            "deterministic": options.deterministic,
        },
        "devices": devices,
        "results": results,
        "baselines_written": [
            {"path": str(w.path), "action": w.action, "changes": w.changes} for w in session.written
        ],
        "baselines_pruned": [str(path) for path in session.pruned],
        "baselines_unused": [] if session.pruned else [str(path) for path in session.unused_baseline_files()],
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    atomic_write_json(path, json_safe(report))  # a broken run's NaN is reported as null, with its verdict
