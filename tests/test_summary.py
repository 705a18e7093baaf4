"""--accel-summary: the compact matrix by default, the full tables under -v or full, only warnings under none."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_DEVICE, OPT_MISSING, OPT_REPORT, OPT_SUMMARY
from tests.helpers import HOST_DEVICE_CONFTEST

#: a test in two dtypes (their values from value-<dtype>.txt) beside a test without parameters
DTYPES_TEST = """
from pathlib import Path

import pytest
from pytest_accel.metrics import Metric

@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_accuracy(device, dtype, accel):
    value = float(Path(__file__).with_name(f"value-{dtype}.txt").read_text())
    accel.check(Metric("toy.accuracy", value, "", "accuracy", "higher"),
                Metric("toy.images", 12.0, "items/s", "info", "higher"))

def test_error(device, accel):
    accel.check(Metric("toy.max_error", 0.001, "", "parity", "lower", limit=0.01))
"""

TWO_DEVICES = f"[pytest]\naddopts = {OPT_DEVICE}=cpu {OPT_DEVICE}=ort:cpu\n"
RED_BOLD = "\x1b[31m\x1b[1m"


@pytest.fixture
def dtypes_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_toy=DTYPES_TEST)
    pytester.makeini(TWO_DEVICES)
    for dtype in ("fp32", "bf16"):
        pytester.path.joinpath(f"value-{dtype}.txt").write_text("0.90")
    return pytester


@pytest.fixture
def recorded(dtypes_project: pytest.Pytester) -> pytest.Pytester:
    result = dtypes_project.runpytest(f"{OPT_MISSING}=record")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["4 baseline file(s) written (--accel-missing-baseline=record):",
                                 "  created baselines/cpu-*/toy/test_accuracy-fp32.json"])
    assert "none -> 0.9" not in result.stdout.str(), "a new file's values are in the matrix, marked as written"
    return dtypes_project


def test_compact_is_the_default_one_matrix_with_dtypes_as_columns(recorded: pytest.Pytester) -> None:
    result = recorded.runpytest()
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "*= pytest-accel =*",
            # the test without parameters folded into each device's first column; the reported-only row left out
            "  metric * cpu fp32 * cpu bf16 * ort:cpu fp32 * ort:cpu bf16",
            "  toy::test_accuracy",
            "    accuracy  * 0.9 ✓ * 0.9 ✓ * 0.9 ✓ * 0.9 ✓",
            "  toy::test_error",
            "    max_error  *0.001 ✓ * 0.001 ✓",
            "  legend: ✓ pass   empty: not run there*",
            "*a test without parameters: under its device's first column*",
            "*1 reported-only metric(s) more: --accel-summary=full",
        ]
    )
    assert "images" not in result.stdout.str()
    text = result.stdout.str()
    for full_only in ("cpu -> cpu-", "side by side", "  test  ", "not a plain pass"):
        assert full_only not in text, full_only
    assert len(text[text.index("= pytest-accel ="):].splitlines()) < 15


def test_a_regression_is_listed_with_its_reason(recorded: pytest.Pytester) -> None:
    recorded.path.joinpath("value-bf16.txt").write_text("0.85")  # -5.6%, beyond the 1% accuracy tolerance
    result = recorded.runpytest()
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(
        [
            "    accuracy  * 0.9 ✓ * 0.85 ✗ * 0.9 ✓ * 0.85 ✗",
            "  legend: ✓ pass   ✗ regression (fails the test)   *",
            "2 verdict(s) not a plain pass: 2 regression(s) that fail their test",
            "  ✗ cpu toy::test_accuracy-bf16 toy.accuracy 0.85, baseline 0.9, -5.6%: "
            "worse than the baseline beyond the tolerance",
            "  ✗ ort:cpu toy::test_accuracy-bf16 toy.accuracy 0.85, baseline 0.9, -5.6%: *",
        ]
    )


def test_colour_marks_regressions_red_and_passes_green(recorded: pytest.Pytester) -> None:
    recorded.path.joinpath("value-bf16.txt").write_text("0.85")
    text = recorded.runpytest("--color=yes").stdout.str()
    assert f"{RED_BOLD}cpu toy::test_accuracy-bf16 toy.accuracy 0.85" in text
    assert "0.9 \x1b[32m✓\x1b[0m" in text and f"0.85 {RED_BOLD}✗\x1b[0m" in text
    plain = recorded.runpytest("--color=no").stdout.str()
    assert "\x1b[" not in plain and "  ✗ cpu toy::test_accuracy-bf16" in plain


def test_verbose_and_full_give_the_tables(recorded: pytest.Pytester) -> None:
    tables = [
        "cpu -> cpu-* (*)",
        "  test * metric * value * baseline * delta * verdict",
        "  toy::test_accuracy-fp32 * toy.accuracy * 0.9 * 0.9 * +0.0% * pass",
        "  toy::test_accuracy-bf16 * toy.accuracy * 0.9 * 0.9 * +0.0% * pass",
        "ort:cpu -> ort-cpu-* (*)",
        "side by side (speed-up over cpu for latency, throughput and first run)",
    ]
    for args in (["-v"], [f"{OPT_SUMMARY}=full"]):
        result = recorded.runpytest(*args)
        result.assert_outcomes(passed=6)
        result.stdout.fnmatch_lines(tables)
        assert "legend:" not in result.stdout.str()


def test_none_prints_only_warnings_and_the_report_path(dtypes_project: pytest.Pytester) -> None:
    dtypes_project.makeini(f"{TWO_DEVICES}accel_summary = none\n")
    result = dtypes_project.runpytest("-v", f"{OPT_REPORT}=r.json")  # the ini chose: -v does not override it
    result.assert_outcomes(passed=6)
    summary = result.stdout.str().split("= pytest-accel =", 1)[1].splitlines()[1:]
    assert summary[0].startswith("!! 4 gated metric(s) had no baseline, so nothing gated them")
    assert summary[1].startswith("    ")  # the warning, wrapped at 160 characters
    assert summary[2].startswith("JSON report: ") and summary[2].endswith("r.json")
    assert summary[3].startswith("=====") and " passed" in summary[3]

    result = dtypes_project.runpytest(f"{OPT_SUMMARY}=compact")  # the command line wins over the ini
    result.stdout.fnmatch_lines(["  legend: *", "4 metric(s) had no baseline (--accel-missing-baseline=warn: not "
                                 "checked), marked · above; their 4 file(s) are listed under --accel-summary=full",
                                 f"  record them with: pytest *{OPT_SUMMARY}=compact* {OPT_MISSING}=record"])


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        ("", [f"{OPT_SUMMARY}=short"], "ERROR: --accel-summary='short' is not allowed; choose one of: compact, full, "
                                       "none"),
        ("accel_summary = brief\n", [], "ERROR: ini accel_summary='brief' is not allowed; choose one of: compact, "
                                        "full, none"),
    ],
)
def test_a_bad_form_is_a_usage_error(pytester: pytest.Pytester, ini: str, args: list[str], message: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


@pytest.mark.workload
def test_an_output_that_cannot_write_the_marks_gets_ascii_ones(dtypes_project: pytest.Pytester,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    dtypes_project.makeconftest(HOST_DEVICE_CONFTEST)  # the fresh process need not import torch
    dtypes_project.makeini(f"[pytest]\naddopts = {OPT_DEVICE}=host {OPT_DEVICE}=ort:cpu\n")
    dtypes_project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=6)
    monkeypatch.setenv("PYTHONIOENCODING", "ascii")
    result = dtypes_project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["    accuracy  * 0.9 ok * 0.9 ok * 0.9 ok * 0.9 ok",
                                 "  legend: ok pass   empty: not run there*"])


MANY_METRICS_TEST = """
from pathlib import Path
from pytest_accel.metrics import Metric

