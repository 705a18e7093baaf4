"""The generated detection data set: deterministic, YOLO format, varied; built atomically into the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_accel.workloads.detection.dataset import CLASSES, DatasetSpec, ensure_dataset, render_image

SMALL = DatasetSpec(seed=3, train_images=6, val_images=4, imgsz=160, max_size=60)


def test_images_depend_only_on_seed_split_and_index() -> None:
    image, boxes = render_image(SMALL, "train", 2)
    again, boxes_again = render_image(SMALL, "train", 2)
    assert np.array_equal(image, again) and boxes == boxes_again
    assert not np.array_equal(image, render_image(SMALL, "val", 2)[0])
    bigger = DatasetSpec(seed=3, train_images=60, val_images=4, imgsz=160, max_size=60)
    assert np.array_equal(image, render_image(bigger, "train", 2)[0]), "a larger set must extend, not reshuffle"


def test_objects_vary_in_class_size_and_overlap() -> None:
    spec = DatasetSpec()
    boxes = [box for index in range(60) for box in render_image(spec, "train", index)[1]]
    assert {box.cls for box in boxes} == set(range(len(CLASSES))) and len(CLASSES) >= 3
    sides = np.array([max(b.x1 - b.x0, b.y1 - b.y0) for b in boxes])
    assert sides.min() < 25 and sides.max() > 90
    overlapping = sum(1 for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlap_of(b) > 0)
    assert overlapping > 0


def test_dataset_is_yolo_format_and_cached(tmp_path: Path) -> None:
    yaml = ensure_dataset(tmp_path, SMALL)
    root = yaml.parent
    assert sorted(p.name for p in (root / "images" / "val").iterdir()) == [f"val_{i:05d}.png" for i in range(4)]
    for label_file in (root / "labels" / "train").iterdir():
        rows = np.loadtxt(label_file, ndmin=2)
        assert rows.shape[1] == 5 and set(rows[:, 0].astype(int)) <= set(range(len(CLASSES)))
        assert ((rows[:, 1:] > 0) & (rows[:, 1:] <= 1)).all()
    stamp = yaml.stat().st_mtime_ns
    assert ensure_dataset(tmp_path, SMALL) == yaml and yaml.stat().st_mtime_ns == stamp
    assert [p.name for p in root.parent.iterdir()] == [root.name], "no half-built folder is left behind"


def test_bad_spec_is_rejected() -> None:
    with pytest.raises(ValueError, match="need min_size <= max_size < imgsz"):
        DatasetSpec(imgsz=64, max_size=100)
