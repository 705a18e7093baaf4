"""A run of the suites from a checkout writes nothing into it: data sets, exported models and caches go to the
workloads' cache, and ultralytics creates no runs/ or weights/ folder, even where its settings point into the checkout
(as they do when ultralytics is installed inside it, or outside any git checkout: its defaults are then relative to
the folder it runs in)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_accel.environment import CACHE_ENV
from pytest_accel.options import OPT_DEVICE
from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics
from tests.helpers import REPO

#: ultralytics' settings that name folders it saves into by default
ULTRALYTICS_FOLDERS = ("runs_dir", "weights_dir", "datasets_dir")


def _copy_checkout(target: Path) -> None:
    """Every file git tracks in this checkout, nothing generated beside them."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (REPO / name).is_file():  # a tracked file deleted in the work tree is not part of it
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)


def _tree(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every folder (None) and file (size, modification time) under ``root``."""
    found: dict[str, tuple[int, int] | None] = {}
    for folder, folders, files in os.walk(root):
        for name in folders:
            found[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            stat = os.stat(os.path.join(folder, name))
            found[os.path.relpath(os.path.join(folder, name), root)] = (stat.st_size, stat.st_mtime_ns)
    return found


def _ultralytics_settings_into(checkout: Path, config: Path) -> Path:
    """A settings file like this machine's, with ultralytics' default folders inside ``checkout``."""
    import_ultralytics()
    from ultralytics.utils import SETTINGS

    settings = {**SETTINGS, **{key: str(checkout / key.removesuffix("_dir")) for key in ULTRALYTICS_FOLDERS}}
    config.mkdir()
    (config / "settings.json").write_text(json.dumps(settings, indent=2))
    return config / "settings.json"


@pytest.mark.workload
def test_a_detection_run_writes_nothing_into_the_checkout(tmp_path: Path, workload_cache: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing says which files are the checkout's")
    checkout = tmp_path / "checkout"
    _copy_checkout(checkout)
    settings = _ultralytics_settings_into(checkout, tmp_path / "ultralytics-config")
    before = _tree(checkout)
    environ = {
        **os.environ,
        "PYTHONPATH": str(checkout),  # the plugin and workloads of the copy run, so writes beside them show too
        "YOLO_CONFIG_DIR": str(settings.parent),
        # Python's bytecode and pytest's cache folder are theirs, not the plugin's: kept out so any file is ours
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/test_detection.py", "-k", "test_first_inference and fp32",
         f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu", "-p", "no:cacheprovider", "-q"],
        cwd=checkout, env=environ, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout, done.stdout
    after = _tree(checkout)
    written = sorted(name for name in after.keys() - before.keys())
    changed = sorted(name for name in before.keys() & after.keys() if before[name] != after[name])
    assert (written, changed) == ([], []), f"the run wrote into the checkout: new {written}, changed {changed}"
    # the premise: ultralytics read these settings (it resets a file it cannot use), so its folders were in the copy
    kept = json.loads(settings.read_text())
    assert all(kept[key] == str(checkout / key.removesuffix("_dir")) for key in ULTRALYTICS_FOLDERS), kept


PLAIN_TEST = "def test_plain():\n    pass\n"


def test_pytest_benchmark_makes_no_storage_folder_in_the_project(pytester: pytest.Pytester, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    pytester.makepyfile(PLAIN_TEST)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert not (pytester.path / ".benchmarks").exists()
    assert (tmp_path / "cache" / "pytest-benchmark").is_dir(), "pytest-benchmark still starts with a storage"


BENCHMARK_TEST = "def test_timed(benchmark):\n    benchmark(lambda: None)\n"


@pytest.mark.parametrize(("option", "folder"), [("--benchmark-autosave", ".benchmarks"),
                                                ("--benchmark-storage=file://./bench-runs", "bench-runs")])
def test_a_run_that_saves_benchmarks_or_names_their_storage_keeps_pytest_benchmarks_folder(
        pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, folder: str) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    pytester.makepyfile(BENCHMARK_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "--benchmark-max-time=0.001", option)
    result.assert_outcomes(passed=1)
    assert (pytester.path / folder).is_dir()
    saved = list((pytester.path / folder).rglob("*.json"))
    assert len(saved) == (1 if option == "--benchmark-autosave" else 0), saved
