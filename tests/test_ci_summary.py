"""Under GitHub Actions (``GITHUB_STEP_SUMMARY`` names a file) the run appends its summary in Markdown: regressions
with their files and update commands, other verdicts that are not a pass, missing baselines with the record
command, and the per-device matrix. Other steps' content stays; an unwritable path warns and fails nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_accel.options import OPT_MISSING, OPT_UPDATE
from pytest_accel.report.markdown import STEP_SUMMARY_ENV
from tests.helpers import HOST_DEVICE_CONFTEST

PROJECT = """
from pathlib import Path
from pytest_accel.metrics import Metric

def test_toy(accel, device):
    value = float(Path(__file__).with_name("value.txt").read_text())
    first_call = 0.02 if device.spec == "cpu" else 0.01
    accel.check(Metric("toy.accuracy", value, "", "accuracy", "higher"),
                Metric("toy.first_call", first_call, "s", "startup", "lower"))

def test_new(accel):
    accel.check(Metric("toy.other", 3.0, "", "accuracy", "higher"))
"""
DEVICES = ("--device=cpu", "--device=ort:cpu")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_ci=PROJECT)
    pytester.path.joinpath("value.txt").write_text("0.90")
    result = pytester.runpytest(*DEVICES, "-k", "test_toy", f"{OPT_MISSING}=record")
    assert result.ret == pytest.ExitCode.OK
    pytester.path.joinpath("value.txt").write_text("0.50")
    return pytester


def test_the_summary_is_appended_with_regressions_first(project: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    summary = project.path / "step-summary.md"
    summary.write_text("## an earlier step\n\n")
    monkeypatch.setenv(STEP_SUMMARY_ENV, str(summary))
    result = project.runpytest(*DEVICES)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = summary.read_text()
    assert text.startswith("## an earlier step\n\n## pytest-accel\n")
    sections = [line for line in text.splitlines() if line.startswith("### ")]
    assert sections == ["### Regressions", "### No baseline (not checked)", "### Per device"]
    assert "6 metric(s) on 2 device(s) (cpu, ort:cpu): **2 regression(s)** (2 failing their test)" in text
    regression = next(line for line in text.splitlines() if line.startswith("- ✗ **cpu**"))
    assert "`toy.accuracy`: obtained 0.5, baseline 0.9, -44.4% (tolerance 0.01)" in regression
    assert "regression (fails the test)" in regression
    assert "  - baseline: `baselines/cpu-" in text and "/ci/test_toy.json`" in text
    update = next(line for line in text.splitlines() if line.startswith("  - update:"))
    assert "test_ci.py::test_toy[cpu]" in update and f"--device=cpu {OPT_UPDATE}`" in update
    assert "`toy.other`" not in text.split("### No baseline")[0]
    assert "toy.other" in text.split("### No baseline")[1].split("### Per device")[0]
    assert f"{OPT_MISSING}=record`" in text
    matrix = text.split("### Per device")[1]
    assert "| metric | cpu | ort:cpu |" in matrix
    assert "| toy.accuracy | 0.5 ✗ | 0.5 ✗ |" in matrix
    assert "| toy.first_call | 20 ms ✓ | 10 ms (2.00x) ✓ |" in matrix
    assert "| toy.other | 3 · | 3 · |" in matrix
    assert "Legend: ✓ pass; ✗ regression (fails the test); · no baseline (not checked)." in matrix


def test_ungated_and_other_verdicts_follow_the_regressions(project: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    summary = project.path / "step-summary.md"
    monkeypatch.setenv(STEP_SUMMARY_ENV, str(summary))
    project.path.joinpath("value.txt").write_text("0.99")  # better than its baseline beyond the tolerance
    result = project.runpytest("--device=cpu", "-k", "test_toy")
    assert result.ret == pytest.ExitCode.OK
    text = summary.read_text()
    assert "**0 regression(s)**" in text
    assert "### Regressions" not in text
    assert "- + **cpu** `ci::test_toy` `toy.accuracy`: obtained 0.99, baseline 0.9, +10.0%" in text

    project.path.joinpath("value.txt").write_text("0.50")
    summary.unlink()
    result = project.runpytest("--device=cpu", "-k", "test_toy", "--accel-gate=none")
    assert result.ret == pytest.ExitCode.OK
    text = summary.read_text()
    assert "- ! **cpu**" in text and "regression outside the gate (reported, not failed)" in text
    assert "(0 failing their test)" in text


def test_an_unwritable_summary_path_warns_and_fails_nothing(project: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project.path / "a-folder"
    folder.mkdir()
    monkeypatch.setenv(STEP_SUMMARY_ENV, str(folder))
    project.path.joinpath("value.txt").write_text("0.90")
    result = project.runpytest("--device=cpu", "-k", "test_toy")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"*pytest-accel: cannot append the Markdown summary to {STEP_SUMMARY_ENV}={folder}:*"])


@pytest.mark.workload
def test_under_xdist_the_controller_appends_one_summary(project: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    torch_free = ("--device=host", "--device=ort:cpu")  # workers that need not import torch
    project.makeconftest(HOST_DEVICE_CONFTEST)
    project.path.joinpath("value.txt").write_text("0.90")
    assert project.runpytest(*torch_free, "-k", "test_toy", f"{OPT_MISSING}=record").ret == pytest.ExitCode.OK
    project.path.joinpath("value.txt").write_text("0.50")
    summary = project.path / "step-summary.md"
    monkeypatch.setenv(STEP_SUMMARY_ENV, str(summary))
    result = project.runpytest("-n", "2", "-p", "no:cacheprovider", *torch_free)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = summary.read_text()
    assert text.count("## pytest-accel") == 1
    assert "**2 regression(s)**" in text and "| metric | host | ort:cpu |" in text


def test_without_the_variable_nothing_is_written(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STEP_SUMMARY_ENV, raising=False)
    result = project.runpytest("--device=cpu", "-k", "test_toy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert not [path for path in Path(project.path).rglob("*.md") if ".pytest_cache" not in path.parts]


def test_a_console_command_posts_its_markdown_or_says_in_one_line_why_not(
        tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from pytest_accel.report.markdown import STEP_SUMMARY_ENV, post_to_step_summary

    page = tmp_path / "summary.md"
    monkeypatch.setenv(STEP_SUMMARY_ENV, str(page))
    post_to_step_summary("## table", "pytest-accel ab")
    assert page.read_text() == "## table\n"
    monkeypatch.setenv(STEP_SUMMARY_ENV, str(tmp_path))  # a folder: cannot be appended to
    post_to_step_summary("## table", "pytest-accel ab")
    assert capsys.readouterr().err.startswith(f"pytest-accel ab: cannot append to the step summary {tmp_path}: ")
