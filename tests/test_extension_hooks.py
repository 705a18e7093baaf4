"""The plugin's own hooks beside backend registration: facts added to a device's info, and the JSON report
amended before it is written."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_MISSING, OPT_REPORT
from tests.helpers import baseline_files, load_json


def test_device_info_facts_reach_header_baselines_and_report(accuracy_project: pytest.Pytester) -> None:
    accuracy_project.makeconftest(
        """
        def pytest_accel_update_device_info(config, device, facts):
            facts["rack"] = "r42"
            facts["firmware"] = "fw-" + device.spec
        """
    )
    result = accuracy_project.runpytest(f"{OPT_MISSING}=record", f"{OPT_REPORT}=report.json")
    result.assert_outcomes(passed=1)
    [path] = baseline_files(accuracy_project.path)
    extra = load_json(path)["device"]["extra"]
    assert {"rack": "r42", "firmware": "fw-cpu"}.items() <= extra.items() and "torch_threads" in extra
    report = load_json(accuracy_project.path / "report.json")
    assert report["devices"]["cpu"]["extra"]["rack"] == "r42"
    assert path.parent.parent.name.startswith("cpu-") and "r42" not in path.parent.parent.name, "not in the key"


def test_report_hook_amends_the_written_report(accuracy_project: pytest.Pytester) -> None:
    accuracy_project.makeconftest(
        """
        def pytest_accel_update_report(config, report):
            report["ci"] = {"job": "1234"}
            for result in report["results"]:
                result["nodeid"] = "redacted"
        """
    )
    result = accuracy_project.runpytest(f"{OPT_REPORT}=report.json")
    result.assert_outcomes(passed=1)
    report = load_json(accuracy_project.path / "report.json")
    assert report["ci"] == {"job": "1234"}
    assert [r["nodeid"] for r in report["results"]] == ["redacted"]


def test_a_hook_with_a_misspelt_argument_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """The hooks are real hookspecs: pluggy validates implementations against them."""
    pytester.makeconftest("def pytest_accel_update_report(config, repport):\n    pass\n")
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret != 0
    assert "pytest_accel_update_report" in result.stdout.str() + result.stderr.str()
    assert "repport" in result.stdout.str() + result.stderr.str()
