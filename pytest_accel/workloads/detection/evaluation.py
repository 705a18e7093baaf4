"""Accuracy against ground truth (mAP through ultralytics' metrics) and parity against a golden run."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Sequence

import numpy as np

from pytest_accel.progress import NULL_PROGRESS, Progress
from pytest_accel.workloads.detection.images import Batch, load_bgr, preprocess
from pytest_accel.workloads.detection.pipeline import VAL_CONF, postprocess
from pytest_accel.workloads.detection.runners import DetectorRunner
from pytest_accel.workloads.detection.splits import LabelledImage
from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics

SCORING_PHASE = "scoring detections (mAP)"


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
                tp = BaseValidator.match_predictions(matcher, predicted_classes, true_classes, iou).numpy()
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
