"""The baseline life cycle: missing -> record -> pass -> worse -> fail -> update -> pass."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_MISSING, OPT_SUMMARY, OPT_UPDATE
from tests.helpers import baseline_files, literal, load_json


def test_accuracy_life_cycle(accuracy_project: pytest.Pytester) -> None:
    project = accuracy_project
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 metric(s) had no baseline*", f"*record them with: pytest*{OPT_MISSING}=record*"])
    assert baseline_files(project.path) == []

    result = project.runpytest(f"{OPT_MISSING}=fail")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal("*toy.accuracy [accuracy]: no baseline*")])

    result = project.runpytest(f"{OPT_MISSING}=record")
    result.assert_outcomes(passed=1)
    [path] = baseline_files(project.path)
    assert path.relative_to(project.path).parts[2:] == ("toy", "test_accuracy.json")
    assert path.parent.parent.name.startswith("cpu-")
    stored = load_json(path)
    assert stored["metrics"]["toy.accuracy"]["value"] == pytest.approx(0.90)
    assert stored["device"]["backend"] == "torch" and "torch" in stored["software"]

    assert project.runpytest().ret == 0

    project.path.joinpath("value.txt").write_text("0.85")  # -5.6%, beyond the 1% accuracy tolerance
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-accel: 1 check(s) failed on cpu (cpu-*)",
            literal("*toy.accuracy [accuracy]: obtained 0.85, expected 0.9, diff -5.6%, tolerance 0.01 (default)*"),
            "*baseline: baselines/cpu-*/toy/test_accuracy.json",
            "*obtained: *accel-obtained*test_accuracy.json",
            literal(f"*update:   pytest 'test_toy.py::test_accuracy[cpu]' --device=cpu {OPT_UPDATE}"),
        ]
    )
    assert load_json(path)["metrics"]["toy.accuracy"]["value"] == pytest.approx(0.90), "a failure must not write"

    result = project.runpytest(OPT_UPDATE)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 baseline file(s) written*", "*updated baselines/cpu-*/toy/test_accuracy.json",
                                 "*toy.accuracy: 0.9 -> 0.85"])
    assert load_json(path)["metrics"]["toy.accuracy"]["value"] == pytest.approx(0.85)
    project.runpytest().assert_outcomes(passed=1)


def test_latency_life_cycle(clocked_latency_project: pytest.Pytester) -> None:
    project = clocked_latency_project
    project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    [path] = baseline_files(project.path)
    stored = load_json(path)["metrics"]
    latency = stored["toy.latency"]
    assert latency["kind"] == "latency" and latency["direction"] == "lower" and latency["unit"] == "s"
    assert latency["value"] == pytest.approx(0.002, rel=0.05)
    assert len(latency["samples"]) >= 20
    assert latency["summary"]["n"] == len(latency["samples"]) and "p99" not in latency["summary"]
    assert {"toy.first_run", "toy.throughput"} <= set(stored)

    project.runpytest().assert_outcomes(passed=1)

    project.path.joinpath("delay.txt").write_text("0.006")  # three times slower, the probe unchanged
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            literal(
                "*toy.latency [latency]: obtained *ms, expected *ms, diff +*%, tolerance 0.05 (default); median time "
                "+*%, slower beyond the tolerance of 0.1; Mann-Whitney p=*; confirmed by a second measurement (*)"
            ),
            literal("*toy.throughput [throughput]: obtained*"),
        ]
    )

    project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)
    assert load_json(path)["metrics"]["toy.latency"]["value"] == pytest.approx(0.006, rel=0.05)
    project.runpytest().assert_outcomes(passed=1)


def test_faster_is_flagged_not_failed(clocked_latency_project: pytest.Pytester) -> None:
    project = clocked_latency_project
    project.path.joinpath("delay.txt").write_text("0.006")
    project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    project.path.joinpath("delay.txt").write_text("0.002")
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*verdict(s) not a plain pass: * suspiciously faster",
                                 "  + spin toy::test_latency toy.latency *, baseline *: *"])
    assert "check the work is still done" in " ".join(result.stdout.str().split())  # wherever the line wraps
    result = project.runpytest(f"{OPT_SUMMARY}=full")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*metric(s) suspiciously faster than their baseline*", "*spin toy.latency: *"])


def test_update_does_not_excuse_a_bound_or_a_reference(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_accel.metrics import Metric

        def test_bounds(accel):
            accel.check(Metric("toy.error", 0.5, "", "parity", "lower", limit=0.1),
                        Metric("toy.map", 0.5, "", "accuracy", "higher", expected=0.9, expected_source="ref.json"),
                        Metric("toy.latency_like", 0.5, "s", "startup", "lower"))
        """
    )
    result = pytester.runpytest(OPT_UPDATE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-accel: 2 check(s) failed on cpu*",
            literal("*toy.error [parity]: obtained 0.5, expected <= 0.1 (the metric's limit); outside the bound"),
            literal("*toy.map [accuracy]: obtained 0.5, expected 0.9 (reference ref.json), diff -44.4%*"),
        ]
    )
    result.stdout.fnmatch_lines(["*no baseline written: a failing bound or reference check invalidates this run*"])
    assert baseline_files(pytester.path) == [], "an invalid run records nothing, not even its other metrics"
