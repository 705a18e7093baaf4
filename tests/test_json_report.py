"""--accel-report: the JSON record of a run (devices, software, every metric with its samples and verdict,
failures too), shown beside the side-by-side terminal summary it comes with."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_DEVICE, OPT_MISSING, OPT_REPORT, OPT_SUMMARY
from tests.helpers import load_json

MATMUL_TEST = """
from pytest_accel.metrics import Metric
from pytest_accel.workloads.matmul import Matmul

def test_matmul(device, accel):
    matmul = Matmul(device, 128)
    accel.check(*accel.measure_latency("mm", matmul.run).metrics())
"""


def test_side_by_side_and_json_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mm=MATMUL_TEST)
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu", f"{OPT_REPORT}=out/report.json",
                                f"{OPT_SUMMARY}=full")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= pytest-accel =*",
            "cpu -> cpu-* (*)",
            "  test * metric * value * baseline * delta * verdict",
            "  mm::test_matmul * mm.latency * missing",
            "ort:cpu -> ort-cpu-* (*)",
            "side by side (speed-up over cpu for latency, throughput and first run)",
            "  test * metric * cpu * ort:cpu",
            "  mm::test_matmul * mm.latency *s *s (*x)",
            "  mm::test_matmul * mm.throughput * items/s * items/s (*x)",
            "JSON report: *out/report.json",
        ]
    )
    report = load_json(pytester.path / "out" / "report.json")
    assert report["schema"] == "pytest-accel/report" and report["exit_status"] == 0
    assert set(report["devices"]) == {"cpu", "ort:cpu"}
    assert report["devices"]["ort:cpu"]["runtime"]["onnxruntime"]
    assert {"torch", "onnxruntime", "pytest"} <= set(report["software"])
    [cpu_result, ort_result] = report["results"]
    assert cpu_result["nodeid"] == "test_mm.py::test_matmul[cpu]" and ort_result["device"] == "ort:cpu"
    latency = next(m for m in cpu_result["metrics"] if m["name"] == "mm.latency")
    assert latency["verdict"] == "missing" and latency["unit"] == "s" and latency["summary"]["n"] >= 20
    median = sorted(latency["samples"])[(len(latency["samples"]) + 1) // 2 - 1]
    assert latency["value"] == pytest.approx(median, rel=1e-5)  # the samples are stored to 6 significant digits


def test_report_records_failures_too(clocked_latency_project: pytest.Pytester) -> None:
    project = clocked_latency_project
    project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    project.path.joinpath("delay.txt").write_text("0.006")
    project.runpytest(f"{OPT_REPORT}=r.json").assert_outcomes(failed=1)
    report = load_json(project.path / "r.json")
    verdicts = {m["name"]: m["verdict"] for m in report["results"][0]["metrics"]}
    assert verdicts["toy.latency"] == "regression" and report["exit_status"] == 1
