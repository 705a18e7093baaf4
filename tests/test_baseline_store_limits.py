"""What the baseline reader refuses, the writer refuses too: every stored field is checked in one place, files that
are no baseline (another device's, a FIFO, oversized, nested past reason) are one line naming the file, and
lock files stay out of the user's commits."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest

from pytest_accel.baselines import LOCK_FOLDER, MAX_FILE_BYTES, BaselineError, BaselineStore
from pytest_accel.metrics import Metric
from pytest_accel.options import OPT_MISSING, OPT_RECORD_RUN, OPT_UPDATE
from pytest_accel.records import baseline_record
from pytest_accel.verdicts import Policy, compare
from tests.helpers import baseline_files

DEVICE = "dev"
RECOVERY = "re-record it with --accel-update-baselines"


def latency_record(**fields: Any) -> dict[str, Any]:
    metric = Metric("toy.latency", 0.01, "s", "latency", "lower", samples=[0.01] * 20)
    return {**baseline_record(metric, 0.05), **fields}


def write_raw(root: Path, metrics: dict[str, Any], **header: Any) -> Path:
    path = root / DEVICE / "suite" / "test.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"schema": "pytest-accel/baseline", "schema_version": 1, "device_key": DEVICE, **header,
                "metrics": metrics}
    path.write_text(json.dumps(document))
    return path


def refusal(root: Path, path: Path) -> str:
    with pytest.raises(BaselineError) as caught:
        BaselineStore(root).load(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def with_history_run(**run: Any) -> dict[str, Any]:
    record = latency_record()
    record["history"][-1].update(run)
    return record


@pytest.mark.parametrize(
    ("record", "said"),
    [
        (with_history_run(n="many"), "field 'history[0].n' is 'many'; expected null or a whole number of rounds"),
        (with_history_run(n=0), "field 'history[0].n' is 0; expected"),
        (with_history_run(n=-5), "field 'history[0].n' is -5; expected"),
        (with_history_run(n=True), "field 'history[0].n' is True; expected"),
        (with_history_run(spread=1e300), "field 'history[0].spread' is 1e+300; expected null or a number from 0 to"),
        (with_history_run(probe=float("inf")), "Infinity is not a number JSON allows"),
        (with_history_run(recorded_at="yesterday"), "field 'history[0].recorded_at' is 'yesterday'"),
        (with_history_run(valu=1), "field 'history[0]' has unknown field 'valu'"),
        (with_history_run(value=0.02), "field 'history[0].value' is 0.02; expected 0.01, the metric's value"),
        (latency_record(limit="x"), "field 'limit' is 'x'; expected null or a number"),
        (latency_record(summary=[1]), "field 'summary' is [1]; expected an object"),
        (latency_record(value=10**400), "holds the integer"),
        (latency_record(tolerance=2.0, kind="throughput", direction="higher", history=None),
         "field 'tolerance' is 2.0; expected null or a number from 0 to below 1"),
        ({**latency_record(), "kind": "accuracy", "direction": "higher"}, "field 'history' is"),
        ({**latency_record(), "tolerence": 0.5}, "has unknown field 'tolerence'"),
    ],
)
def test_every_stored_field_is_checked_and_named(tmp_path: Path, record: dict[str, Any], said: str) -> None:
    path = write_raw(tmp_path, {"toy.latency": record})
    message = refusal(tmp_path, path)
    assert f"metric 'toy.latency' {said}" in message or said in message
    assert message.endswith(f"fix it, delete it, or {RECOVERY}")


@pytest.mark.parametrize(("header", "said"), [
    ({"device_key": "cuda-slow-accelerator"}, "has device_key 'cuda-slow-accelerator', but lies in the folder of "
                                              "device key 'dev'"),
    ({"device_key": 7}, "field 'device_key' is 7"),
    ({"recorded_at": "2026-13-45T00:00:00Z"}, "field 'recorded_at' is '2026-13-45T00:00:00Z'"),
    ({"software": "torch"}, "field 'software' is 'torch'"),
])
def test_header_fields_and_the_device_key_are_checked(tmp_path: Path, header: dict[str, Any], said: str) -> None:
    path = write_raw(tmp_path, {"toy.latency": latency_record()}, **header)
    assert said in refusal(tmp_path, path)


def test_json_nested_past_reason_is_one_line_not_a_recursion_error(tmp_path: Path) -> None:
    path = write_raw(tmp_path, {})
    path.write_text('{"schema": "pytest-accel/baseline", "deep": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert "nests JSON deeper than" in refusal(tmp_path, path)
    path.write_text('{"schema": "pytest-accel/baseline", "deep": ' + "[" * 100 + "]" * 100 + "}")
    assert "nests JSON deeper than 32 levels" in refusal(tmp_path, path)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = write_raw(tmp_path, {"toy.latency": latency_record(summary={"pad": "x" * MAX_FILE_BYTES})})
    assert f"over the {MAX_FILE_BYTES // 2**20} MiB a baseline file may" in refusal(tmp_path, path)


def test_the_writer_refuses_a_file_over_the_size_limit_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / DEVICE / "suite" / "test.json"
    with pytest.raises(BaselineError, match="MiB, over the 16 MiB a baseline file may; nothing was written"):
        BaselineStore(tmp_path).write(path, {"toy.latency": latency_record(summary={"pad": "x" * MAX_FILE_BYTES})},
                                      {"device_key": DEVICE})
    assert not path.exists()


@pytest.fixture
def alarm() -> Iterator[None]:
    def timed_out(signum: int, frame: object) -> None:
        raise TimeoutError("the reader blocked")

    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_at_a_baseline_path_is_refused_not_waited_on(tmp_path: Path, alarm: None) -> None:
    path = tmp_path / DEVICE / "suite" / "test.json"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    assert "is not a regular file (a FIFO)" in refusal(tmp_path, path)


def test_a_folder_at_a_baseline_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / DEVICE / "suite" / "test.json"
    path.mkdir(parents=True)
    assert "is not a regular file (a folder)" in refusal(tmp_path, path)


def test_locks_live_in_an_ignored_folder_not_beside_the_baselines(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    path = tmp_path / DEVICE / "suite" / "test.json"
    store.write(path, {"toy.latency": latency_record()}, {"device_key": DEVICE})
    store.write(path, {"toy.latency": latency_record()}, {"device_key": DEVICE})
    assert sorted(p.name for p in path.parent.iterdir()) == ["test.json"]
    locks = tmp_path / LOCK_FOLDER
    assert (locks / ".gitignore").read_text().splitlines()[-1] == "*"
    assert [p.name for p in locks.iterdir() if p.name != ".gitignore"] == [store.lock_path(path).name]


ZERO_LATENCY = """
from pytest_accel.metrics import Metric

