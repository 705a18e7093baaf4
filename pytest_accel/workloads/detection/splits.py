"""One split of an ultralytics data set YAML: its image and label files, the labels parsed and checked, and the
ground truth in pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pytest_accel.workloads.detection.images import load_bgr
from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    boxes: np.ndarray  # (M, 4) xyxy in pixels of the original image
    classes: np.ndarray  # (M,)


def split_files(data_yaml: Path, split: str = "val") -> tuple[dict[int, str], list[Path], list[Path]]:
    """Class names, image paths and their label paths of one split of an ultralytics data set YAML (no download is
    attempted); ValueError naming the file for what cannot be used."""
    import_ultralytics()
    from ultralytics.data.utils import IMG_FORMATS, check_det_dataset, img2label_paths

    try:
        data = check_det_dataset(str(data_yaml), autodownload=False)
    except Exception as error:  # noqa: BLE001 - ultralytics raises several types for one cause: an unusable YAML
        raise ValueError(f"{data_yaml}: not a usable data set YAML ({str(error).strip().splitlines()[0]})") from None
    if split not in data:
        raise ValueError(f"{data_yaml}: no {split!r} split")
    sources = data[split] if isinstance(data[split], list) else [data[split]]
    image_paths: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            found = (p for p in source.rglob("*") if p.suffix.lower().lstrip(".") in IMG_FORMATS)
            image_paths.extend(sorted(found))
        elif source.suffix == ".txt":
            base = source.parent
            lines = [line.strip() for line in source.read_text().splitlines() if line.strip()]
            image_paths.extend((base / line).resolve() for line in lines)
    if not image_paths:
        raise ValueError(f"{data_yaml}: the {split} split holds no images")
    label_paths = [Path(p) for p in img2label_paths([str(p) for p in image_paths])]
    return dict(data["names"]), image_paths, label_paths


def read_labels(path: Path, classes: int) -> np.ndarray:
    """The rows ``class cx cy w h`` (normalised) of a YOLO label file, shape (N, 5); a polygon row (class and x y
    pairs) becomes its bounding box. ValueError naming the file and line for anything else."""
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return np.zeros((0, 5))
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot be read as a label file ({error})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        cells = line.split()
        if not cells:
            continue
        where = f"{path}:{number}"
        if len(cells) < 5 or (len(cells) > 5 and len(cells) % 2 == 0):
            raise ValueError(f"{where}: {len(cells)} columns; expected 'class cx cy w h' (5), or a class and x y "
                             "pairs of a polygon")
        try:
            values = [float(cell) for cell in cells]
        except ValueError:
            raise ValueError(f"{where}: not all numbers: {line.strip()[:80]!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{where}: a value is not finite: {line.strip()[:80]!r}")
        label = values[0]
        if label != int(label) or not 0 <= label < classes:
            raise ValueError(f"{where}: class {cells[0]!r} is not one of the data set's {classes} classes "
                             f"(0..{classes - 1})")
        coords = values[1:]
        if any(v < -0.01 or v > 1.01 for v in coords):
            raise ValueError(f"{where}: coordinates must be normalised to 0..1, got {line.strip()[:80]!r}")
        if len(coords) > 4:  # polygon
            xs, ys = coords[0::2], coords[1::2]
            coords = [(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys)]
        rows.append([label, *coords])
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def check_split(data_yaml: Path, split: str = "val") -> None:
    """Every label file of the split parses (at start-up, before any test: one error naming the file and line)."""
    names, _, label_paths = split_files(data_yaml, split)
    for label_path in label_paths:
        read_labels(label_path, len(names))


def load_split(data_yaml: Path, split: str = "val") -> tuple[dict[int, str], list[LabelledImage]]:
    """Images and ground truth of one split of an ultralytics data set YAML (no download is attempted)."""
    names, image_paths, label_paths = split_files(data_yaml, split)
    samples = []
    for image_path, label_path in zip(image_paths, label_paths, strict=True):
        height, width = load_bgr(image_path).shape[:2]
        rows = read_labels(label_path, len(names))
        cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        samples.append(LabelledImage(image_path, boxes.astype(np.float32), rows[:, 0].astype(np.int64)))
    return names, samples
