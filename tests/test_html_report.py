"""--accel-html and ``pytest-accel report``: one self-contained page of a run's JSON report, the same page from a
live run and from the saved report, with what needs attention first, a chart per view and nothing fetched."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_accel.cli import main
from pytest_accel.options import OPT_DEVICE, OPT_HTML, OPT_REPORT
from pytest_accel.report.chart_sections import dtype_of
from pytest_accel.report.document import load_report
from pytest_accel.report.html import render
from tests.html_reports import toy_report

SUITE = """
import time
import pytest
from pytest_accel.metrics import Metric

@pytest.fixture(params=["fp32", "bf16"])
def dtype(request):
    return request.param

def test_parity(device, dtype, accel):
    accel.check(Metric("toy.rel_error", 2e-3 if dtype == "bf16" else 1e-7, "", "parity", "lower", limit=3e-2))

def test_throughput(device, accel):
    metrics = []
    for batch in (1, 2):
        measured = accel.measure_latency(f"toy.b{batch}", lambda: time.sleep(0.001 * batch), batch_size=batch)
        metrics += [m for m in measured.metrics() if m.name.endswith(".throughput")]
    accel.check(*metrics)
"""

_FETCH = re.compile(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)|url\(\s*["']?([^)"'\s]*)|@import\s+["']?([^"'\s;]*)""",
                    re.I)


def external_references(page: str) -> list[str]:
    """Everything in ``page`` that a browser could fetch, and every http(s) address even where nothing would fetch
    it. In-page fragments (``href="#parity"``, SVG's ``url(#clip)`` and ``xlink:href="#marker"``) stay in the page.
    No allow-list for SVG's namespace names (``xmlns="http://www.w3.org/2000/svg"``): the page leaves them out,
    since the HTML parser puts inline ``<svg>`` into its namespace itself, so any address at all is a finding."""
    found = [next(g for g in match.groups() if g is not None) for match in _FETCH.finditer(page)]
    return [target for target in found if not target.startswith("#")] + re.findall(r"https?://[^\s\"'<>)]*", page)


def sections(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, re.S))


@pytest.mark.workload  # seconds of real timing on two devices
def test_the_option_writes_the_page_and_the_cli_renders_the_same_from_the_saved_report(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=SUITE)
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu", "--accel-profile=quick",
                                f"{OPT_HTML}=out/page.html", f"{OPT_REPORT}=run.json")
    result.assert_outcomes(passed=6)
    page_path = pytester.path / "out" / "page.html"
    result.stdout.fnmatch_lines([f"HTML report: {page_path}"])
    page = page_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert external_references(page) == []
    charts = {name: body.count("<svg") for name, body in sections(page).items()}
    assert charts == {"attention": 0, "speedup": 1, "distributions": 2, "batch": 1, "curves": 0, "parity": 1,
                      "roofline": 0, "devices": 0}
    assert "No metric in this report carries training curves" in sections(page)["curves"]

    assert main(["report", str(pytester.path / "run.json"), "-o", str(pytester.path / "again.html")]) == 0
    # one renderer, and deterministic: the same bytes from the run's dict and from the saved JSON
    assert (pytester.path / "again.html").read_text(encoding="utf-8") == page


def test_each_view_has_its_chart_and_what_needs_attention_comes_first(tmp_path: Path) -> None:
    page = render(toy_report(tmp_path / "baselines"))
    found = sections(page)
    assert {name: body.count("<svg") for name, body in found.items()} == {
        "attention": 0, "speedup": 1, "distributions": 4, "batch": 1, "curves": 1, "parity": 1, "roofline": 0,
        "devices": 0}
    verdicts = re.findall(r'<span class="badge \w+">([^<]+)</span>', found["attention"])
    assert verdicts == ["regression", "regression (not gated)", "missing", "missing", "missing", "missing",
                        "missing"]
    cpu_table = found["devices"].split("<h3>ort:cpu</h3>")[0]
    first_rows = re.findall(r'<span class="badge \w+">([^<]+)</span>', cpu_table)
    assert first_rows[:2] == ["regression", "regression (not gated)"] and first_rows[-1] == "info"
    assert "gesture.energy_per_step" in cpu_table and "1.5 J" in cpu_table  # a kind this version does not know
    distributions = found["distributions"]
    assert distributions.count("baseline (n=60)") == 2  # the latency baselines' samples, read from their files
    assert distributions.count("no baseline file") == 6  # three throughput metrics on two devices
    assert "2.50x" in found["speedup"]
    assert "reference, 8 runs (min to max)" in found["curves"]
    assert all(f">{bound}<" in found["parity"] for bound in ("0.0001", "0.01", "0.03"))  # each dtype's own bound
    assert external_references(page) == []


