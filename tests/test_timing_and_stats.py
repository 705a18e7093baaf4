"""Timing policy (sync-correct rounds, percentile minimums, profiles) and the statistics behind verdicts."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from pytest_accel.devices import Device, DeviceInfo
from pytest_accel.options import OPT_PROFILE, OPT_REPORT
from pytest_accel.stats import olympic_mean, timing_shift
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


def test_profile_option_changes_the_sample_count(latency_project: pytest.Pytester) -> None:
    latency_project.path.joinpath("delay.txt").write_text("0.0005")
    latency_project.runpytest(f"{OPT_PROFILE}=standard", f"{OPT_REPORT}=r.json", "--benchmark-disable")
    latency = load_json(latency_project.path / "r.json")["results"][0]["metrics"][0]
    assert latency["summary"]["profile"] == "standard" and latency["summary"]["executor"] == "local"
    summary = latency["summary"]
    assert summary["n"] >= 64 and "p90" in summary and ("p99" in summary) == (summary["n"] >= 662)
    assert len(latency["probe_samples"]) == len(latency["samples"]) == summary["n"]  # the probe, round by round


def test_timing_shift_sees_a_real_slowdown_and_ignores_a_noisy_machine() -> None:
    rng = np.random.default_rng(0)
    base = (0.010 + rng.exponential(0.0005, 200)).tolist()
    slower = (0.013 + rng.exponential(0.0005, 200)).tolist()
    probe = (0.001 + rng.exponential(0.00005, 200)).tolist()
    slow_probe = (0.0013 + rng.exponential(0.00005, 200)).tolist()
    shift = timing_shift(slower, base, probe, probe)
    assert shift.ratio == pytest.approx(1.3, rel=0.05) and shift.p_slower < 1e-10 and shift.p_faster > 0.5
    machine = timing_shift(slower, base, slow_probe, probe)
    assert machine.normalised_ratio == pytest.approx(1.0, abs=0.05)
    same = timing_shift(base[:100], base[100:])
    assert same.p_slower > 0.01 and same.normalised_ratio is None


def test_olympic_mean_drops_the_extremes() -> None:
    assert olympic_mean([10, 1, 5, 6, 100]) == pytest.approx(7.0)
    assert olympic_mean([4, 6]) == 5
