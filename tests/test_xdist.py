"""pytest-xdist: the workers' results reach the controller's summary, report and baselines, and a second run under
xdist finds the baselines the first one wrote."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_accel.options import OPT_DEVICE, OPT_MISSING, OPT_REPORT
from tests.helpers import REPO, SMOKE_TESTS, baseline_files, load_json

MATMUL_SUITE = REPO / "suites" / "test_matmul.py"


@pytest.mark.workload
def test_the_matmul_suite_under_xdist_reports_every_result(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    shutil.copy(MATMUL_SUITE, pytester.path / "test_matmul.py")
    report = tmp_path / "report.json"
    result = pytester.runpytest("-n", "2", "-p", "no:cacheprovider", f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu",
                                f"{OPT_MISSING}=record", f"{OPT_REPORT}={report}", "-k", SMOKE_TESTS)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 4 and "failed" not in outcomes, result.stdout.str()
    document = load_json(report)
    nodeids = {r["nodeid"] for r in document["results"]}
    assert len(nodeids) == outcomes["passed"], nodeids
    assert {r["device"] for r in document["results"]} == {"cpu", "ort:cpu"}
    written = {Path(w["path"]) for w in document["baselines_written"]}
    assert written == set(baseline_files(pytester.path)) and len(written) == 2  # latency; parity is a bound
    # the workers finish in either order; the matrix's columns keep the order the devices were given in
    result.stdout.fnmatch_lines(["  metric * cpu * ort:cpu", "  matmul::test_matmul_parity",
                                 "    max_rel_error  *e-* *e-*"])
    result.stdout.fnmatch_lines([f"{len(written)} baseline file(s) written ({OPT_MISSING}=record):"])

    again = pytester.runpytest("-n", "2", "-p", "no:cacheprovider", f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu",
                               f"{OPT_MISSING}=fail", "--accel-gate=parity")
    assert again.ret == 0, again.stdout.str()
    assert "had no baseline" not in again.stdout.str()
