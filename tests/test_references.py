"""Device-independent references: recorded once, found only for the inputs they were recorded for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_accel.baselines import BaselineError
from pytest_accel.metrics import Metric
from pytest_accel.references import ReferenceStore
from tests.helpers import copy_suites

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
    folder = pytester.path / "refs" / "suite"
    folder.mkdir(parents=True)
    (folder / "model.json").write_text("{not json")
    pytester.makepyfile(
        """
        def test_uses_reference(accel_references):
            accel_references.find("suite", "model", {})
        """
    )
    result = pytester.runpytest("--accel-reference-dir=refs")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest-accel: reference file *model.json: not JSON (*)*"])
    result.stdout.no_fnmatch_line("*Traceback*")


SHOWS_REFERENCE_ROOT = """
def test_shows_root(accel_references):
    print("REFERENCES IN", accel_references.root)
"""


def test_shipped_references_are_found_wherever_the_baselines_are_kept(pytester: pytest.Pytester) -> None:
    from pytest_accel.references import shipped_reference_dir

    shipped = shipped_reference_dir()
    assert (shipped / "detection").is_dir() and (shipped / "gesture").is_dir()
    pytester.makepyfile(SHOWS_REFERENCE_ROOT)
    result = pytester.runpytest("-s", f"--accel-baseline-dir={pytester.path / 'elsewhere'}")
    result.stdout.fnmatch_lines([f"*REFERENCES IN {shipped}"])


def test_a_checkout_on_pythonpath_finds_its_own_suites_references(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: with the checkout on PYTHONPATH and no editable install (nothing maps pytest_accel.suites to
    suites/), the bundled defaults' reference was looked for in pytest_accel/suites/ and every detection test
    errored at setup."""
    import importlib.util

    from pytest_accel import references

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pytest_accel.suites" else real_find_spec(name, *a))
    found = references.shipped_reference_dir()
    assert (found / "detection" / "shapes-yolov8n.json").is_file(), found


def test_the_reference_folder_from_the_ini_file_and_its_errors(pytester: pytest.Pytester) -> None:
    (pytester.path / "sub" / "refs").mkdir(parents=True)
    pytester.makeini("[pytest]\naccel_reference_dir = sub/refs\n")
    pytester.makepyfile(SHOWS_REFERENCE_ROOT)
    pytester.runpytest("-s").stdout.fnmatch_lines([f"*REFERENCES IN {pytester.path / 'sub' / 'refs'}"])
    result = pytester.runpytest("--accel-reference-dir=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--accel-reference-dir=*nowhere: no such folder*"])


def test_the_console_script_records_where_the_plugin_reads(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest-accel's reference commands resolve the folder as a pytest run started in the same place does."""
    from pytest_accel.cli import _references, build_parser
    from pytest_accel.references import shipped_reference_dir

    def folder(*argv: str) -> Path:
        return _references(build_parser().parse_args(["detection-reference", *argv])).root

    (pytester.path / "refs").mkdir()
    (pytester.path / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(pytester.path / "deep" / "er")
    assert folder() == shipped_reference_dir()
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\naccel_reference_dir = "refs"\n')
    assert folder() == pytester.path / "refs"
    assert folder("--reference-dir", str(pytester.path / "deep")) == pytester.path / "deep"


@pytest.mark.workload
def test_a_missing_reference_for_the_bundled_defaults_fails_in_one_line_naming_where_it_looked(
        suite_project: pytest.Pytester) -> None:
    """Never a silent skip: without its reference the convergence and accuracy checks would quietly disappear."""
    pytester = suite_project
    copy_suites(pytester.path, "test_gesture.py")
    (pytester.path / "empty").mkdir()
    result = pytester.runpytest_subprocess("suites", "--device=cpu", "--gesture-dtypes=fp32", "-k", "convergence",
                                           "--accel-reference-dir=empty")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pytest-accel: the gesture suite's reference for its bundled defaults is missing: "
                                 "looked for *empty/gesture/generated-*.json (no such file); point "
                                 "--accel-reference-dir at the folder that holds it*, or record it: pytest-accel "
                                 "gesture-reference --reference-dir *empty"])
    result.stdout.no_fnmatch_line("*Traceback*")
