"""``--accel-report=PATH``: every measurement of the run with device info, software stack and verdicts; each test's
entry and the reader of saved reports are :mod:`pytest_accel.report.document`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_accel import __version__, environment
from pytest_accel.baselines import atomic_write_json, json_safe
from pytest_accel.environment import utc_now
from pytest_accel.peers import to_dicts as peer_dicts
from pytest_accel.report.document import REPORT_SCHEMA, REPORT_SCHEMA_VERSION, result_entry
from pytest_accel.report.facts import RunFacts
from pytest_accel.session import AccelSession


def build_report(session: AccelSession, exit_status: int, facts: RunFacts) -> dict[str, Any]:
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
        "host": environment.host_facts(),
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
        "baselines_unused": [str(path) for path in facts.unused_baselines.files],
        "peers": peer_dicts(facts.peers),
        "datasheet": {spec: peak.summary() for spec, peak in session.peaks().items()},
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    atomic_write_json(path, json_safe(report))  # a broken run's NaN is reported as null, with its verdict
