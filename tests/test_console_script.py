"""The ``pytest-accel`` console script: version, the devices found here, two reports side by side."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from pytest_accel import __version__
from pytest_accel.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"pytest-accel {__version__}"


def test_help_is_plain_text_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """No reST markup (``...``, :mod:) leaks from docstrings into what a person reads in the terminal."""
    from pytest_accel.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, command in [("", parser), *commands.items()]:
        text = command.format_help()
        assert "``" not in text and not re.search(r":(mod|func|class|meth):", text), (name, text)


def test_devices_lists_keys_and_unavailable_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "cpu -> cpu-" in out and "ort:cpu -> ort-cpu-" in out and "backends: torch: " in out
    assert main(["devices", "--device", "ort:cpu", "--device", "xpu:7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ort:cpu -> ort-cpu-") and lines[1].startswith("xpu:7: unavailable (")


def test_devices_with_an_unknown_spec_says_what_is_registered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--device", "nope"]) == 2
    assert "--device='nope' is not a device any registered backend knows; registered: torch:" in (
        capsys.readouterr().err)


def _report(path: Path, latency: float | str | None, extra: bool = False, version: int = 1) -> Path:
    metrics = [{"name": "m.latency", "value": latency, "unit": "s", "kind": "latency", "direction": "lower"}]
    if extra:
        metrics.append({"name": "m.only_here", "value": 1.0, "unit": "", "kind": "info", "direction": "lower"})
    results = [{"device": "cpu", "suite": "matmul", "test": "test_latency", "metrics": metrics}]
    path.write_text(json.dumps({"schema": "pytest-accel/report", "schema_version": version, "results": results}))
    return path


def test_compare_puts_two_reports_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _report(tmp_path / "a.json", 0.002), _report(tmp_path / "b.json", 0.003, extra=True)
    assert main(["compare", str(a), str(b)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["device", "test", "metric", "A", "B", "B/A"]
    assert lines[1].split() == ["cpu", "matmul::test_latency", "m.latency", "2", "ms", "3", "ms", "1.500"]
    assert lines[-1] == "1 metric(s) in both; only in A: 0, only in B: 1"


def test_compare_refuses_a_file_that_is_not_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["compare", str(bad), str(bad)]) == 2
    assert f"{bad}: not JSON (" in capsys.readouterr().err


@pytest.mark.parametrize("version", [0, 99])
def test_compare_refuses_what_report_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int) -> None:
    """One reader: a schema version this pytest-accel does not read is refused by compare as by report."""
    other = _report(tmp_path / "other.json", 0.002, version=version)
    good = _report(tmp_path / "good.json", 0.002)
    assert main(["compare", str(good), str(other)]) == 2
    refused = capsys.readouterr().err
    assert f"{other}: report schema version {version}; this pytest-accel reads version 1" in refused
    assert main(["report", str(other)]) == 2
    assert capsys.readouterr().err == refused


@pytest.mark.parametrize("value", [None, "fast"])
def test_compare_says_which_metrics_it_could_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       value: str | None) -> None:
    a, b = _report(tmp_path / "a.json", 0.002), _report(tmp_path / "b.json", value)
    assert main(["compare", str(a), str(b)]) == 0
    captured = capsys.readouterr()
    assert (f"B ({b}): left out, not a number to compare: cpu matmul::test_latency m.latency: metric 'm.latency' "
            f"has value {value!r}, not a number") in captured.err
    assert captured.out.splitlines()[-1] == "0 metric(s) in both; only in A: 1, only in B: 0"


TWO_MEASUREMENTS = """
import time

def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

def test_two(accel):
    first = accel.measure_latency("one", lambda: spin(0.001))
    second = accel.measure_latency("two", lambda: spin(0.002))
    accel.check(*first.metrics(), *second.metrics())
"""


def test_pytest_benchmark_json_holds_the_devices_and_every_measurement(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_benchmark")
    pytester.makepyfile(test_two=TWO_MEASUREMENTS)
    pytester.runpytest("--device=cpu", "--benchmark-json=bench.json").assert_outcomes(passed=1)
    document = json.loads((pytester.path / "bench.json").read_text())
    assert document["machine_info"]["accel_devices"]["cpu"]["key"].startswith("cpu-")
    [benchmark] = document["benchmarks"]
    extra = benchmark["extra_info"]
    assert extra["accel_metric"] == "one"  # the first measurement is pytest-benchmark's own
    [later] = extra["accel_measurements"]
    assert later["accel_metric"] == "two" and later["accel_executor"] == "local" and later["accel_p50"] > 0.0015


@pytest.mark.parametrize("args", [["detection-reference", "--model="], ["detection-reference", "--data= "],
                                  ["gesture-reference", "--data="]])
def test_an_empty_path_is_refused_not_taken_for_the_default(args: list[str], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Found by a black-box attack: ``--model=$UNSET`` recorded the bundled detector's reference instead."""
    assert main([*args, f"--reference-dir={tmp_path}"]) == 2
    option = args[1].partition("=")[0]
    assert f"pytest-accel: {option}=" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
