"""pytest-accel loads in every project sharing its environment: it must not take over their --device option or
their own `device` fixture."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_ACCEL_DEVICE, OPT_MISSING

OWN_DEVICE_OPTION = """
def pytest_addoption(parser):
    parser.addoption("--device", default="their-gpu", help="this project's own device option")
"""

USES_BOTH = """
from pytest_accel.metrics import Metric

def test_theirs(request):
    assert request.config.getoption("--device") == "their-board"

def test_ours(device, accel):
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"))
"""


OURS_ONLY = """
from pytest_accel.metrics import Metric

def test_ours(device, accel):
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"))
"""


def test_a_conftest_with_its_own_device_option_keeps_it(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OWN_DEVICE_OPTION)
    pytester.makepyfile(test_both=USES_BOTH)
    result = pytester.runpytest("-v", "--device=their-board", f"{OPT_ACCEL_DEVICE}=ort:cpu", f"{OPT_MISSING}=record")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "accel: --device belongs to another plugin or conftest here; give pytest-accel's devices with "
        "--accel-device",
        "*test_theirs PASSED*",
        "*test_ours?ort-cpu? PASSED*",
    ])


def test_without_a_clash_both_forms_name_our_devices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ours=OURS_ONLY)
    result = pytester.runpytest("-v", "--device=cpu", f"{OPT_ACCEL_DEVICE}=ort:cpu", f"{OPT_MISSING}=record")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_ours?cpu? PASSED*", "*test_ours?ort-cpu? PASSED*"])
    assert "belongs to another plugin" not in result.stdout.str()


OWN_DEVICE_FIXTURE = """
import pytest

@pytest.fixture
def device():
    return "a camera"

def test_camera(device):
    assert device == "a camera"
"""


def test_a_test_with_its_own_device_fixture_is_not_parametrised(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_camera=OWN_DEVICE_FIXTURE)
    result = pytester.runpytest("-v", "--device=cpu", "--device=ort:cpu")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_camera.py::test_camera PASSED*"])
    assert "test_camera[" not in result.stdout.str()


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OWN_DEVICE_OPTION)
    pytester.makepyfile(test_camera=OWN_DEVICE_FIXTURE)
    result = pytester.runpytest("-p", "no:accel", "--device=x")
    result.assert_outcomes(passed=1)
    assert "accel:" not in result.stdout.str()


def test_ini_twins_fix_what_a_ci_config_wants_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ours=OURS_ONLY)
    pytester.makeini("[pytest]\naccel_devices = cpu, ort:cpu\naccel_missing_baseline = record\n"
                     "accel_report = out/report.json\naccel_profile = quick\naccel_latency_basis = absolute\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_ours?cpu? PASSED*", "*test_ours?ort-cpu? PASSED*"])
    import json

    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert report["options"]["missing_baseline"] == "record" and report["options"]["latency_basis"] == "absolute"
    assert {r["device"] for r in report["results"]} == {"cpu", "ort:cpu"}

    result = pytester.runpytest("--device=cpu", f"{OPT_MISSING}=fail")  # the command line wins
    result.assert_outcomes(passed=1)

    pytester.makeini("[pytest]\naccel_missing_baseline = sometimes\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini accel_missing_baseline='sometimes' is not allowed; choose one of: "
                                 "fail, warn, record"])


def test_a_tolerance_for_a_metric_the_run_does_not_produce_is_warned_about(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ours=OURS_ONLY)
    result = pytester.runpytest(f"{OPT_MISSING}=record", "--accel-tolerance", "toy.acuracy=0.05",
                                "--accel-tolerance", "toy.accuracy=0.02")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["!! --accel-tolerance names metric(s) this run did not produce, so it set nothing: "
                                 "toy.acuracy (a misspelling?*"])
    assert "toy.accuracy (a misspelling" not in result.stdout.str()
