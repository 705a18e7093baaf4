"""Corrupted, wrong-schema and malformed baseline files; atomic writes that survive a killed or failing writer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_accel import baselines
from pytest_accel.baselines import atomic_write_json
from pytest_accel.options import OPT_MISSING, OPT_UPDATE
from tests.helpers import baseline_files, load_json


@pytest.fixture
def recorded(accuracy_project: pytest.Pytester) -> tuple[pytest.Pytester, Path]:
    accuracy_project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    [path] = baseline_files(accuracy_project.path)
    return accuracy_project, path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema": "pytest-accel/baseline", "schema_ver', "is not valid JSON (Unterminated string * at line 1 *"),
        ("[1, 2]", "holds a JSON list, not an object"),
        ('{"schema": "other", "schema_version": 1, "metrics": {}}', "has schema 'other', expected "
                                                                    "'pytest-accel/baseline'"),
        ('{"schema": "pytest-accel/baseline", "schema_version": 7, "metrics": {}}', "has schema_version 7; this "
                                                                                    "pytest-accel reads 1"),
        ('{"schema": "pytest-accel/baseline", "schema_version": 1, "metrics": {"toy.accuracy": {"value": "high", '
         '"unit": "", "kind": "accuracy", "direction": "higher"}}}', "metric 'toy.accuracy' field 'value' is 'high'; "
                                                                    "expected a positive number from 1e-15 to 1e+15"),
    ],
)
def test_bad_baseline_file_fails_the_test_with_one_line(
    recorded: tuple[pytest.Pytester, Path], content: str, message: str
) -> None:
    project, path = recorded
    path.write_text(content)
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"pytest-accel: baseline file {path} {message}; fix it, delete it, or re-record it with "
         "--accel-update-baselines"]
    )
    assert path.read_text() == content, "a bad file is left for the user to inspect"


def test_update_replaces_a_corrupt_file(recorded: tuple[pytest.Pytester, Path]) -> None:
    project, path = recorded
    path.write_text("{not json")
    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)
    assert load_json(path)["metrics"]["toy.accuracy"]["value"] == pytest.approx(0.90)


def test_record_adds_missing_metrics_and_keeps_the_others(recorded: tuple[pytest.Pytester, Path]) -> None:
    project, path = recorded
    document = load_json(path)
    document["metrics"]["toy.other"] = dict(document["metrics"]["toy.accuracy"], value=0.5)
    path.write_text(json.dumps(document))
    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)
    assert set(load_json(path)["metrics"]) == {"toy.accuracy", "toy.other"}


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "dev" / "suite" / "test.json"
    atomic_write_json(target, {"version": "old"})

    def disk_full(descriptor: int) -> None:  # the write was buffered; flushing it to disk fails, as ENOSPC does
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(baselines.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_json(target, {"version": "new"})
    assert json.loads(target.read_text()) == {"version": "old"}
    assert [p.name for p in target.parent.iterdir()] == ["test.json"]


@pytest.mark.workload  # a writer process killed mid-write
def test_killed_writer_never_leaves_a_half_written_baseline(tmp_path: Path) -> None:
    target = tmp_path / "test.json"
    atomic_write_json(target, {"version": "old"})
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from pytest_accel.baselines import atomic_write_json;\n"
            "big = {'samples': list(range(3_000_000))}\n"
            "print('writing', flush=True)\n"
            "while True: atomic_write_json(Path(sys.argv[1]), big)",
            str(target),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    time.sleep(0.7)  # inside a write of a ~20 MB document
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    document = json.loads(target.read_text())  # whole: either the old one or a complete new one
    assert document == {"version": "old"} or len(document["samples"]) == 3_000_000
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "test.json"]
    assert all(name.startswith(".test.json.") and name.endswith(".tmp") for name in leftovers)