def test_many(accel):
    value = float(Path(__file__).with_name("value.txt").read_text())
    accel.check(*(Metric(f"toy.m{i:02}", value, "", "accuracy", "higher") for i in range(15)))
"""


def test_a_long_list_is_capped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=MANY_METRICS_TEST)
    pytester.path.joinpath("value.txt").write_text("0.9")
    pytester.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    pytester.path.joinpath("value.txt").write_text("0.8")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["15 verdict(s) not a plain pass: 15 regression(s) that fail their test",
                                 "  ✗ cpu toy::test_many toy.m00 0.8, baseline 0.9, -11.1%: *",
                                 "  ✗ cpu toy::test_many toy.m11 0.8, *",
                                 f"  ... and 3 more ({OPT_SUMMARY}=full lists every one)"])


def test_tests_of_one_name_in_two_folders_keep_apart(pytester: pytest.Pytester) -> None:
    for folder, value in (("old", "0.8"), ("new", "0.9")):
        pytester.mkpydir(folder).joinpath("test_toy.py").write_text(
            "from pytest_accel.metrics import Metric\n\n"
            f"def test_accuracy(accel):\n    accel.check(Metric('toy.accuracy', {value}, '', 'accuracy', 'higher'))\n"
        )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["  new/toy::test_accuracy", "    accuracy * 0.9 ·",
                                 "  old/toy::test_accuracy", "    accuracy * 0.8 ·"])
