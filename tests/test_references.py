"""Device-independent references: recorded once, found only for the inputs they were recorded for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_accel.baselines import BaselineError
from pytest_accel.metrics import Metric
from pytest_accel.references import ReferenceStore

IDENTITY = {"model_digest": "abc123", "data": "generated-1", "imgsz": 320}


def record(store: ReferenceStore, **kwargs: object) -> Path:
    metrics = [
        Metric("s.map", 0.8, "", "accuracy", "higher"),
        Metric("s.epochs", 11.0, "epochs", "info", "lower", summary={"per_seed": [10, 11, 12]}),
    ]
    return store.record("suite", "model", IDENTITY, metrics, {"images": 100}, **kwargs)  # type: ignore[arg-type]


def test_record_then_find_by_identity(tmp_path: Path) -> None:
    store = ReferenceStore(tmp_path / "reference")
    path = record(store)
    assert path == tmp_path / "reference" / "suite" / "model.json"
    reference = store.find("suite", "model", IDENTITY)
    assert reference is not None
    assert reference.value("s.map") == pytest.approx(0.8)
    assert reference.summary("s.epochs")["per_seed"] == [10, 11, 12]
    assert reference.source == "reference/suite/model.json"
    document = json.loads(path.read_text())
    assert document["measured"] == {**IDENTITY, "images": 100}
    assert document["metrics"]["s.map"]["tolerance"] == 0.01, "the accuracy kind's default"
    assert document["metrics"]["s.epochs"]["tolerance"] is None


def test_another_identity_finds_nothing(tmp_path: Path) -> None:
    store = ReferenceStore(tmp_path)
    record(store)
    other = {**IDENTITY, "imgsz": 640}
    assert store.find("suite", "model", other) is None
    loaded = store.load("suite", "model")
    assert loaded is not None and loaded.mismatch(other) == "reference recorded for another imgsz"
    assert store.find("suite", "absent", IDENTITY) is None


def test_never_overwritten_without_force(tmp_path: Path) -> None:
    store = ReferenceStore(tmp_path)
    path = record(store)
    before = path.read_text()
    with pytest.raises(FileExistsError, match="pass --force"):
        record(store)
    assert path.read_text() == before
    record(store, force=True)


def test_a_metric_the_reference_lacks_is_named(tmp_path: Path) -> None:
    store = ReferenceStore(tmp_path)
    record(store)
    reference = store.find("suite", "model", IDENTITY)
    assert reference is not None
    with pytest.raises(BaselineError, match=r"has no metric 's.map50' \(it has: s.map, s.epochs\)"):
        reference.value("s.map50")


def test_a_damaged_reference_fails_the_test_that_uses_it_in_one_line(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "baselines" / "reference" / "suite"
    folder.mkdir(parents=True)
    (folder / "model.json").write_text("{not json")
    pytester.makepyfile(
        """
        def test_uses_reference(accel_references):
            accel_references.find("suite", "model", {})
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest-accel: baseline file *model.json is not valid JSON*"])
    result.stdout.no_fnmatch_line("*Traceback*")
