"""The exit codes docs/exit-codes.md promises a CI script, one case each as the page names it; the README's summary
of them links there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_accel.cli import main
from pytest_accel.options import OPT_FAIL_INCONCLUSIVE, OPT_GATE, OPT_MISSING

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "exit-codes.md"
README = ROOT / "README.md"


def _record(project: pytest.Pytester) -> None:
    assert project.runpytest("--device=cpu", f"{OPT_MISSING}=record").ret == pytest.ExitCode.OK


def test_0_all_passed_missing_baselines_warned_and_ungated_regressions(accuracy_project: pytest.Pytester) -> None:
    assert accuracy_project.runpytest("--device=cpu").ret == pytest.ExitCode.OK  # no baseline: warned
    _record(accuracy_project)
    assert accuracy_project.runpytest("--device=cpu").ret == pytest.ExitCode.OK
    accuracy_project.path.joinpath("value.txt").write_text("0.50")
    ungated = accuracy_project.runpytest("--device=cpu", f"{OPT_GATE}=latency")
    assert ungated.ret == pytest.ExitCode.OK
    ungated.stdout.fnmatch_lines(["*regression(s) outside the gate (reported, not failed)*"])


def test_1_gated_regression_missing_baseline_under_fail_and_a_damaged_baseline(
        accuracy_project: pytest.Pytester) -> None:
    assert accuracy_project.runpytest("--device=cpu", f"{OPT_MISSING}=fail").ret == pytest.ExitCode.TESTS_FAILED
    _record(accuracy_project)
    accuracy_project.path.joinpath("value.txt").write_text("0.50")
    assert accuracy_project.runpytest("--device=cpu").ret == pytest.ExitCode.TESTS_FAILED
    for baseline in accuracy_project.path.joinpath("baselines").rglob("*.json"):
        baseline.write_text("{not json")
    assert accuracy_project.runpytest("--device=cpu").ret == pytest.ExitCode.TESTS_FAILED


def test_2_interrupted_by_a_collection_error(accuracy_project: pytest.Pytester) -> None:
    accuracy_project.makepyfile(test_broken="import a_module_that_is_not_there\n")
    assert accuracy_project.runpytest("--device=cpu").ret == pytest.ExitCode.INTERRUPTED


def test_3_internal_error_from_a_conftest_hook_that_raises(accuracy_project: pytest.Pytester) -> None:
    accuracy_project.makeconftest("""
        def pytest_accel_register_backends(registry):
            raise RuntimeError("a broken backend")
    """)
    assert accuracy_project.runpytest("--device=cpu").ret == pytest.ExitCode.INTERNAL_ERROR


@pytest.mark.parametrize("args", [
    ["--device=bogus"],  # unknown device spec
    ["--device=cpu", f"{OPT_GATE}=bogus"],  # a bad option value
    ["--device=cpu", f"{OPT_FAIL_INCONCLUSIVE}=1"],  # a flag given a value
])
def test_4_usage_error(accuracy_project: pytest.Pytester, args: list[str]) -> None:
    assert accuracy_project.runpytest(*args).ret == pytest.ExitCode.USAGE_ERROR


def test_4_usage_error_for_a_known_device_this_machine_lacks(accuracy_project: pytest.Pytester) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    result = accuracy_project.runpytest("--device=cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert accuracy_project.runpytest("--device=cuda", "--accel-skip-unavailable").ret == pytest.ExitCode.OK


def test_4_usage_error_for_an_accel_only_marker_without_patterns(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.accel_only()
        def test_x(device):
            pass
    """)
    assert pytester.runpytest("--device=cpu").ret == pytest.ExitCode.USAGE_ERROR


def test_5_no_tests_collected(accuracy_project: pytest.Pytester) -> None:
    assert accuracy_project.runpytest("--device=cpu", "-k", "no_such_test").ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_console_script_0_done_2_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"schema": "pytest-accel/report", "schema_version": 1, "results": []}))
    assert main(["compare", str(report), str(report)]) == 0
    assert main(["compare", str(report), str(tmp_path / "missing.json")]) == 2
    assert main(["detection-reference", "--model", str(tmp_path / "missing.pt")]) == 2
    assert main(["gate-check", "--runs", "2", "--", "suites/test_matmul.py"]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["no-such-command"])
    assert usage.value.code == 2
    capsys.readouterr()


def test_the_page_lists_each_code_tested_here() -> None:
    section = PAGE.read_text(encoding="utf-8")
    for code in ("`0`", "`1`", "`2`", "`3`", "`4`", "`5`"):
        assert f"| {code} |" in section
    for case in ("--accel-gate", "--accel-missing-baseline=fail", "damaged baseline", "unknown `--device`",
                 "collection error", "conftest", "accel_only", "console script", "2 for bad input"):
        assert case in section, case


def test_the_readme_sums_them_up_and_links_the_page() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "(docs/exit-codes.md)" in readme
    for code in ("`0`", "`1`", "`2`", "`3`", "`4`", "`5`"):
        assert code in readme, code
