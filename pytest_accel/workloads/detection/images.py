"""Images in: read from a file (BGR, as OpenCV and ultralytics read them) and letterboxed into the detector's input
tensor, exactly as ultralytics' own inference does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics


def load_bgr(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return image


@dataclass
class Batch:
    tensor: np.ndarray  # N x 3 x imgsz x imgsz, float32 RGB in [0, 1]
    original_shapes: list[tuple[int, int]]


def preprocess(images_bgr: Sequence[np.ndarray], imgsz: int) -> Batch:
    import_ultralytics()
    from ultralytics.data.augment import LetterBox

    letterbox = LetterBox(new_shape=(imgsz, imgsz), auto=False)
    boxed = np.stack([letterbox(image=image) for image in images_bgr])
    tensor = boxed[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0  # BGR HWC -> RGB CHW
    return Batch(np.ascontiguousarray(tensor), [image.shape[:2] for image in images_bgr])
