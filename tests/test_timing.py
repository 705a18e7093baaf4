"""Timing policy: rounds timed to completion on asynchronous devices, nearest-rank percentiles and their minimum
sample counts, round counts and the --accel-profile option."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from pytest_accel.devices import Device, DeviceInfo
from pytest_accel.options import OPT_PROFILE, OPT_REPORT
from pytest_accel.timing import PROFILES, choose_rounds, measure_latency, nearest_rank, percentiles
from tests.helpers import load_json


class QueueDevice(Device):
    """A real asynchronous device: work is queued on a worker thread; only synchronize() waits for it."""

    def __init__(self, honest_sync: bool = True) -> None:
        super().__init__("queue", "test")
        self.worker = ThreadPoolExecutor(max_workers=1)
        self.pending: list[Future[None]] = []
        self.honest_sync = honest_sync
        self.lock = threading.Lock()

    def describe(self) -> DeviceInfo:
        return DeviceInfo(backend="test", spec="queue", vendor="test", model="queue")

    def launch(self, seconds: float) -> None:
        with self.lock:
            self.pending.append(self.worker.submit(time.sleep, seconds))

    def synchronize(self) -> None:
        if not self.honest_sync:
            return
        with self.lock:
            pending, self.pending = self.pending, []
        for future in pending:
            future.result()


def test_rounds_are_timed_to_completion_on_an_asynchronous_device() -> None:
    device = QueueDevice()
    measurement = measure_latency("queued", lambda: device.launch(0.004), device, PROFILES["quick"])
    assert measurement.median >= 0.004
    assert measurement.executor == "local" and len(measurement.samples) >= PROFILES["quick"].min_rounds


def test_without_synchronize_the_same_work_looks_free() -> None:
    """The control for the test above: it is the synchronize that makes the time real."""
    device = QueueDevice(honest_sync=False)
    measurement = measure_latency("queued", lambda: device.launch(0.004), device, PROFILES["quick"])
    assert measurement.median < 0.001
    device.worker.shutdown(wait=True)


def test_nearest_rank_matches_numpy_inverted_cdf() -> None:
    samples = sorted(np.random.default_rng(1).exponential(size=777).tolist())
    for p in (50, 90, 99, 12.5, 100):
        assert nearest_rank(samples, p) == np.percentile(samples, p, method="inverted_cdf")
    assert nearest_rank([1.0, 2.0, 3.0], 50) == 2.0 and nearest_rank([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_percentiles_need_their_minimum_sample_counts() -> None:
    assert set(percentiles([0.1] * 20)) == {"p50"}
    assert set(percentiles([0.1] * 63)) == {"p50"}
    assert set(percentiles([0.1] * 64)) == {"p50", "p90"}
    assert set(percentiles([0.1] * 661)) == {"p50", "p90"}
    assert set(percentiles([0.1] * 662)) == {"p50", "p90", "p99"}


def test_round_counts_follow_the_profile() -> None:
    quick, full = PROFILES["quick"], PROFILES["full"]
    assert choose_rounds(quick, 0.5) == quick.min_rounds  # slow workload: the minimum
    assert choose_rounds(quick, 1e-6) == quick.max_rounds  # fast workload: capped
    assert choose_rounds(quick, 0.01) == 100  # 1 s target / 10 ms
    assert full.min_rounds >= 662, "the full profile must be able to report p99"


@pytest.mark.workload  # the standard profile times for 5 s by design, and the probe beside each round doubles it
def test_profile_option_changes_the_sample_count(latency_project: pytest.Pytester) -> None:
    latency_project.path.joinpath("delay.txt").write_text("0.0005")
    latency_project.runpytest(f"{OPT_PROFILE}=standard", f"{OPT_REPORT}=r.json", "--benchmark-disable")
    latency = load_json(latency_project.path / "r.json")["results"][0]["metrics"][0]
    assert latency["summary"]["profile"] == "standard" and latency["summary"]["executor"] == "local"
    summary = latency["summary"]
    assert summary["n"] >= 64 and "p90" in summary and ("p99" in summary) == (summary["n"] >= 662)
    assert len(latency["probe_samples"]) == len(latency["samples"]) == summary["n"]  # the probe, round by round
