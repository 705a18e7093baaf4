"""Accuracy against ground truth (mAP through ultralytics' metrics) and parity against a golden run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np

from pytest_accel.progress import NULL_PROGRESS, Progress
from pytest_accel.workloads.detection.pipeline import VAL_CONF, Batch, load_bgr, postprocess, preprocess
from pytest_accel.workloads.detection.runners import DetectorRunner
from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics

SCORING_PHASE = "scoring detections (mAP)"


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


@dataclass(frozen=True)
class MapResult:
    map50_95: float
    map50: float
    images: int
    boxes: int


#: images per forward when scoring mAP
MAP_BATCH_SIZE = 8


def evaluate_map(
    runner: DetectorRunner,
    samples: Sequence[LabelledImage],
    names: dict[int, str],
    imgsz: int,
    batch_size: int = MAP_BATCH_SIZE,
    progress: Progress = NULL_PROGRESS,
) -> MapResult:
    """mAP50-95 and mAP50 of the runner on ``samples``: ultralytics' matching, AP and NMS, our loop and device."""
    import torch

    import_ultralytics()
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.utils.metrics import DetMetrics, box_iou

    metrics = DetMetrics(names=names)
    # match_predictions reads nothing but the IoU thresholds from its validator
    matcher = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))
    progress.update(SCORING_PHASE, 0, len(samples), "images")
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        batch = preprocess([load_bgr(sample.path) for sample in chunk], imgsz)
        detections = postprocess(runner, runner.forward(runner.to_device(batch.tensor)), batch, imgsz, VAL_CONF)
        for sample, found in zip(chunk, detections, strict=True):
            predicted_classes = torch.from_numpy(found[:, 5]).long()
            true_classes = torch.from_numpy(sample.classes)
            if len(found) and len(sample.classes):
                iou = box_iou(torch.from_numpy(sample.boxes), torch.from_numpy(found[:, :4]))
                tp = BaseValidator.match_predictions(matcher, predicted_classes, true_classes, iou).numpy()  # type: ignore[arg-type]
            else:
                tp = np.zeros((len(found), 10), dtype=bool)
            metrics.update_stats(
                {
                    "tp": tp,
                    "conf": found[:, 4],
                    "pred_cls": found[:, 5],
                    "target_cls": sample.classes,
                    "target_img": np.unique(sample.classes),
                    "im_name": sample.path.name,
                }
            )
        progress.update(SCORING_PHASE, start + len(chunk), len(samples), "images")
    metrics.process()
    boxes = int(sum(len(s.classes) for s in samples))
    return MapResult(float(metrics.box.map), float(metrics.box.map50), len(samples), boxes)


# --- parity --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawParity:
    max_abs_error: float
    relative_l2_error: float
    cosine_similarity: float


def raw_parity(obtained: np.ndarray, golden: np.ndarray) -> RawParity:
    if obtained.shape != golden.shape:
        raise ValueError(f"head output shape {obtained.shape} differs from the golden run's {golden.shape}")
    a, b = obtained.astype(np.float64).ravel(), golden.astype(np.float64).ravel()
    difference = a - b
    return RawParity(
        max_abs_error=float(np.abs(difference).max()),
        relative_l2_error=float(np.linalg.norm(difference) / (np.linalg.norm(b) or 1.0)),
        cosine_similarity=float(a @ b / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0)),
    )


@dataclass(frozen=True)
class BoxParity:
    reference_boxes: int
    matched_fraction: float
    mean_score_error: float
    max_score_error: float


def box_parity(
    obtained: Sequence[np.ndarray], golden: Sequence[np.ndarray], min_iou: float = 0.9, min_conf: float = 0.25
) -> BoxParity:
    """Share of the golden run's confident boxes (conf >= min_conf) found again: same class, IoU >= min_iou.

    Candidates on the device side may score down to half of min_conf, so a box sitting on the threshold in one run
    is not lost to rounding in the other.
    """
    import torch

    import_ultralytics()
    from ultralytics.utils.metrics import box_iou

    references = matched = 0
    score_errors: list[float] = []
    for found, expected in zip(obtained, golden, strict=True):
        expected = expected[expected[:, 4] >= min_conf]
        found = found[found[:, 4] >= min_conf / 2]
        references += len(expected)
        if not len(expected) or not len(found):
            continue
        iou = box_iou(torch.from_numpy(expected[:, :4]), torch.from_numpy(found[:, :4])).numpy()
        iou[expected[:, 5][:, None] != found[:, 5][None, :]] = 0
        taken: set[int] = set()
        for row in np.argsort(-expected[:, 4]):
            candidates = [j for j in np.argsort(-iou[row]) if iou[row, j] >= min_iou and j not in taken]
            if candidates:
                taken.add(candidates[0])
                matched += 1
                score_errors.append(abs(float(found[candidates[0], 4] - expected[row, 4])))
    return BoxParity(
        reference_boxes=references,
        matched_fraction=matched / references if references else 1.0,
        mean_score_error=float(np.mean(score_errors)) if score_errors else 0.0,
        max_score_error=float(np.max(score_errors)) if score_errors else 0.0,
    )


def golden_inputs(samples: Sequence[LabelledImage], imgsz: int, count: int) -> Batch:
    """The fixed inputs of the parity check: the first ``count`` images of the split."""
    return preprocess([load_bgr(sample.path) for sample in samples[:count]], imgsz)
