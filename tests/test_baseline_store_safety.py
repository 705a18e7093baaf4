"""Baseline writes keep permissions, clean what a killed writer left, and lose nothing to concurrent updates."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_accel.baselines import BaselineStore, atomic_write_json

WRITER = """
import sys
from pathlib import Path
from pytest_accel.baselines import BaselineStore

root, prefix = Path(sys.argv[1]), sys.argv[2]
store = BaselineStore(root)
path = root / "dev" / "suite" / "test.json"
for index in range(150):
    record = {"value": float(index + 1), "unit": "", "kind": "accuracy", "direction": "higher", "tolerance": 0.01}
    store.write(path, {f"{prefix}.m{index}": record}, {"device_key": "dev"})
"""


def test_an_update_keeps_the_files_permissions(tmp_path: Path) -> None:
    target = tmp_path / "shared.json"
    atomic_write_json(target, {"v": 1})
    os.chmod(target, 0o644)
    atomic_write_json(target, {"v": 2})
    assert stat.S_IMODE(target.stat().st_mode) == 0o644, "others sharing the folder can still read it"
    os.chmod(target, 0o664)
    atomic_write_json(target, {"v": 3})
    assert stat.S_IMODE(target.stat().st_mode) == 0o664


def test_a_new_file_gets_the_umask_default(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "new.json", {"v": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644  # not the temp file's 0600


def test_the_next_write_cleans_a_killed_writers_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "dev" / "suite" / "test.json"
    path.parent.mkdir(parents=True)
    stale = path.parent / ".test.json.abc123.tmp"
    stale.write_text('{"half": ')
    BaselineStore(tmp_path).write(path, {}, {"device_key": "dev"})
    assert not stale.exists() and json.loads(path.read_text())["metrics"] == {}


@pytest.mark.workload  # two writer processes at once
def test_concurrent_updates_of_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "dev" / "suite" / "test.json"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), prefix]) for prefix in ("a", "b")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    assert len(json.loads(path.read_text())["metrics"]) == 300
