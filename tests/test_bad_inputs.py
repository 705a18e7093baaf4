"""Untrusted and bad input files: refused once at start-up with one line naming the file (and line); data
identified by content."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from pytest_accel.suite_options import OPT_GESTURE_DATA, OPT_YOLO_ALLOW_UNSAFE, OPT_YOLO_DATA, OPT_YOLO_MODEL

SUITE_OPTIONS_CONFTEST = """
from pytest_accel.suite_options import add_suite_options, read_detection_options, read_gesture_options

def pytest_addoption(parser):
    add_suite_options(parser)

def pytest_configure(config):
    read_detection_options(config)
    read_gesture_options(config)
"""


@pytest.fixture
def suite_options_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(SUITE_OPTIONS_CONFTEST)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    return pytester


def _row(label: str, value: str = "0.5") -> str:
    return ",".join([label, *[value] * 42])


def _usage_error(project: pytest.Pytester, *args: str) -> str:
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr.str(), result.stderr.str()
    return errors[0]


GOOD_ROWS = [_row(label) for label in ("open", "open", "fist", "fist")]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([*GOOD_ROWS[:2], _row("fist", "nan"), GOOD_ROWS[3]],
         r"bad.csv:3: column 2 is 'nan'; landmarks must be finite"),
        ([*GOOD_ROWS[:3], _row("fist", "inf")], r"bad.csv:4: column 2 is 'inf'"),
        ([*GOOD_ROWS[:3], _row("fist", "abc")], r"bad.csv:4: column 2 is 'abc', not a number"),
        ([_row("open")] * 4, r"every row has the label 'open'; a classifier needs at least 2 labels"),
        ([_row("open"), _row("fist")], r"too few rows for label\(s\) 'fist' \(1\), 'open' \(1\)"),
    ],
    ids=["nan", "inf", "text", "one-class", "two-rows"],
)
def test_bad_gesture_csv_is_one_line_naming_file_and_line(suite_options_project: pytest.Pytester,
                                                          rows: list[str], expected: str) -> None:
    (suite_options_project.path / "bad.csv").write_text("\n".join(rows) + "\n")
    line = _usage_error(suite_options_project, f"{OPT_GESTURE_DATA}=bad.csv")
    assert line.startswith(f"ERROR: {OPT_GESTURE_DATA}: ")
    assert re.search(expected, line), line


def test_non_utf8_gesture_csv(suite_options_project: pytest.Pytester) -> None:
    data = ("\n".join(GOOD_ROWS) + "\n").encode() + _row("op\xe9n").encode("latin-1") + b"\n"
    (suite_options_project.path / "bad.csv").write_bytes(data)
    line = _usage_error(suite_options_project, f"{OPT_GESTURE_DATA}=bad.csv")
    assert "bad.csv:5: not UTF-8 text (byte 0xe9)" in line


def _tiny_dataset(root: Path, label_line: str) -> Path:
    import cv2

    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        cv2.imwrite(str(root / "images" / split / "a.png"), np.full((64, 64, 3), 128, np.uint8))
        (root / "labels" / split / "a.txt").write_text(label_line + "\n")
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: square\n  1: disc\n")
    return yaml


def test_yolo_label_with_four_columns_names_the_file_and_line(suite_options_project: pytest.Pytester) -> None:
    yaml = _tiny_dataset(suite_options_project.path / "data", "0 0.5 0.5 0.2")
    line = _usage_error(suite_options_project, f"{OPT_YOLO_DATA}={yaml}")
    assert f"{OPT_YOLO_DATA}: " in line and "labels/val/a.txt:1: 4 columns; expected 'class cx cy w h' (5)" in line


def test_yolo_label_with_an_unknown_class(suite_options_project: pytest.Pytester) -> None:
    yaml = _tiny_dataset(suite_options_project.path / "data", "7 0.5 0.5 0.2 0.2")
    line = _usage_error(suite_options_project, f"{OPT_YOLO_DATA}={yaml}")
    assert "a.txt:1: class '7' is not one of the data set's 2 classes (0..1)" in line


def test_data_identity_covers_labels_not_only_the_yaml(tmp_path: Path) -> None:
    from pytest_accel.workloads.detection.reference import data_identity

    first = _tiny_dataset(tmp_path / "one", "0 0.5 0.5 0.2 0.2")
    second = _tiny_dataset(tmp_path / "two", "1 0.5 0.5 0.2 0.2")
    second.write_text(first.read_text().replace(str(tmp_path / "one"), str(tmp_path / "two")))
    third = _tiny_dataset(tmp_path / "three", "0 0.5 0.5 0.2 0.2")
    third.write_text(first.read_text().replace(str(tmp_path / "one"), str(tmp_path / "three")))
    assert data_identity(first) != data_identity(second)  # other labels
    assert data_identity(second) != data_identity(third)
    first_copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "one", first_copy)
    assert data_identity(first_copy / "data.yaml") == data_identity(first)  # same content, other place


def test_gesture_images_are_identified_by_content(tmp_path: Path) -> None:
    from pytest_accel.workloads.gesture.data import image_folder_identity

    model = tmp_path / "hand_landmarker.task"
    model.write_bytes(b"model")
    identities = []
    for name, pixel in (("a", b"1"), ("b", b"2")):
        folder = tmp_path / "one" / name / "hands"  # two folders with one name: 'hands'
        (folder / "open").mkdir(parents=True)
        (folder / "open" / "x.png").write_bytes(pixel)
        identities.append(image_folder_identity(folder, model))
    assert identities[0] != identities[1]


BUNDLED = Path(__file__).parents[1] / "pytest_accel" / "workloads" / "detection" / "assets" / "shapes-yolov8n.pt"


def test_bundled_weights_pass_safe_loading() -> None:
    from pytest_accel.workloads.detection.model import check_model_loads

    check_model_loads(BUNDLED, allow_unsafe=False)


def test_truncated_weights_are_one_line(suite_options_project: pytest.Pytester) -> None:
    truncated = suite_options_project.path / "cut.pt"
    truncated.write_bytes(BUNDLED.read_bytes()[: BUNDLED.stat().st_size // 2])
    line = _usage_error(suite_options_project, f"{OPT_YOLO_MODEL}={truncated}")
    assert f"{OPT_YOLO_MODEL}={truncated}: not a loadable ultralytics checkpoint" in line


class _Payload:
    """Unpickling this runs os.mkdir: the kind of code a crafted checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def test_a_crafted_pickle_is_refused_and_its_code_never_runs(suite_options_project: pytest.Pytester) -> None:
    import torch

    marker = suite_options_project.path / "payload-ran"
    crafted = suite_options_project.path / "crafted.pt"
    torch.save({"model": _Payload(marker)}, crafted)
    line = _usage_error(suite_options_project, f"{OPT_YOLO_MODEL}={crafted}")
    assert "refused: it references types outside ultralytics' model classes" in line
    assert OPT_YOLO_ALLOW_UNSAFE in line
    assert not marker.exists(), "the payload ran"
