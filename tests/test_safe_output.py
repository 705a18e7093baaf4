"""Names from tests and devices reach the terminal without control characters and Markdown without raw HTML or
markup (found by a black-box attack: an ANSI escape in a metric name recoloured the terminal, and `<script>` stood
raw in the scorecard)."""

from __future__ import annotations

import re

import pytest

from pytest_accel.cli import main
from pytest_accel.options import OPT_MISSING, OPT_SUMMARY
from pytest_accel.report.document import load_report
from pytest_accel.report.safe_text import markdown_code, markdown_text, terminal_text

HOSTILE = "toy.\x1b[31mred\nline<script>alert(1)</script>|*bold*"
HOSTILE_TEST = f"""
from pytest_accel.metrics import Metric

def test_hostile(accel):
    accel.check(Metric({HOSTILE!r}, 0.9, "", "accuracy", "higher"))
"""


def test_helpers_neutralise_controls_html_and_markup() -> None:
    assert terminal_text("a\x1b[31mb\nc\u202ed") == "a\\x1b[31mb\\x0ac\\u202ed"
    assert markdown_text("<script>|*x*_[y](z)") == "&lt;script&gt;\\|\\*x\\*_\\[y\\](z)"
    assert markdown_code("a|`b`<i>\n") == "`` a\\|`b`<i>\\x0a ``".replace("`` a", "``a").replace("\\x0a ``",
                                                                                                  "\\x0a``")


def test_a_hostile_metric_name_reaches_terminal_and_markdown_neutralised(pytester: pytest.Pytester,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_toy=HOSTILE_TEST)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    # the store refuses to write such a name: the test fails naming it, and nothing is written
    result = pytester.runpytest(f"{OPT_MISSING}=record")
    assert result.ret == 1 and "\x1b" not in result.stdout.str() and "is not a name" in result.stdout.str()
    assert not list(pytester.path.joinpath("baselines").rglob("*.json"))
    # not stored, it is still reported: every output shows it defused
    result = pytester.runpytest(f"{OPT_MISSING}=warn", f"{OPT_SUMMARY}=full", "--accel-scorecard=cards")
    assert result.ret == 0
    output = result.stdout.str()
    assert "\x1b" not in output and "\\x1b[31mred\\x0aline" in output
    markdown = summary.read_text() + "".join(p.read_text() for p in (pytester.path / "cards").glob("*.md"))
    assert "\x1b" not in markdown
    # inline code shows its text literally (HTML included); everywhere else HTML became entities
    outside_code = re.sub(r"``.*?``|`[^`]*`", "", markdown)
    assert "<script>" not in outside_code, outside_code
    assert "line&lt;script&gt;alert(1)&lt;/script&gt;\\|\\*bold\\*" in outside_code, outside_code


def test_a_report_with_a_hostile_metric_name_stays_readable(pytester: pytest.Pytester) -> None:
    """Regression: the run passed and wrote the name raw into --accel-report, whose one reader (compare, report,
    the gate self-check) then refused the whole file for its control characters; the writer escapes what the
    reader refuses, as the terminal does."""
    pytester.makepyfile(test_toy=HOSTILE_TEST.replace("red\\n", "red\\u200b\\u2028\\n"))
    result = pytester.runpytest(f"{OPT_MISSING}=warn", "--accel-report=report.json")
    assert result.ret == 0
    document = load_report(pytester.path / "report.json")
    [metric] = document["results"][0]["metrics"]
    assert metric["name"] == "toy.\\x1b[31mred\\u200b\\u2028\\x0aline<script>alert(1)</script>|*bold*"
    assert main(["compare", str(pytester.path / "report.json"), str(pytester.path / "report.json")]) == 0
