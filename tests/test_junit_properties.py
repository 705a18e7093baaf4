"""Every checked metric is attached to its test as ``record_property`` would attach it, so ``--junitxml`` carries
value, unit, baseline, tolerance, verdict and gated per metric, and the device with its key, under pytest-xdist too."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_accel.options import OPT_MISSING
from tests.helpers import HOST_DEVICE_CONFTEST

PROJECT = """
from pathlib import Path
from pytest_accel.metrics import Metric

def test_accuracy(accel):
    value = float(Path(__file__).with_name("value.txt").read_text())
    accel.check(Metric("toy.accuracy", value, "", "accuracy", "higher"),
                Metric("toy.memory", 2 ** 20, "B", "info", "lower"))
"""


def _properties(xml: Path) -> dict[str, dict[str, str]]:
    """Properties per test case name."""
    cases = ET.parse(xml).getroot().iter("testcase")
    return {case.get("name", ""): {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
            for case in cases}


def _project(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(test_toy=PROJECT)
    pytester.path.joinpath("value.txt").write_text(value)


def test_junitxml_carries_each_metric_and_its_verdict(pytester: pytest.Pytester) -> None:
    _project(pytester, "0.90")
    pytester.runpytest("--device=cpu", f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    pytester.path.joinpath("value.txt").write_text("0.50")
    result = pytester.runpytest("--device=cpu", "--junitxml=out.xml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    props = _properties(pytester.path / "out.xml")["test_accuracy[cpu]"]
    assert props["accel.device"] == "cpu"
    assert props["accel.device_key"].startswith("cpu-")
    assert float(props["accel.toy.accuracy.value"]) == 0.5
    assert float(props["accel.toy.accuracy.baseline"]) == 0.9
    assert props["accel.toy.accuracy.expected"] == "0.9"
    assert float(props["accel.toy.accuracy.tolerance"]) > 0
    assert props["accel.toy.accuracy.verdict"] == "regression"
    assert props["accel.toy.accuracy.gated"] == "True"
    assert "accel.toy.accuracy.unit" not in props  # a ratio has no unit
    assert props["accel.toy.memory.unit"] == "B"
    assert props["accel.toy.memory.verdict"] == "info"


@pytest.mark.workload
def test_junitxml_properties_travel_from_xdist_workers(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    _project(pytester, "0.90")
    pytester.makeconftest(HOST_DEVICE_CONFTEST)  # workers without torch
    result = pytester.runpytest("-n", "2", "-p", "no:cacheprovider", "--device=host", "--junitxml=out.xml")
    assert result.ret == pytest.ExitCode.OK
    props = _properties(pytester.path / "out.xml")["test_accuracy[host]"]
    assert props["accel.device"] == "host"
    assert props["accel.toy.accuracy.verdict"] == "missing"
    assert "accel.toy.accuracy.baseline" not in props
    assert float(props["accel.toy.accuracy.value"]) == 0.9
