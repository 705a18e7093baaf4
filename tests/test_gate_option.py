"""--accel-gate: a regression in a kind outside the gate is reported (summary, legend, full table), not failed; the
same regression inside the gate fails."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_GATE, OPT_MISSING, OPT_SUMMARY


def test_ungated_regression_is_reported_not_failed(clocked_latency_project: pytest.Pytester) -> None:
    project = clocked_latency_project
    project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    project.path.joinpath("delay.txt").write_text("0.006")
    result = project.runpytest(f"{OPT_GATE}=accuracy,parity")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["    latency * ms !*", "*! regression outside the gate (reported, not failed)*",  # in the legend
         "*verdict(s) not a plain pass: * regression(s) outside the gate (reported, not failed)*",
         "  ! spin toy::test_latency toy.latency * ms, baseline * ms, +*%: median time +*"]
    )
    result = project.runpytest(f"{OPT_GATE}=accuracy,parity", f"{OPT_SUMMARY}=full")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*toy.latency * regression (not gated)", "*regression(s) in kinds outside the gate (reported, not failed):",
         "  spin toy.latency: median time +*"]
    )
    project.runpytest(f"{OPT_GATE}=latency").assert_outcomes(failed=1)
