"""Validation of each option where it enters: a one-line error naming the value and what is allowed."""

from __future__ import annotations

import pytest

from pytest_accel.options import (
    OPT_BASELINE_DIR,
    OPT_GATE,
    OPT_INJECT_SLOWDOWN,
    OPT_LATENCY_BASIS,
    OPT_MISSING,
    OPT_PROFILE,
    OPT_RECORD_RUN,
    OPT_REPORT,
    OPT_UPDATE,
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([f"{OPT_PROFILE}=fast"], "ERROR: --accel-profile='fast' is not allowed; choose one of: quick, standard, full"),
        ([f"{OPT_MISSING}=ignore"], "ERROR: --accel-missing-baseline='ignore' is not allowed; choose one of: fail, "
                                    "warn, record"),
        (
            [f"{OPT_GATE}=accuracy,speed"],
            "ERROR: --accel-gate='accuracy,speed': unknown kind 'speed'; allowed: accuracy, parity, convergence, "
            "latency, throughput, memory, startup, energy, share, all, none",
        ),
        ([f"{OPT_GATE}="], "ERROR: --accel-gate='': unknown kind (empty); allowed: *"),
        ([f"{OPT_LATENCY_BASIS}=relative"], "ERROR: --accel-latency-basis='relative' is not allowed; choose one of: "
                                            "auto, both, absolute, normalised, adjusted"),
        ([OPT_UPDATE, f"{OPT_MISSING}=fail"], "ERROR: --accel-update-baselines records every metric, so "
                                              "--accel-missing-baseline=fail cannot apply; drop one of the two"),
        (["--device="], "ERROR: --device='': empty device spec; use e.g. --device=cpu"),
        (["--accel-hourly-price=free"], "ERROR: --accel-hourly-price 'free': expected a number of US dollars per hour "
                                        "above 0 and at most 1e+06"),
        (["--accel-cpu-ghz=0"], "ERROR: --accel-cpu-ghz '0': expected a number of GHz above 0 and at most 10"),
        (["--accel-datasheet=missing.toml"], "ERROR: *datasheet *missing.toml: cannot read it (*"),
    ],
)
def test_bad_option_values(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert len([line for line in result.stderr.lines if line.startswith("ERROR")]) == 1


def test_bad_ini_gate(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naccel_gate = latency, sped\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini accel_gate='latency, sped': unknown kind 'sped'; allowed: *"])


def test_unwritable_baseline_dir_when_writing(pytester: pytest.Pytester) -> None:
    blocker = pytester.path / "not-a-folder"
    blocker.write_text("a file where the baselines should go")
    result = pytester.runpytest(f"{OPT_BASELINE_DIR}={blocker / 'baselines'}", OPT_UPDATE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --accel-baseline-dir=*not-a-folder/baselines: not writable: Not a directory "
         "(--accel-update-baselines writes baselines there)"]
    )


def test_read_only_baseline_dir_is_fine_when_only_comparing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest(f"{OPT_BASELINE_DIR}={pytester.path / 'nowhere' / 'yet'}")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "nowhere").exists(), "a comparing run must not create folders"


def test_baseline_dir_that_is_a_file(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("baselines.json").write_text("{}")
    result = pytester.runpytest(f"{OPT_BASELINE_DIR}=baselines.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --accel-baseline-dir=*baselines.json: not a folder"])


def test_report_path_that_is_a_folder(pytester: pytest.Pytester) -> None:
    pytester.mkdir("reports")
    result = pytester.runpytest(f"{OPT_REPORT}=reports")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --accel-report=reports: is a folder; give a file path such as "
                                 "accel-report.json"])


def test_unwritable_report_path_names_the_path_given_and_what_is_wrong(pytester: pytest.Pytester) -> None:
    """The folder of the report is a file: the message names the option's value, the folder and the reason (it
    is not the report path that is a folder, nor a permission problem)."""
    pytester.path.joinpath("notes.txt").write_text("a file, not a folder")
    result = pytester.runpytest(f"{OPT_REPORT}=notes.txt/run.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --accel-report=notes.txt/run.json: the report cannot be written in "
                                 "*notes.txt: exists and is not a folder"])
    pytester.makeini("[pytest]\naccel_report = notes.txt/sub/run.json\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini accel_report=notes.txt/sub/run.json: the report cannot be written in "
                                 "*notes.txt?sub: *"])


def test_bad_ini_alpha(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naccel_alpha = 5\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini accel_alpha='5' must be between 0 and 1 (exclusive)"])


def test_option_conflicts_are_usage_errors(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(OPT_UPDATE, OPT_RECORD_RUN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*starts every speed metric's history anew*give one of the two"])
    result = pytester.runpytest(f"{OPT_INJECT_SLOWDOWN}=fast")
    result.stderr.fnmatch_lines(["ERROR: --accel-inject-slowdown='fast': expected a fraction between 0 and 10*"])