def test_missing_data_leaves_charts_out_with_a_note(tmp_path: Path) -> None:
    report = toy_report(tmp_path / "baselines")
    report["options"]["devices"] = ["cpu"]
    report["results"] = [r for r in report["results"] if r["device"] == "cpu"]
    for result in report["results"]:
        for metric in result["metrics"]:
            metric.pop("samples", None)
            metric.get("summary", {}).pop("curves", None)
            if metric["kind"] == "parity":
                metric["kind"] = "info"
            if metric["name"] == "detection.b2.throughput":
                metric["value"] = None  # a broken run's NaN, as the saved report holds it
    found = sections(render(report))
    assert all(body.count("<svg") == 0 for name, body in found.items() if name != "batch")
    assert "One device in this run: no speed-up to show." in found["speedup"]
    assert "No metric in this report carries timed samples" in found["distributions"]
    assert "No metric in this report carries training curves" in found["curves"]
    assert "No parity metric in this report" in found["parity"]
    assert found["batch"].count("<svg") == 1  # b1 and b4 are left; b2's missing value is skipped, not drawn


def test_dtype_from_params_or_else_from_the_node_id() -> None:
    assert dtype_of({"params": "fp16", "device": "cpu"}) == "fp16"
    assert dtype_of({"params": "yolo8-bf16", "device": "cpu"}) == "bf16"
    assert dtype_of({"params": "", "device": "cpu"}) == "-"
    assert dtype_of({"nodeid": "suites/test_detection.py::test_parity[fp16-ort-cpu]", "device": "ort:cpu"}) == "fp16"
    assert dtype_of({"nodeid": "suites/test_matmul.py::test_matmul_parity[cpu]", "device": "cpu"}) == "-"


def test_the_scanner_finds_what_a_browser_would_fetch() -> None:
    for fetched in ('<img src="https://cdn.example/x.png">', "<style>@import 'theme.css';</style>",
                    '<div style="background:url(data/x.png)">', '<a href="report.json">',
                    '<svg xmlns="http://www.w3.org/2000/svg">'):
        assert external_references(fetched), fetched
    assert external_references('<a href="#parity">x</a><g clip-path="url(#p1)"><use xlink:href="#m2"/>') == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file; expected a pytest-accel JSON report"),
        ("{not json", "not JSON (Expecting property name enclosed in double quotes at line 1)"),
        ('{"schema": "pytest-accel/baseline", "metrics": {}}',
         "not a pytest-accel report (schema 'pytest-accel/baseline', expected 'pytest-accel/report')"),
        ("[1, 2]", "not a pytest-accel report (schema 'list', expected 'pytest-accel/report')"),
        ('{"schema": "pytest-accel/report", "schema_version": 99, "results": []}',
         "report schema version 99; this pytest-accel reads version 1"),
        ('{"schema": "pytest-accel/report", "schema_version": 1, "results": [{"device": "cpu"}]}',
         "malformed report: results[0] is not a test with a list of named metrics"),
    ],
    ids=["missing", "not-json", "a-baseline-file", "not-an-object", "newer-schema", "malformed"],
)
def test_bad_input_is_one_line_naming_the_file_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           content: str | None, expected: str) -> None:
    source = tmp_path / "report.json"
    if content is not None:
        source.write_text(content)
    assert main(["report", str(source), "-o", str(tmp_path / "page.html")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"pytest-accel: {source}: {expected}") and error.count("\n") == 1
    assert not (tmp_path / "page.html").exists()
    if content is not None:
        with pytest.raises(Exception, match=re.escape(expected)):
            load_report(source)


def test_the_option_refuses_a_folder(pytester: pytest.Pytester) -> None:
    pytester.mkdir("pages")
    result = pytester.runpytest(f"{OPT_HTML}=pages")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {OPT_HTML}=pages: is a folder; give a file path such as accel-report.html"])


def test_without_matplotlib_the_option_names_the_extra(pytester: pytest.Pytester) -> None:
    # None in sys.modules is how Python marks a module as not importable: the plugin sees matplotlib as absent
    pytester.makeconftest("import sys\nsys.modules['matplotlib'] = None\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(f"{OPT_HTML}=page.html")  # sys.modules is restored after an in-process run
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {OPT_HTML}=page.html: matplotlib is not installed: "
                                 "pip install 'pytest-accel[html]'"])
    assert not (pytester.path / "page.html").exists()
