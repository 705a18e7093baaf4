"""Running one test again: the command line that re-runs it (to update or record its baselines, as the failure
message and the summaries print it) and a run of pytest in a fresh process that hands back its JSON report (the
confirmation of a regression; the gate self-check's runs)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest

from pytest_accel.options import (
    OPT_ACCEL_DEVICE,
    OPT_DEVICE,
    OPT_MISSING,
    OPT_RECORD_RUN,
    OPT_REPORT,
    OPT_UPDATE,
    AccelOptions,
)
from pytest_accel.report.document import ReportedMetric, ReportError, load_report, read_metrics

#: options of the original run that a re-run of one test on one device must not repeat, with whether each takes a
#: value: the selection (the node id replaces it), the devices (one is given), the baseline mode, the report and
#: pytest's temporary folder
_NOT_REPEATED = {OPT_DEVICE: True, OPT_ACCEL_DEVICE: True, OPT_UPDATE: False, OPT_RECORD_RUN: False, OPT_MISSING: True,
                 OPT_REPORT: True, "-k": True, "-m": True, "--basetemp": True}


#: set in the environment of a fresh-process confirmation run, so that it does not confirm in turn
CONFIRMING_ENV = "PYTEST_ACCEL_CONFIRMING"
#: options of pytest-xdist: a confirmation runs one test, in one process
_XDIST_OPTIONS = {"-n": True, "--numprocesses": True, "--dist": True, "--maxprocesses": True}


@dataclass(frozen=True)
class PytestProcess:
    #: None when it could not run or ran past its timeout
    status: int | None
    #: its report as the one reader reads it; None when it wrote none that reads
    document: dict[str, Any] | None
    #: the line of pytest's usage error (``ERROR: ...``, without the prefix) when it refused its arguments
    usage_error: str | None = None


def pytest_process(args: Sequence[str], cwd: Path, report: Path, *, env: Mapping[str, str] | None = None,
                   timeout: float | None = None) -> PytestProcess:
    """``python -m pytest ARGS --accel-report=REPORT`` in a new process."""
    command = [sys.executable, "-m", "pytest", *args, f"{OPT_REPORT}={report}"]
    usage_error = None
    try:
        done = subprocess.run(command, cwd=cwd, env=dict(env) if env is not None else None, capture_output=True,
                              timeout=timeout, check=False)
        status: int | None = done.returncode
        if status == pytest.ExitCode.USAGE_ERROR:
            errors = [line.removeprefix("ERROR: ") for line in done.stderr.decode(errors="replace").splitlines()
                      if line.startswith("ERROR: ")]
            usage_error = errors[0] if errors else "pytest refused its arguments (exit 4)"
    except (OSError, subprocess.SubprocessError):
        status = None
    try:
        return PytestProcess(status, load_report(report), usage_error)
    except ReportError:
        return PytestProcess(status, None, usage_error)


def run_pytest(args: Sequence[str], cwd: Path, report: Path, *, env: Mapping[str, str] | None = None,
               timeout: float | None = None) -> tuple[int | None, dict[str, Any] | None]:
    """:func:`pytest_process`'s exit status and report."""
    process = pytest_process(args, cwd, report, env=env, timeout=timeout)
    return process.status, process.document


def run_in_fresh_process(options: AccelOptions, test_file: Path, nodeid: str, device_spec: str
                         ) -> dict[str, ReportedMetric]:
    """Run one test on one device again, as the run was invoked, in a new pytest process; its metrics by name
    from that run's JSON report (empty when it could not run)."""
    with tempfile.TemporaryDirectory(prefix="accel-confirm-") as folder:
        args = shlex.split(rerun_command(options, test_file, nodeid, device_spec, "--accel-gate=none", "-p",
                                         "no:cacheprovider", "-q", skip=_XDIST_OPTIONS))[1:]
        _, document = run_pytest(args, options.invocation_dir, Path(folder) / "report.json",
                                 env={**os.environ, CONFIRMING_ENV: "1"}, timeout=1800)
    if document is None:
        return {}
    # the one test it ran: its node id may be spelt from another starting folder (a file outside the rootdir)
    test_part = nodeid.partition("::")[2]
    read, _ = read_metrics(document)
    return {reported.metric.name: reported for reported in read
            if str(reported.result.get("nodeid", "")).partition("::")[2] == test_part}


def rerun_command(options: AccelOptions, test_file: Path, nodeid: str, device_spec: str, *extra: str,
                  skip: dict[str, bool] | None = None) -> str:
    """``pytest <the test> <the run's other options> --device=<spec> <extra>``, runnable from where pytest was
    started: suite options (``--yolo-*``, ``--gesture-*``), the baseline folder and every other option carry over,
    so the re-run measures the same variant into the same file."""
    _, sep, rest = nodeid.partition("::")
    test = os.path.relpath(test_file, options.invocation_dir) + sep + rest
    kept: list[str] = []
    args = iter(options.invocation_args)
    for arg in args:
        if arg in options.invocation_paths:
            continue
        name, has_value, _ = arg.partition("=")
        takes_value = _NOT_REPEATED.get(name, (skip or {}).get(name))
        if takes_value is None and name[:2] in ("-k", "-m") and len(name) > 2 and not name.startswith("--"):
            continue  # -kEXPR
        if takes_value is None:
            kept.append(arg)
        elif takes_value and not has_value:
            next(args, None)
    return shlex.join(["pytest", test, *kept, f"{options.device_option}={device_spec}", *extra])
