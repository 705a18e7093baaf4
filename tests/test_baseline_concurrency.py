"""Processes writing the same baseline files at once lose no history run and no metric: the history a run adds to is
read with the file's lock held, from the file as it is then."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import pytest

from pytest_accel.baselines import BaselineStore
from pytest_accel.metrics import Metric
from pytest_accel.options import OPT_RECORD_RUN, OPT_UPDATE
from pytest_accel.records import baseline_record
from tests.helpers import HOST_DEVICE_CONFTEST, baseline_files

FILES = 10
RECORDERS = 3
UPDATERS = 1

#: A device without torch; every process waits at a barrier after collection, so all write the same files at once,
#: and reading a baseline takes a little longer, as on a busy disk: a history read outside the lock would go stale.
RACE_CONFTEST = """
import os
import time
from pathlib import Path

import pytest

from pytest_accel import baselines

_load_document = baselines.load_document


def slow_load_document(path):
    document = _load_document(path)
    time.sleep(0.03)
    return document


baselines.load_document = slow_load_document


def pytest_collection_finish(session):
    barrier = Path(os.environ["RACE_BARRIER"])
    barrier.joinpath(os.environ["RACE_PROCESS"]).touch()
    deadline = time.monotonic() + 60
    while len(list(barrier.iterdir())) < int(os.environ["RACE_PROCESSES"]) and time.monotonic() < deadline:
        time.sleep(0.01)
""" + HOST_DEVICE_CONFTEST

RACE_TEST = """
import os

import pytest

from pytest_accel.metrics import Metric


@pytest.mark.parametrize("file", range(%d))
def test_shared(accel, file):
    process = os.environ["RACE_PROCESS"]
    metrics = [Metric(f"toy.{process}", 0.5, "", "accuracy", "higher")]
    if os.environ["RACE_MODE"] == "record":
        metrics.append(Metric("toy.latency", 0.01 + int(process[1:]) * 0.001, "s", "latency", "lower"))
    accel.check(*metrics)
""" % FILES


@pytest.mark.workload  # pytest in fresh processes, at once
def test_recording_and_updating_processes_at_once_lose_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(RACE_CONFTEST)
    pytester.makepyfile(test_race=RACE_TEST)
    barrier = pytester.path / "barrier"
    barrier.mkdir()
    processes = [(f"r{index}", OPT_RECORD_RUN, "record") for index in range(RECORDERS)]
    processes += [(f"u{index}", OPT_UPDATE, "update") for index in range(UPDATERS)]
    runs = []
    for name, option, mode in processes:
        env = dict(os.environ, RACE_BARRIER=str(barrier), RACE_PROCESS=name, RACE_MODE=mode,
                   RACE_PROCESSES=str(len(processes)))
        runs.append(subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--device=host",
             option], cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0] * len(runs), "\n".join(outputs)

    files = baseline_files(pytester.path)
    assert len(files) == FILES
    for path in files:
        metrics = json.loads(path.read_text())["metrics"]
        assert sorted(metrics) == sorted([f"toy.{name}" for name, _, _ in processes] + ["toy.latency"]), path
        history = metrics["toy.latency"]["history"]
        assert len(history) == RECORDERS, f"{path.name}: {len(history)} runs in the history, {RECORDERS} recorded"
        assert sorted(run["value"] for run in history) == [0.01 + index * 0.001 for index in range(RECORDERS)]


def _append_runs(root: str, process: int, runs: int) -> None:
    """One process adding ``runs`` runs to the latency history of every file, and its own metric to each."""
    store = BaselineStore(Path(root))
    for run in range(runs):
        for index in range(FILES):
            path = Path(root) / "dev" / "suite" / f"test_{index}.json"
            metric = Metric("toy.latency", 1.0 + process + run / 100, "s", "latency", "lower")
            own = Metric(f"toy.p{process}", 0.5, "", "accuracy", "higher")

            def records_from(current: Mapping[str, Any], metric: Metric = metric, own: Metric = own
                             ) -> dict[str, dict[str, Any]]:
                stored = current.get("toy.latency")
                time.sleep(0.002)  # another process's read meets this one's write here, if the lock lets it
                return {"toy.latency": baseline_record(metric, 0.05, stored["history"] if stored else None),
                        own.name: baseline_record(own, 0.01)}

            store.update(path, records_from, {"device_key": "dev"})


@pytest.mark.workload  # starts processes
def test_the_store_api_from_several_processes_loses_no_run(tmp_path: Path) -> None:
    processes, runs = 4, 3
    context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    workers = [context.Process(target=_append_runs, args=(str(tmp_path), process, runs))
               for process in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0] * processes
    for index in range(FILES):
        metrics = json.loads((tmp_path / "dev" / "suite" / f"test_{index}.json").read_text())["metrics"]
        assert sorted(metrics) == ["toy.latency", *(f"toy.p{process}" for process in range(processes))]
        assert len(metrics["toy.latency"]["history"]) == processes * runs
