"""What a person reads after a run fits a screen: pytest-benchmark's own table and header line are hidden while the
summary shows the measurements (one option brings them back), and prose lines wrap at 160 characters."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_BENCHMARK_TABLE, OPT_SUMMARY
from pytest_accel.report.lines import MAX_LINE_WIDTH, Line
from pytest_accel.report.matrix import RED


def test_the_benchmark_table_and_header_are_hidden_unless_asked_for(latency_project: pytest.Pytester) -> None:
    hidden = latency_project.runpytest("-p", "no:cacheprovider")
    hidden.assert_outcomes(passed=1)
    text = hidden.stdout.str()
    assert "benchmark:" not in text and "Name (time in" not in text, text
    hidden.stdout.fnmatch_lines(["*= pytest-accel =*", "    latency *"])
    shown = latency_project.runpytest("-p", "no:cacheprovider", OPT_BENCHMARK_TABLE)
    shown.stdout.fnmatch_lines(["benchmark: * (defaults: *", "*Name (time in *", "*test_latency*"])
    assert "= pytest-accel =" in shown.stdout.str()


def test_without_the_summary_the_benchmark_table_stays(latency_project: pytest.Pytester) -> None:
    result = latency_project.runpytest("-p", "no:cacheprovider", f"{OPT_SUMMARY}=none")
    result.stdout.fnmatch_lines(["benchmark: * (defaults: *", "*Name (time in *"])


def test_no_line_of_a_run_without_baselines_is_wider_than_160(latency_project: pytest.Pytester) -> None:
    """The no-baseline warning alone was 230 characters."""
    result = latency_project.runpytest("-p", "no:cacheprovider")
    lines = result.stdout.lines
    assert any(line.startswith("!! 3 gated metric(s) had no baseline") for line in lines)
    ours = [line for line in lines if line.startswith("accel:")] + lines[lines.index(next(
        line for line in lines if "= pytest-accel =" in line)):]  # (not the in-process run's rewrite warning)
    assert max(len(line) for line in ours) <= MAX_LINE_WIDTH, max(ours, key=len)


def test_a_long_line_wraps_between_words_under_a_hanging_indent_keeping_its_markup() -> None:
    words = [f"word{i}" for i in range(60)]
    line = Line((("  x ", RED), (" ".join(words), {})))
    wrapped = list(line.wrapped(50))
    texts = [w.text for w in wrapped]
    assert len(texts) > 1 and all(len(t) <= 50 for t in texts), texts
    assert texts[0].startswith("  x word0") and all(t.startswith("      word") for t in texts[1:]), texts
    assert " ".join(t.strip() for t in texts) == line.text.strip()  # nothing lost, nothing added
    assert wrapped[0].parts[0] == ("  x ", RED)


def test_a_word_longer_than_a_line_stays_whole_and_a_short_line_is_untouched() -> None:
    path = "/very/long/path" * 10
    texts = [w.text for w in Line.of(f"written {path} and more").wrapped(40)]
    assert texts == ["written", f"    {path}", "    and more"]
    short = Line.of("short")
    assert list(short.wrapped(40)) == [short]
