"""pytest-accel repeat: the candidate measured in k fresh processes, the median of its runs judged against the stored
history with the prediction interval for such a median — what one run cannot see, k runs can.

The toy runs on a virtual clock; each process draws its own luck from a fixed cycle of factors (a run-to-run spread
of about 4.5%, as a shared runner's), so the verdicts are the same on a busy machine."""

from __future__ import annotations

import json
import math

import pytest

from pytest_accel.cli import main
from pytest_accel.options import OPT_RECORD_RUN, OPT_UPDATE
from pytest_accel.repeat import combined_summary, judge_runs
from pytest_accel.stats import candidate_runs_for, history_test, median_variance_share
from tests.conftest import CLOCKED_CONFTEST

PROCESS_LUCK = """
from pathlib import Path

FACTORS = [1.0, 1.06, 0.95, 1.03, 0.97, 1.08, 0.94, 1.0]

def test_latency(accel, spin):
    here = Path(__file__).parent
    counter = here / "count.txt"
    run = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(run + 1))
    delay = float((here / "delay.txt").read_text()) * FACTORS[run % len(FACTORS)]
    accel.check(*accel.measure_latency("toy", lambda: spin(delay)).metrics())
"""


@pytest.fixture
def lucky_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_toy=PROCESS_LUCK)
    pytester.makeconftest(CLOCKED_CONFTEST)
    pytester.makeini("[pytest]\naddopts = --device=spin --accel-profile=quick --benchmark-disable\n")
    pytester.path.joinpath("delay.txt").write_text("0.002")
    pytester.runpytest(OPT_UPDATE).assert_outcomes(passed=1)
    for _ in range(7):
        pytester.runpytest(OPT_RECORD_RUN).assert_outcomes(passed=1)
    return pytester


def _runs(project: pytest.Pytester, k: int, name: str) -> list:
    reports = []
    for index in range(k):
        report = project.path / f"{name}-{index}.json"
        project.runpytest(f"--accel-report={report}", "--accel-gate=none").assert_outcomes(passed=1)
        reports.append(report)
    return reports


@pytest.mark.workload  # eight in-process runs to make the history, four more to judge
def test_a_median_of_runs_catches_what_one_run_cannot(lucky_project: pytest.Pytester) -> None:
    lucky_project.path.joinpath("delay.txt").write_text("0.0023")  # 15% slower
    judged = {j.name: j for j in judge_runs(_runs(lucky_project, 5, "slowed"), 0.01)}
    latency = judged["toy.latency"]
    assert latency.verdict is not None and latency.single is not None
    assert latency.verdict.status == "regression", latency.verdict.detail
    limit_k, limit_1 = latency.verdict.effective_tolerance, latency.single.effective_tolerance
    assert limit_k is not None and limit_1 is not None
    # sqrt(0.287 + 1/8) against sqrt(1 + 1/8) of the same history: the limit for a median of 5 is 61% of one run's
    assert limit_k < 0.7 * limit_1 and limit_k < 0.15 < limit_1, (limit_k, limit_1)
    assert "last 8 runs" in latency.verdict.detail


@pytest.mark.workload
def test_an_unchanged_candidate_passes(lucky_project: pytest.Pytester) -> None:
    judged = {j.name: j for j in judge_runs(_runs(lucky_project, 5, "same"), 0.01)}
    assert judged["toy.latency"].verdict is not None and judged["toy.latency"].verdict.status == "pass"


