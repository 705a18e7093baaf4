"""pytest-accel ab-power: the runner's own measurement of what an A/B comparison sees — the order of the three arms,
the false-alarm rate and the power per number of pairs from subsampled groups, the shift model checked against the
measured arm, the documents and the one-line errors."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pytest_accel.ab import AbError
from pytest_accel.ab_power import ARMS, MetricSeries, PowerCheck, analyse, markdown, power_order, to_dict
from pytest_accel.cli import main
from tests.conftest import CLOCKED_CONFTEST


def test_every_group_runs_each_arm_once_and_every_arm_takes_every_place() -> None:
    order = power_order(12)
    assert len(order) == 36
    for group in range(12):
        assert sorted(arm for g, arm in order if g == group) == sorted(ARMS)
    places = Counter((arm, index % 3) for index, (_, arm) in enumerate(order))
    assert set(places.values()) == {4}, places  # 12 groups: each arm 4 times first, 4 second, 4 third
    with pytest.raises(ValueError, match="groups must be at least 1, got 0"):
        power_order(0)


def _series(groups: int, rng: np.random.Generator, slowdown: float) -> list[MetricSeries]:
    """A latency and a throughput the injection slows, and a latency it does not reach; the machine's slow phases
    shared by a group's three runs, each process with its own luck on top."""
    phase = np.exp(rng.normal(0, 0.2, groups))

    def run() -> np.ndarray:
        return phase * np.exp(rng.normal(0, 0.02, groups))

    latency = {"A": 0.01 * run(), "A2": 0.01 * run(), "B": 0.01 * run() * (1 + slowdown)}
    throughput = {"A": 100 / run(), "A2": 100 / run(), "B": 100 / run() / (1 + slowdown)}
    untouched = {"A": 0.02 * run(), "A2": 0.02 * run(), "B": 0.02 * run()}
    return [MetricSeries(("cpu", "suite", "test_a", "x.latency"), "lower", latency),
            MetricSeries(("cpu", "suite", "test_a", "x.throughput"), "higher", throughput),
            MetricSeries(("cpu", "suite", "test_b", "y.latency"), "lower", untouched)]


def test_power_rises_with_pairs_and_the_shift_model_matches_the_measured_arm() -> None:
    rng = np.random.default_rng(4)
    groups, slowdown = 40, 0.05
    series = _series(groups, rng, slowdown)
    rows = analyse(series, groups, slowdown, 0.01, changes=(0.02, 0.05), ks=(8, 12, 16, 20), resamples=200,
                   seconds_per_run=12.0)
    assert [row.pairs for row in rows] == [8, 12, 16, 20, 40]
    by_pairs = {row.pairs: row for row in rows}
    latency, throughput, untouched = (s.key for s in series)
    assert all(row.false_alarms <= 0.05 for row in rows), [row.false_alarms for row in rows]
    # sd of ln(B/A) 0.028: 5% is caught nearly always at 16 pairs, rarely at 8 (the coarse p-values of few pairs)
    assert by_pairs[16].measured[latency] >= 0.95 and by_pairs[16].measured[throughput] >= 0.95
    assert by_pairs[8].measured[latency] < by_pairs[16].measured[latency]
    assert by_pairs[16].measured[untouched] <= 0.05
    for row in rows:
        assert abs(row.shifted[0.05][latency] - row.measured[latency]) <= 0.2, row
        assert row.shifted[0.02][latency] <= row.shifted[0.05][latency] + 0.05
    assert [row.overlapping for row in rows] == [False, False, False, False, True]
    check = PowerCheck(groups, slowdown, 0.01, (0.02, 0.05), tuple(series), tuple(rows), 12.0, ())
    smallest = check.smallest_pairs(0.05)
    found = smallest[latency]
    assert smallest[untouched] is None and found is not None and found <= 16
    document = to_dict(check)
    assert document["schema"] == "pytest-accel/ab-power" and len(document["rows"]) == 5
    assert document["rows"][2]["seconds"] == 2 * 16 * 12.0
    table = markdown(check)
    assert "| metric | sd ln(A2/A) | 8 pairs (3 min) |" in table and "40* pairs" in table
    assert "| A/A: any metric flagged |" in table and "Smallest number of pairs catching 5%" in table
    with pytest.raises(AbError, match="no timed metric was reported by every run"):
        analyse([], groups, slowdown, 0.01)


@pytest.mark.workload  # 9 fresh pytest processes
def test_the_command_runs_three_arms_and_reanalyses_what_it_ran(pytester: pytest.Pytester,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makepyfile(test_toy="""
def test_speed(accel, spin):
    accel.check(*accel.measure_latency("toy.step", lambda: spin(0.002)).metrics())
""")
    pytester.makeconftest(CLOCKED_CONFTEST)
    pytester.makeini("[pytest]\naddopts = --device=spin --accel-profile=quick --benchmark-disable\n")
    out = pytester.path / "power"
    args = ["ab-power", "--groups", "3", "--changes", "0.1", "--resamples", "5", "--out", str(out), "--",
            str(pytester.path), f"--rootdir={pytester.path}"]
    assert main(args) == 0, capsys.readouterr()
    printed = capsys.readouterr()
    runs = sorted(p.name for p in (out / "runs").glob("run-*.json"))
    assert [name.rsplit("-", 1)[1] for name in runs] == ["A.json", "A2.json", "B.json", "A.json", "B.json",
                                                         "A2.json", "A2.json", "A.json", "B.json"]
    document = json.loads((out / "ab-power.json").read_text())
    assert [row["pairs"] for row in document["rows"]] == [3]
    assert {name.split()[-1] for name in document["spread"]} >= {"toy.step.latency"}
    assert "| metric | sd ln(A2/A) |" in printed.out and "ab-power.md" in printed.out
    assert not (pytester.path / "baselines").exists(), "the power check writes no baselines into the project"
    # the same runs judged as the gate self-check judges its own (tools/gate_from_power_runs.py)
    spec = importlib.util.spec_from_file_location("gate_from_power_runs",
                                                  Path(__file__).parents[1] / "tools" / "gate_from_power_runs.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(out), "--out", str(out / "gate.json")]) == 0
    assert capsys.readouterr().out.startswith("gate self-check: 3 runs per condition")
    assert json.loads((out / "gate.json").read_text())["runs_per_condition"] == 3
    # the analysis again from the same reports, without running anything
    (out / "ab-power.json").unlink()
    assert main([*args[:-3], "--reuse", "--"]) == 0
    again = json.loads((out / "ab-power.json").read_text())
    assert again["groups"] == 3 and again["seconds_per_run"] > 0  # from the reports' creation times


@pytest.mark.parametrize(("argv", "said"), [
    (["--groups", "2", "--", "x"], "--groups 2: at least 3 are needed"),
    (["--slowdown", "1.5", "--", "x"], "--slowdown 1.5: a fraction between 0 and 1"),
    (["--changes", "0.02,five", "--", "x"], "--changes '0.02,five': expected fractions separated by commas"),
    (["--changes", "0.02,2", "--", "x"], "--changes '0.02,2': 2.0 is not a slowdown between 0 and 1"),
    (["--env", "NOPE", "--", "x"], "--env 'NOPE': expected NAME=VALUE"),
    ([], "no tests given"),
    (["--python", "/no/such/python", "--", "x"], "interpreter '/no/such/python' does not run"),
    (["--out", "/proc/no-such-folder", "--", "x"], "--out /proc/no-such-folder: not writable"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], said: str, tmp_path: object,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ab-power", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err
