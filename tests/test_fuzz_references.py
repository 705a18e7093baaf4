"""Reference files nobody vouches for: the shipped detection and gesture references mutated into broken ones are
read by the reference store and what the suites and ``pytest-accel convergence-power`` take from them (the
accuracy to reach, the reference runs' epochs), or refused in one line naming the file and field; what
``pytest-accel detection-reference`` and ``gesture-reference`` write reads back as written."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pytest_accel.baselines import BaselineError
from pytest_accel.cli import main
from pytest_accel.jsonfile import MAX_JSON_DEPTH
from pytest_accel.metrics import Metric
from pytest_accel.records import MIN_MAGNITUDE
from pytest_accel.references import ReferenceStore, shipped_reference_dir
from pytest_accel.workloads.gesture.reference import MAX_EPOCHS_TO_TARGET
from tests.fuzz_documents import NASTY_TEXT, document_bytes
from tests.fuzzing import FUZZ_SETTINGS

GESTURE = ("gesture", "generated-6000x1-2000x2")
DETECTION = ("detection", "shapes-yolov8n")
SHIPPED = {kind: json.loads((shipped_reference_dir() / kind[0] / f"{kind[1]}.json").read_text())
           for kind in (GESTURE, DETECTION)}
IDENTITY_KEYS = {GESTURE: ("data", "recipe"), DETECTION: ("model_digest", "data", "imgsz")}


def _identity(kind: tuple[str, str]) -> dict[str, Any]:
    return {key: SHIPPED[kind]["measured"][key] for key in IDENTITY_KEYS[kind]}


def _refused_in_one_line(error: BaselineError, path: Path) -> None:
    message = str(error)
    assert "\n" not in message and "\r" not in message and str(path) in message, message


def _read_as_the_suites_do(store: ReferenceStore, kind: tuple[str, str]) -> None:
    """What the suites take from a reference: found for its identity, then the accuracy to reach (and for the
    gesture suite the reference runs' epochs and the curve band); each a usable value or a one-line refusal."""
    path = store.path(*kind)
    try:
        reference = store.find(*kind, _identity(kind))
        if reference is None:
            return
        for name in (("gesture.final_accuracy",) if kind == GESTURE else ("detection.map50_95", "detection.map50")):
            value = reference.value(name)
            assert math.isfinite(value) and 0 <= value <= 1
        if kind == GESTURE:
            epochs = reference.per_seed("gesture.epochs_to_target", 1, MAX_EPOCHS_TO_TARGET, whole=True)
            assert len(epochs) >= 3 and all(1 <= e <= MAX_EPOCHS_TO_TARGET for e in epochs)
            assert isinstance(reference.summary("gesture.final_accuracy"), dict)
    except BaselineError as error:
        _refused_in_one_line(error, path)


@FUZZ_SETTINGS
@given(data=st.data())
@pytest.mark.parametrize("kind", [GESTURE, DETECTION], ids=["gesture", "detection"])
def test_a_reference_file_is_read_or_refused_in_one_line(tmp_path: Path, kind: tuple[str, str],
                                                         data: st.DataObject) -> None:
    store = ReferenceStore(tmp_path)
    path = store.path(*kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.draw(document_bytes(SHIPPED[kind])))
    _read_as_the_suites_do(store, kind)


@pytest.mark.workload  # simulates the verdict for every reference the reader accepts
@FUZZ_SETTINGS
@given(data=document_bytes(SHIPPED[GESTURE]))
@example(data=json.dumps({**SHIPPED[GESTURE], "measured": {**SHIPPED[GESTURE]["measured"], "train_samples": 0}})
         .encode())
def test_convergence_power_reads_or_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          data: bytes) -> None:
    path = ReferenceStore(tmp_path).path(*GESTURE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    capsys.readouterr()
    status = main(["convergence-power", "--reference-dir", str(tmp_path), "--draws", "1000"])
    out, err = capsys.readouterr()
    if status == 2:
        assert err.startswith("pytest-accel: ") and err.count("\n") == 1 and str(path) in err, err
    else:
        assert status == 0 and not err and "nan" not in out, out


@pytest.mark.parametrize(("per_seed", "expected"), [
    (None, r"metrics\['gesture.epochs_to_target'\].summary.per_seed is None; expected a list of at least 3"),
    ([12, "13", 11], r"per_seed\[1\] is '13'; expected a whole number from 1 to 1e\+06"),
    ([12, 1e300, 11], r"per_seed\[1\] is 1e\+300; expected a whole number from 1 to 1e\+06"),
    ([12, 11.5, 11], r"per_seed\[1\] is 11.5; expected a whole number"),
])
def test_bad_reference_runs_are_one_line_in_convergence_power(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              per_seed: Any, expected: str) -> None:
    """Regression: a string among the runs raised ValueError out of convergence-power, a missing list KeyError
    in the suite, and 1e300 overflowed the convergence test's statistics."""
    document = json.loads(json.dumps(SHIPPED[GESTURE]))
    document["metrics"]["gesture.epochs_to_target"]["summary"]["per_seed"] = per_seed
    path = ReferenceStore(tmp_path).path(*GESTURE)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document))
    assert main(["convergence-power", "--reference-dir", str(tmp_path), "--draws", "1000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pytest-accel: reference file {path}: ") and err.count("\n") == 1
    assert re.search(expected, err), err


@pytest.mark.workload  # seconds of simulation
def test_zero_training_samples_do_not_divide_by_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: measured.train_samples of 0 raised ZeroDivisionError out of convergence-power."""
    document = json.loads(json.dumps(SHIPPED[GESTURE]))
    document["measured"]["train_samples"] = 0
    path = ReferenceStore(tmp_path).path(*GESTURE)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document))
    assert main(["convergence-power", "--reference-dir", str(tmp_path), "--draws", "1000"]) == 0


@pytest.mark.parametrize(("change", "expected"), [
    ({"value": 5.0}, r"metrics\['detection.map50_95'\].value is 5.0; a reference accuracy is a fraction"),
    # found by the thorough fuzz run: a list as the kind raised TypeError (unhashable) in the document check
    ({"kind": []}, r"reference file .*shapes-yolov8n.json metric 'detection.map50_95' field 'kind' is \[\]; "
                   r"expected one of accuracy, .*; references are never written by --accel-update-baselines"),
    ({"summary": [1, 2]}, r"reference file .*metric 'detection.map50_95' field 'summary' is \[1, 2\]; expected an "
                          r"object; references are never"),
])
def test_a_reference_holds_what_its_readers_need(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    document = json.loads(json.dumps(SHIPPED[DETECTION]))
    document["metrics"]["detection.map50_95"].update(change)
    store = ReferenceStore(tmp_path)
    store.path(*DETECTION).parent.mkdir(parents=True)
    store.path(*DETECTION).write_text(json.dumps(document))
    with pytest.raises(BaselineError, match=expected):
        store.find(*DETECTION, _identity(DETECTION))


def test_deep_nesting_is_one_line(tmp_path: Path) -> None:
    """Regression: 200 000 levels raised RecursionError out of the reference store."""
    store = ReferenceStore(tmp_path)
    store.path(*DETECTION).parent.mkdir(parents=True)
    store.path(*DETECTION).write_bytes(b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(BaselineError, match=f"nested more than {MAX_JSON_DEPTH} levels"):
        store.find(*DETECTION, _identity(DETECTION))


@FUZZ_SETTINGS
@given(accuracy=st.floats(MIN_MAGNITUDE, 1),
       epochs=st.lists(st.integers(1, MAX_EPOCHS_TO_TARGET), min_size=3, max_size=9), name=st.text(max_size=40),
       identity=st.dictionaries(NASTY_TEXT, st.one_of(NASTY_TEXT, st.integers(-2**63, 2**63)), max_size=3))
def test_what_the_reference_commands_write_reads_back(tmp_path: Path, accuracy: float, epochs: list[int], name: str,
                                                      identity: dict[str, Any]) -> None:
    """The writer `detection-reference` and `gesture-reference` use, read back by the store the suites use: any
    accuracy and identity (unicode, control characters, long text) comes back as written."""
    store = ReferenceStore(tmp_path)
    metrics = [Metric("w.accuracy", accuracy, "", "accuracy", "higher"),
               Metric("w.epochs_to_target", float(sum(epochs)) / len(epochs), "epochs", "info", "lower",
                      summary={"per_seed": epochs})]
    path = store.record("w", name, identity, metrics, force=True)
    reference = store.find("w", name, identity)
    assert reference is not None and reference.path == path
    assert reference.value("w.accuracy") == accuracy
    assert reference.per_seed("w.epochs_to_target", 1, MAX_EPOCHS_TO_TARGET, whole=True) == epochs
    shutil.rmtree(tmp_path / "w")


@pytest.mark.parametrize("accuracy", [0.0, 1e-300])
def test_the_reference_writer_refuses_what_the_store_would_not_read(tmp_path: Path, accuracy: float) -> None:
    """An accuracy of 0 (or below what is stored) as a reference would let every later value pass: not written."""
    store = ReferenceStore(tmp_path)
    with pytest.raises(BaselineError, match="field 'value' is .*; expected a positive number.*nothing was written"):
        store.record("w", "zero", {}, [Metric("w.accuracy", accuracy, "", "accuracy", "higher")], force=True)
    assert not list(tmp_path.rglob("*.json"))
