"""--accel-record-run: each run adds to every speed metric's history, the gate judges against that history, and
--accel-update-baselines starts it anew."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_RECORD_RUN, OPT_REPORT, OPT_UPDATE
from tests.helpers import baseline_files, literal, load_json


@pytest.mark.workload  # the regression is confirmed by pytest in a fresh process
def test_record_run_builds_the_history_and_the_gate_uses_it(clocked_latency_project: pytest.Pytester) -> None:
    project = clocked_latency_project
    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)
    for _ in range(5):
        project.runpytest(OPT_RECORD_RUN).assert_outcomes(passed=1)
    [path] = baseline_files(project.path)
    stored = load_json(path)["metrics"]
    assert len(stored["toy.latency"]["history"]) == 6 and len(stored["toy.first_run"]["history"]) == 6
    assert project.runpytest().ret == 0

    project.path.joinpath("delay.txt").write_text("0.004")  # twice as slow
    result = project.runpytest(f"{OPT_REPORT}=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal("*toy.latency [latency]: obtained * ms, expected * ms*; last 6 runs * ms "
                                         "to * ms; time +*% (quartile absolute), limit +*%: "
                                         "worse than the run-to-run noise allows*; "
                                         "confirmed by a second measurement in a fresh process (* ms*)")])
    entry = next(m for m in load_json(project.path / "r.json")["results"][0]["metrics"] if m["name"] == "toy.latency")
    assert entry["remeasured_value"] > 0.0035 and entry["verdict"] == "regression"
    assert entry["effective_tolerance"] >= 0.05  # the limit it was held to, never below the tolerance floor
    result.stdout.fnmatch_lines(["  ✗ spin toy::test_latency toy.latency * ms, baseline * ms, +*% (limit +*%): "
                                 "last 6 runs*"])  # the summary's line for it

    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)  # a deliberate change starts the history anew
    assert len(load_json(path)["metrics"]["toy.latency"]["history"]) == 1
