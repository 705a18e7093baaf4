"""Landmark sources and the one normalisation they all go through.

Normalisation (every source): take each landmark's x and y, subtract the wrist's (landmark 0), flatten to 42 values
and divide by their largest absolute value. Features lie in [-1, 1], independent of where the hand is in the image
and how large it appears. This is the pre-processing most MediaPipe gesture projects record their CSVs with, so such
a CSV passes through it unchanged; z (when a source has it) is not used, because most recorded data sets lack it.

Sources: the generator in :mod:`hand`; CSV files with a label then 42 values (x, y per landmark) or 63 values
(x, y, z); and image folders (one sub-folder per label) run through MediaPipe's HandLandmarker.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LANDMARKS = 21
FEATURES = 2 * LANDMARKS
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def normalise(landmarks: np.ndarray) -> np.ndarray:
    """(N, 21, 2 or 3) landmarks -> (N, 42) features: wrist-relative x, y scaled by their largest magnitude."""
    if landmarks.ndim != 3 or landmarks.shape[1] != LANDMARKS or landmarks.shape[2] not in (2, 3):
        raise ValueError(f"expected landmarks shaped (N, 21, 2|3), got {landmarks.shape}")
    xy = landmarks[:, :, :2].astype(np.float64)
    xy = xy - xy[:, :1, :]
    flat = xy.reshape(len(xy), FEATURES)
    scale = np.abs(flat).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    return (flat / scale).astype(np.float32)


@dataclass(frozen=True)
class LandmarkSet:
    features: np.ndarray  # (N, 42) normalised
    labels: np.ndarray  # (N,) int64
    class_names: tuple[str, ...]
    source: str

    def split(self, val_fraction: float, seed: int) -> tuple[LandmarkSet, LandmarkSet]:
        """A fixed-seed, per-class stratified train/val split."""
        rng = np.random.default_rng(seed)
        val_index: list[int] = []
        for label in np.unique(self.labels):
            members = np.flatnonzero(self.labels == label)
            rng.shuffle(members)
            val_index.extend(members[: max(1, round(len(members) * val_fraction))].tolist())
        is_val = np.zeros(len(self.labels), dtype=bool)
        is_val[val_index] = True
        return self._subset(~is_val, "train"), self._subset(is_val, "val")

    def _subset(self, mask: np.ndarray, part: str) -> LandmarkSet:
        return LandmarkSet(self.features[mask], self.labels[mask], self.class_names, f"{self.source} [{part}]")


#: the split keeps at least one row of every label for validation, so every label needs one more for training
MIN_ROWS_PER_LABEL = 2


def load_csv(path: Path) -> LandmarkSet:
    """A landmark CSV: label, then 42 values (x, y per landmark) or 63 (x, y, z). An optional header row is
    skipped; labels may be integers or names (names are numbered in sorted order). ValueError naming the file (and
    line) for anything a classifier cannot be trained and validated on.

    Parsed once per file version: the start-up check and the suite's fixture read the same file."""
    stat = path.stat()
    return _parse_csv(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _parse_csv(path: Path, _mtime_ns: int, _size: int) -> LandmarkSet:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte {error.object[error.start]:#04x})") from None
    rows: list[tuple[int, list[str]]] = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) - 1 not in (FEATURES, 3 * LANDMARKS):
            raise ValueError(
                f"{path}:{number}: {len(row)} columns; expected a label and 42 (x, y) or 63 (x, y, z) values"
            )
        rows.append((number, row))
    if rows and not _is_number(rows[0][1][1]):
        rows = rows[1:]  # header
    if not rows:
        raise ValueError(f"{path}: no landmark rows")
    width = len(rows[0][1]) - 1
    values = np.empty((len(rows), width))
    for index, (number, row) in enumerate(rows):
        if len(row) - 1 != width:
            raise ValueError(f"{path}:{number}: {len(row) - 1} values where the first row has {width}; rows must "
                             "not mix 42- and 63-value layouts")
        for column, cell in enumerate(row[1:], start=2):
            try:
                value = float(cell)
            except ValueError:
                raise ValueError(f"{path}:{number}: column {column} is {cell.strip()[:40]!r}, not a number") from None
            if not math.isfinite(value):
                raise ValueError(f"{path}:{number}: column {column} is {cell.strip()!r}; landmarks must be finite")
            values[index, column - 2] = value
    raw_labels = [row[0].strip() for _, row in rows]
    if all(label.lstrip("-").isdigit() for label in raw_labels):
        numbers = np.array([int(label) for label in raw_labels])
        names = tuple(str(n) for n in sorted(set(numbers.tolist())))
        index_of = {int(name): i for i, name in enumerate(names)}
        labels = np.array([index_of[n] for n in numbers])
    else:
        names = tuple(sorted(set(raw_labels)))
        labels = np.array([names.index(label) for label in raw_labels])
    if len(names) < 2:
        raise ValueError(f"{path}: every row has the label {names[0]!r}; a classifier needs at least 2 labels")
    counts = np.bincount(labels, minlength=len(names))
    few = [f"{names[i]!r} ({counts[i]})" for i in range(len(names)) if counts[i] < MIN_ROWS_PER_LABEL]
    if few:
        raise ValueError(f"{path}: too few rows for label(s) {', '.join(few)}: each needs at least "
                         f"{MIN_ROWS_PER_LABEL} (one for training, one for validation)")
    landmarks = values.reshape(len(values), LANDMARKS, width // LANDMARKS)
    return LandmarkSet(normalise(landmarks), labels.astype(np.int64), names, str(path))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def generated_set(count: int, seed: int) -> LandmarkSet:
    from pytest_accel.workloads.gesture.hand import GESTURE_NAMES, generate

    landmarks, labels = generate(count, seed)
    return LandmarkSet(normalise(landmarks), labels, GESTURE_NAMES, f"generated (n={count}, seed={seed})")


def image_folder_identity(folder: Path, model_path: Path) -> str:
    """``images-<digest>`` of what the landmarks come from: every image's label folder, name and bytes, and the
    landmarker model's bytes; the folder's own name plays no part (two folders named alike can hold other data)."""
    digest = hashlib.sha256()
    for label_folder in sorted(p for p in folder.iterdir() if p.is_dir()):
        for image_path in sorted(label_folder.iterdir()):
            if image_path.suffix.lower() in IMAGE_SUFFIXES:
                digest.update(f"{label_folder.name}/{image_path.name}\0".encode())
                digest.update(hashlib.sha256(image_path.read_bytes()).digest())
    digest.update(hashlib.sha256(model_path.read_bytes()).digest())
    return f"images-{digest.hexdigest()[:12]}"


def extract_from_images(folder: Path, model_path: Path) -> LandmarkSet:
    """Run MediaPipe's HandLandmarker (a ``hand_landmarker.task`` file you provide) on ``folder/<label>/*``.

    Images in which no hand is found are skipped and counted in the returned set's ``source``.
    """
    if not model_path.is_file():
        raise FileNotFoundError(
            f"MediaPipe hand landmarker model {model_path} not found; download hand_landmarker.task from MediaPipe's "
            "model page and pass its path"
        )
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: expected a folder with one sub-folder of images per label")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{folder}: no label sub-folders")
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import HandLandmarker, HandLandmarkerOptions

    options = HandLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model_path)), num_hands=1)
    found: list[np.ndarray] = []
    labels: list[int] = []
    missed = 0
    with HandLandmarker.create_from_options(options) as landmarker:
        for label, name in enumerate(classes):
            for image_path in sorted((folder / name).iterdir()):
                if image_path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                result = landmarker.detect(mp.Image.create_from_file(str(image_path)))
                if not result.hand_landmarks:
                    missed += 1
                    continue
                found.append(np.array([[p.x, p.y, p.z] for p in result.hand_landmarks[0]]))
                labels.append(label)
    if not found:
        raise ValueError(f"{folder}: MediaPipe found no hand in any image")
    return LandmarkSet(normalise(np.stack(found)), np.array(labels, dtype=np.int64), tuple(classes),
                       f"{folder} via MediaPipe ({len(found)} hands, {missed} images without one)")