def test_runs_combine_as_medians_and_the_interval_narrows_with_them() -> None:
    combined = combined_summary([{"value": 1.0, "probe": 2.0, "floor": 0.9, "spread": 0.1, "n": 30},
                                 {"value": 4.0, "probe": 8.0, "spread": 0.3, "n": 20},
                                 {"value": 100.0, "probe": 4.0, "spread": 0.2, "n": 20}])
    # one process in a slow state (100) does not carry the median, as it would a mean
    assert combined["candidates"] == 3 and combined["value"] == pytest.approx(4.0)
    assert combined["probe"] == pytest.approx(4.0) and "floor" not in combined  # not every run has it
    assert combined["n"] == 20
    assert median_variance_share(1) == 1.0 and median_variance_share(2) == 0.5
    assert median_variance_share(3) == pytest.approx(0.449, abs=0.01)
    assert median_variance_share(5) == pytest.approx(0.287, abs=0.01)
    history = [1.0, 1.05, 0.95, 1.02, 0.98, 1.04, 0.96, 1.0]
    one, five = history_test(history, 1.0, 0.01), history_test(history, 1.0, 0.01, candidates=5)
    n = len(history)
    assert math.log(five.threshold) / math.log(one.threshold) == pytest.approx(
        math.sqrt((median_variance_share(5) + 1 / n) / (1 + 1 / n)))
    # a runner whose slow phases outlast a run (consecutive history runs alike): k runs made one after another
    # share them, and their mean is held to a wider limit than k independent runs would be
    phased = [1.0, 1.01, 0.99, 1.0, 1.08, 1.09, 1.07, 1.08, 0.99, 1.0]
    independent = [1.0, 1.08, 1.01, 1.09, 0.99, 1.07, 1.0, 1.08, 0.99, 1.0]  # the same values, no phases
    assert history_test(phased, 1.0, 0.01, candidates=5).threshold > history_test(
        independent, 1.0, 0.01, candidates=5).threshold
    assert history_test(phased, 1.0, 0.01).threshold == pytest.approx(history_test(independent, 1.0, 0.01).threshold)
    with pytest.raises(ValueError, match="candidates must be at least 1, got 0"):
        history_test(history, 1.0, 0.01, candidates=0)
    # the runs a runner needs: more for a noisier runner, none enough where the history itself is too uncertain
    quiet, noisy = candidate_runs_for(0.02, 0.10, 0.005, 10), candidate_runs_for(0.04, 0.10, 0.005, 10)
    assert quiet is not None and noisy is not None and quiet < noisy
    from scipy.stats import norm, t

    margin = (t.ppf(0.995, 9) + norm.ppf(0.95)) * 0.04
    assert margin * math.sqrt(median_variance_share(noisy) + 1 / 10) <= math.log(1.1) < margin * math.sqrt(
        median_variance_share(noisy - 1) + 1 / 10)
    assert candidate_runs_for(0.1, 0.10, 0.005, 10) is None


@pytest.mark.workload  # fresh pytest processes
def test_the_command_runs_fresh_processes_and_gates(lucky_project: pytest.Pytester,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    lucky_project.path.joinpath("delay.txt").write_text("0.0024")
    out = lucky_project.path / "rep"
    status = main(["repeat", "--runs", "3", "--out", str(out), "--", str(lucky_project.path),
                   f"--rootdir={lucky_project.path}"])
    printed = capsys.readouterr()
    assert status == 1, printed.out + printed.err
    document = json.loads((out / "repeat.json").read_text())
    latency = next(m for m in document["metrics"] if m["name"] == "toy.latency")
    assert latency["verdict"] == "regression" and len(latency["values"]) == 3
    assert latency["limit"] < latency["single_run_limit"]
    assert "limit (k runs)" in printed.out and "3 x " in printed.out
    assert int(lucky_project.path.joinpath("count.txt").read_text()) == 8 + 3  # three fresh runs, nothing more


@pytest.mark.parametrize(("argv", "said"), [
    (["--runs", "2", "--", "x"], "--runs 2: at least 3"),
    (["--runs", "51", "--", "x"], "--runs 51: at most 50"),
    (["--alpha", "2", "--", "x"], "--alpha 2.0: a probability between 0 and 1"),
    ([], "no tests given"),
    (["--", "x", "--accel-update-baselines"], "--accel-update-baselines: the repeated runs only read the baselines"),
    (["--out", "/proc/no-such-folder", "--", "x"], "--out /proc/no-such-folder: not writable"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], said: str, tmp_path: object,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["repeat", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err
