"""The one reader of saved JSON reports (``load_report``, ``read_metrics``) and the console script's ``compare`` and
``report`` on whatever a file holds: a real report mutated into broken ones is read, or refused in one line naming
the file (and the field at fault); never a traceback of another kind, a hang, or a number that is not finite."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_accel.cli import main
from pytest_accel.jsonfile import MAX_JSON_BYTES, MAX_JSON_DEPTH
from pytest_accel.options import OPT_REPORT
from pytest_accel.report.document import ReportError, load_report, read_metrics
from pytest_accel.report.html import render
from tests.fuzz_documents import document_bytes
from tests.fuzzing import FUZZ_SETTINGS

#: a run with an accuracy, a parity bound and a latency with samples: every shape a metric entry takes
SMALL_RUN = """
from pytest_accel.metrics import Metric

def test_small(accel):
    samples = [0.001 + i * 1e-6 for i in range(40)]
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"),
                Metric("toy.err", 1e-5, "", "parity", "lower", limit=1e-4),
                Metric("toy.latency", sorted(samples)[19], "s", "latency", "lower", samples=samples))
"""


@pytest.fixture
def real_report(pytester: pytest.Pytester) -> dict[str, Any]:
    """A report the plugin wrote for a tiny in-process run."""
    pytester.makepyfile(test_small=SMALL_RUN)
    pytester.runpytest("-p", "no:cacheprovider", f"{OPT_REPORT}=report.json").assert_outcomes(passed=1)
    report: dict[str, Any] = json.loads((pytester.path / "report.json").read_text())
    return report


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _assert_one_line_naming(message: str, path: Path) -> None:
    assert message.count("\n") == 0 and message.startswith(f"{path}: "), message


def _assert_read_back(document: dict[str, Any]) -> None:
    """What the reader hands on: metrics with finite values and samples, and one line for each left out."""
    read, unreadable = read_metrics(document)
    for reported in read:
        assert reported.metric.is_finite
    assert all("\n" not in line for line in unreadable)


def _read_or_refuse(path: Path) -> dict[str, Any] | None:
    try:
        document = load_report(path)
    except ReportError as error:
        _assert_one_line_naming(str(error), path)
        return None
    _assert_read_back(document)
    return document


@FUZZ_SETTINGS
@given(data=st.data())
def test_the_reader_reads_or_refuses_in_one_line(real_report: dict[str, Any], tmp_path: Path,
                                                 data: st.DataObject) -> None:
    _read_or_refuse(_write(tmp_path, "report.json", data.draw(document_bytes(real_report))))


@pytest.mark.parametrize("content", [
    b"[" * 200_000 + b"]" * 200_000,
    b'{"schema": "pytest-accel/report", "schema_version": 1, "results": [{"nested": "x"}]}',
])
def test_the_reader_refuses_in_one_line(tmp_path: Path, content: bytes) -> None:
    assert _read_or_refuse(_write(tmp_path, "report.json", content)) is None


@FUZZ_SETTINGS
@given(data=st.data())
def test_compare_exits_2_with_one_line(real_report: dict[str, Any], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str], data: st.DataObject) -> None:
    good = _write(tmp_path, "good.json", json.dumps(real_report).encode())
    path = _write(tmp_path, "mutated.json", data.draw(document_bytes(real_report)))
    capsys.readouterr()
    status = main(["compare", str(good), str(path)])
    _, err = capsys.readouterr()
    assert status in (0, 2)
    if status == 2:
        assert err.startswith(f"pytest-accel: {path}: ") and err.count("\n") == 1, err
    else:  # the entries left out, each on its line
        assert all(line.startswith(f"pytest-accel: B ({path}): left out") for line in err.splitlines()), err
    assert (_read_or_refuse(path) is None) == (status == 2)


@pytest.mark.workload  # draws the page's charts with matplotlib for every document the reader accepts
@FUZZ_SETTINGS
@given(data=st.data())
def test_report_writes_the_page_or_exits_2_with_one_line(real_report: dict[str, Any], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         data: st.DataObject) -> None:
    page = tmp_path / "page.html"
    path = _write(tmp_path, "mutated.json", data.draw(document_bytes(real_report)))
    page.unlink(missing_ok=True)
    capsys.readouterr()
    status = main(["report", str(path), "-o", str(page)])
    _, err = capsys.readouterr()
    if status == 2:
        assert err.startswith(f"pytest-accel: {path}: ") and err.count("\n") == 1, err
        assert not page.exists()
    else:
        assert status == 0 and not err and page.is_file()


def test_report_subcommand_refuses_what_the_reader_refuses(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(tmp_path, "deep.json", b'{"schema": "pytest-accel/report", "results": ' + b"[" * 200_000
                    + b"]" * 200_000 + b"}")
    assert main(["report", str(source), "-o", str(tmp_path / "page.html")]) == 2
    err = capsys.readouterr().err
    assert err == f"pytest-accel: {source}: JSON nested more than {MAX_JSON_DEPTH} levels deep; expected a " \
        "pytest-accel JSON report (written by pytest --accel-report=PATH)\n"
    assert not (tmp_path / "page.html").exists()


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 200_000])
def test_deep_nesting_is_one_line_in_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str], depth: int) -> None:
    """Regression: 200 000 levels raised RecursionError out of ``compare``; 900 levels parsed, then broke what
    walks the document later."""
    source = _write(tmp_path, "deep.json", b'{"x": ' + b"[" * depth + b"]" * depth + b"}")
    assert main(["compare", str(source), str(source)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pytest-accel: {source}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    assert err.count("\n") == 1


@pytest.mark.parametrize(("literal", "field"), [
    ("NaN", "results[0].metrics[0].value"),
    ("Infinity", "results[0].metrics[0].value"),
    ("1e999", "results[0].metrics[0].value"),
    ("9" * 400, "results[0].metrics[0].value"),  # an integer past a float: OverflowError in Metric before
    ("9" * 5000, None),  # past Python's digit limit for int(): ValueError out of json.loads before
])
def test_numbers_no_writer_makes_are_refused_naming_the_field(real_report: dict[str, Any], tmp_path: Path,
                                                              literal: str, field: str | None) -> None:
    real_report["results"][0]["metrics"][0]["value"] = "@@"
    source = _write(tmp_path, "r.json", json.dumps(real_report).replace('"@@"', literal).encode())
    with pytest.raises(ReportError) as refused:
        load_report(source)
    _assert_one_line_naming(str(refused.value), source)
    if field is not None:
        assert field in str(refused.value)
    if literal == "NaN":  # named for what it is, not as a number out of range
        assert "is not a number (NaN)" in str(refused.value)


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    source = tmp_path / "huge.json"
    with source.open("wb") as handle:
        handle.truncate(MAX_JSON_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(ReportError, match=r"larger than 64 MiB"):
        load_report(source)


@contextlib.contextmanager
def _fifo(path: Path) -> Iterator[Path]:
    """A FIFO no one writes to (opening it to read blocks forever), and a 10 s alarm that fails a test that waits
    on it instead of hanging the session."""
    os.mkfifo(path)

    def hung(*_: object) -> None:
        raise TimeoutError(f"still reading {path} after 10 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        yield path
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    with _fifo(tmp_path / "pipe.json") as source, pytest.raises(ReportError, match=r"not a regular file"):
        load_report(source)


def test_a_folder_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: a folder opens read-only on Linux, and ``os.fdopen`` then raised IsADirectoryError, a traceback
    from ``compare`` and ``report``, before the reader looked at what it had opened."""
    folder = tmp_path / "reports.json"
    folder.mkdir()
    with pytest.raises(ReportError, match=r"reports\.json: is a folder"):
        load_report(folder)
    assert main(["compare", str(folder), str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_a_baseline_file_the_report_names_is_read_bounded(real_report: dict[str, Any], tmp_path: Path) -> None:
    """The page reads the baseline files a report names: a FIFO or a deep file there is 'unreadable', not a hang
    or a RecursionError."""
    deep = _write(tmp_path, "deep.json", b"[" * 200_000 + b"]" * 200_000)
    with _fifo(tmp_path / "fifo.json") as fifo:
        for named in (fifo, deep):
            real_report["results"][0]["baseline_file"] = str(named)
            assert "baseline file unreadable" in render(real_report, tmp_path)


def test_control_characters_in_names_are_refused(real_report: dict[str, Any], tmp_path: Path) -> None:
    real_report["results"][0]["device"] = "cpu\nFAKE LINE"
    source = _write(tmp_path, "r.json", json.dumps(real_report).encode())
    with pytest.raises(ReportError, match=r"results\[0\]\.device is 'cpu\\nFAKE LINE', with a line break"):
        load_report(source)


def test_odd_options_render(real_report: dict[str, Any], tmp_path: Path) -> None:
    """Regression: a list among options.devices, or a null among options.gate (found by the fuzzed `report`),
    raised TypeError out of `pytest-accel report`."""
    real_report["options"]["devices"] = [["cpu"], {"a": 1}, "cpu"]
    real_report["options"]["gate"] = [None, "latency"]
    page = render(real_report, tmp_path)
    assert "<h3>cpu</h3>" in page and "gate None,latency" in page
