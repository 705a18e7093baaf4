"""A speed regression is confirmed by a second measurement in a fresh process before it fails the test: a slowness
that was passing, or a process in a slow state, is noise."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_RECORD_RUN, OPT_REPORT, OPT_UPDATE
from tests.helpers import load_json

FLAKY_ONCE = """
from pathlib import Path

def test_latency(accel, spin):
    delay = Path(__file__).with_name("delay.txt")
    measurement = accel.measure_latency("toy", lambda: spin(float(delay.read_text())))
    delay.write_text("0.002")  # the slowness was passing: the confirmation measures the usual speed
    accel.check(*(m for m in measurement.metrics() if m.kind != "startup"))  # a first run happens once
"""


@pytest.mark.workload  # the regression is confirmed by pytest in a fresh process
def test_a_regression_the_confirmation_does_not_see_passes(clocked_latency_project: pytest.Pytester) -> None:
    project = clocked_latency_project
    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)
    for _ in range(5):
        project.runpytest(OPT_RECORD_RUN).assert_outcomes(passed=1)
    project.makepyfile(test_toy=FLAKY_ONCE)
    project.path.joinpath("delay.txt").write_text("0.004")
    result = project.runpytest(f"{OPT_REPORT}=r.json")
    result.assert_outcomes(passed=1)
    entry = next(m for m in load_json(project.path / "r.json")["results"][0]["metrics"] if m["name"] == "toy.latency")
    assert entry["verdict"] == "noise" and entry["remeasured_value"] < 0.003
    assert entry["detail"].startswith("not confirmed by a second measurement in a fresh process (")


SLOW_PROCESS = """
from pathlib import Path

MARK = Path(__file__).with_name("slow-process")
SLOW = MARK.exists()  # this process runs in a slow state throughout; the next one will not
MARK.unlink(missing_ok=True)

def test_latency(accel, spin):
    delay = 0.004 if SLOW else 0.002
    measurement = accel.measure_latency("toy", lambda: spin(delay))
    accel.check(*(m for m in measurement.metrics() if m.kind != "startup"))
"""


@pytest.mark.workload  # the regression is confirmed by pytest in a fresh process
def test_a_slow_process_is_not_a_regression_when_a_fresh_one_is_fast(
        clocked_latency_project: pytest.Pytester) -> None:
    """A measurement again in the same process would repeat the slow state and confirm it; a fresh process does
    not."""
    project = clocked_latency_project
    project.makepyfile(test_toy=SLOW_PROCESS)
    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)
    for _ in range(5):
        project.runpytest(OPT_RECORD_RUN).assert_outcomes(passed=1)
    project.path.joinpath("slow-process").touch()
    result = project.runpytest(f"{OPT_REPORT}=r.json")
    result.assert_outcomes(passed=1)
    entry = next(m for m in load_json(project.path / "r.json")["results"][0]["metrics"] if m["name"] == "toy.latency")
    assert entry["value"] > 0.0035, "the first measurement saw the slow state"
    assert entry["verdict"] == "noise" and entry["remeasured_value"] < 0.003
    assert "not confirmed by a second measurement in a fresh process" in entry["detail"]