def test_latency(accel):
    accel.check(Metric("toy.accuracy", 0.9, "", "accuracy", "higher"),
                Metric("toy.latency", 0.0, "s", "latency", "lower"))
"""


@pytest.mark.parametrize("mode", [OPT_UPDATE, OPT_RECORD_RUN, f"{OPT_MISSING}=record"])
def test_the_writer_refuses_what_the_reader_would_and_the_test_fails(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_toy=ZERO_LATENCY)
    result = pytester.runpytest(mode)
    result.assert_outcomes(failed=1)  # failed in the test, not an error at teardown
    result.stdout.fnmatch_lines(["*baseline file *test_latency.json metric 'toy.latency' field 'value' is 0.0; "
                                 "expected a positive number * (a measured latency of 0 is a broken measurement); "
                                 "nothing was written: this measurement is no baseline"])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert baseline_files(pytester.path) == []


def test_a_history_field_that_crashed_the_verdict_is_one_line(accuracy_project: pytest.Pytester) -> None:
    accuracy_project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    [path] = baseline_files(accuracy_project.path)
    document = json.loads(path.read_text())
    record = latency_record()
    record["history"] = [dict(record["history"][0], n="many") for _ in range(6)]
    document["metrics"] = {"toy.accuracy": document["metrics"]["toy.accuracy"], "toy.latency": record}
    path.write_text(json.dumps(document))
    result = accuracy_project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["pytest-accel: baseline file * metric 'toy.latency' field 'history[[]0[]].n' is "
                                 "'many'; expected *; fix it, delete it, or re-record it with "
                                 "--accel-update-baselines"])
    result.stdout.no_fnmatch_line("*ValueError*")


def test_another_devices_file_in_this_devices_folder_is_not_used(accuracy_project: pytest.Pytester) -> None:
    accuracy_project.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=1)
    [path] = baseline_files(accuracy_project.path)
    document = json.loads(path.read_text())
    document["device_key"] = "cuda-ten-times-slower"
    document["metrics"]["toy.accuracy"]["value"] = 0.1  # what that device reached: any value would pass against it
    path.write_text(json.dumps(document))
    accuracy_project.path.joinpath("value.txt").write_text("0.2")
    result = accuracy_project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["pytest-accel: baseline file * has device_key 'cuda-ten-times-slower', but lies in "
                                 "the folder of device key 'cpu-*': *; move it to its device's folder, or re-record "
                                 "it here with --accel-update-baselines"])
    accuracy_project.runpytest(OPT_UPDATE).assert_outcomes(passed=1)  # the flag overwrites it
    assert json.loads(path.read_text())["device_key"] != "cuda-ten-times-slower"


def test_a_baseline_of_too_few_rounds_for_the_rank_test_is_judged_on_its_value() -> None:
    stored = baseline_record(Metric("toy.latency", 0.01, "s", "latency", "lower", samples=[0.01]), 0.05)
    slower = Metric("toy.latency", 1.0, "s", "latency", "lower", samples=[1.0] * 20)  # 100 times slower
    verdict = compare(slower, stored, 0.05, "default", Policy(gate=frozenset({"latency"})))
    assert verdict.status == "regression", verdict.detail  # the rank test on 1 stored round passes anything


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_the_html_reports_baseline_reader_refuses_a_fifo_too(tmp_path: Path, alarm: None) -> None:
    from pytest_accel.report.chart_sections import Context

    os.mkfifo(tmp_path / "test.json")
    context = Context({"results": []}, tmp_path)
    assert context.baseline_metrics({"baseline_file": "test.json"}) == (None, "baseline file unreadable")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert context.baseline_metrics({"baseline_file": "deep.json"}) == (None, "baseline file unreadable")


@pytest.mark.parametrize("key", ["\ud800", "", "other-device", 7])
def test_the_writer_refuses_a_device_key_its_folder_does_not_name(tmp_path: Path, key: Any) -> None:
    path = tmp_path / DEVICE / "suite" / "test.json"
    with pytest.raises(BaselineError, match="device_key"):
        BaselineStore(tmp_path).write(path, {"toy.latency": latency_record()}, {"device_key": key})
    assert not path.exists()
