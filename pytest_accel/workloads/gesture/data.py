"""Landmark sources and the one normalisation they all go through.

Normalisation (every source): take each landmark's x and y, subtract the wrist's (landmark 0), flatten to 42 values
and divide by their largest absolute value. Features lie in [-1, 1], independent of where the hand is in the image
and how large it appears. This is the pre-processing most MediaPipe gesture projects record their CSVs with, so such
a CSV passes through it unchanged; z (when a source has it) is not used, because most recorded data sets lack it.

Sources: the generator in :mod:`hand`; CSV files with a label then 42 values (x, y per landmark) or 63 values
(x, y, z); and image folders (one sub-folder per label) run through MediaPipe's HandLandmarker.

Landmark values are MediaPipe's normalised image coordinates (about 0 to 1, a little outside for a hand partly out
of the frame), its world coordinates in metres, pixel coordinates, or features already normalised to [-1, 1]. A CSV
value beyond :data:`MAX_LANDMARK_MAGNITUDE` is none of these; and every step of the normalisation is checked for
finite features, so a value that overflows (``1e308`` minus ``-1e308``) is refused naming its row and column
instead of training on NaN.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import math
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

LANDMARKS = 21
FEATURES = 2 * LANDMARKS
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: the largest landmark value a CSV may hold: pixel coordinates of any camera fit with room to spare, and wrist-
#: relative differences of such values stay far from overflowing
MAX_LANDMARK_MAGNITUDE = 1e6
#: landmark CSVs past this size are refused before they are read (a million rows of 63 values is about 1 GB less)
MAX_CSV_BYTES = 512 * 2**20
_INTEGER_LABEL = re.compile(r"-?[0-9]{1,18}")


def normalise(landmarks: np.ndarray, source: str = "landmarks", rows: Sequence[int] | None = None) -> np.ndarray:
    """(N, 21, 2 or 3) landmarks -> (N, 42) features: wrist-relative x, y scaled by their largest magnitude.

    ValueError naming ``source``, the row (``rows[i]``: a CSV's line numbers; else the sample's index) and the
    value's column (as a landmark CSV numbers them: the label is column 1) where a step's result is not finite."""
    if landmarks.ndim != 3 or landmarks.shape[1] != LANDMARKS or landmarks.shape[2] not in (2, 3):
        raise ValueError(f"expected landmarks shaped (N, 21, 2|3), got {landmarks.shape}")
    width = landmarks.shape[2]
    xy = landmarks[:, :, :2].astype(np.float64)
    _require_finite(xy, "a landmark", source, rows, width)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is found and named just below
        xy = xy - xy[:, :1, :]
    _require_finite(xy, "the landmark relative to the wrist", source, rows, width)
    flat = xy.reshape(len(xy), FEATURES)
    scale = np.abs(flat).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    features = (flat / scale).astype(np.float32)
    _require_finite(features.reshape(xy.shape), "the normalised feature", source, rows, width)
    return features


def _require_finite(values: np.ndarray, what: str, source: str, rows: Sequence[int] | None, width: int) -> None:
    """ValueError naming the first value of (N, 21, 2) ``values`` that is not finite."""
    bad = np.argwhere(~np.isfinite(values))
    if not len(bad):
        return
    sample, landmark, axis = (int(i) for i in bad[0])
    where = f"{source}:{rows[sample]}" if rows is not None else f"{source}: sample {sample}"
    raise ValueError(f"{where}: column {2 + landmark * width + axis} ({'xy'[axis]} of landmark {landmark}) "
                     f"gives {what} {values[sample, landmark, axis]}; landmarks must stay finite through the "
                     "normalisation")


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
def _parse_csv(path: Path, _mtime_ns: int, size: int) -> LandmarkSet:
    if size > MAX_CSV_BYTES:
        raise ValueError(f"{path}: {size / 2**20:.0f} MiB; landmark CSVs of at most {MAX_CSV_BYTES // 2**20} MiB "
                         "are read")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte {error.object[error.start]:#04x})") from None
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(text.splitlines())
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # a field past the csv module's size limit, a NUL byte
            raise ValueError(f"{path}:{reader.line_num}: not a CSV row ({error})") from None
        number = reader.line_num
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
        if not row[0].strip():
            raise ValueError(f"{path}:{number}: column 1 (the label) is empty")
        for column, cell in enumerate(row[1:], start=2):
            try:
                value = float(cell)
            except ValueError:
                raise ValueError(f"{path}:{number}: column {column} is {cell.strip()[:40]!r}, not a number") from None
            if not math.isfinite(value):
                raise ValueError(f"{path}:{number}: column {column} is {cell.strip()[:40]!r}; landmarks must be "
                                 "finite")
            if abs(value) > MAX_LANDMARK_MAGNITUDE:
                raise ValueError(f"{path}:{number}: column {column} is {cell.strip()[:40]!r}; landmark values lie "
                                 f"within +-{MAX_LANDMARK_MAGNITUDE:g} (normalised image coordinates, pixels or "
                                 "metres)")
            values[index, column - 2] = value
    raw_labels = [row[0].strip() for _, row in rows]
    if all(_INTEGER_LABEL.fullmatch(label) for label in raw_labels):
        numbers = np.array([int(label) for label in raw_labels])
        names = tuple(str(n) for n in sorted(set(numbers.tolist())))
        index_of = {int(name): i for i, name in enumerate(names)}
        labels = np.array([index_of[n] for n in numbers])
    else:
        names = tuple(sorted(set(raw_labels)))
        position = {name: i for i, name in enumerate(names)}
        labels = np.array([position[label] for label in raw_labels])
    if len(names) < 2:
        raise ValueError(f"{path}: every row has the label {_label(names[0])}; a classifier needs at least 2 labels")
    counts = np.bincount(labels, minlength=len(names))
    few = [f"{_label(names[i])} ({counts[i]})" for i in range(len(names)) if counts[i] < MIN_ROWS_PER_LABEL]
    if few:
        shown = ", ".join(few[:5]) + (f" and {len(few) - 5} more" if len(few) > 5 else "")
        raise ValueError(f"{path}: too few rows for label(s) {shown}: each needs at least "
                         f"{MIN_ROWS_PER_LABEL} (one for training, one for validation)")
    landmarks = values.reshape(len(values), LANDMARKS, width // LANDMARKS)
    features = normalise(landmarks, str(path), [number for number, _ in rows])
    return LandmarkSet(features, labels.astype(np.int64), names, str(path))


def _label(name: str) -> str:
    text = repr(name)
    return text if len(text) <= 42 else f"{text[:39]}..."


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def generated_set(count: int, seed: int) -> LandmarkSet:
    """The generator's ``count`` samples for ``seed``, kept in the workloads' cache: generating them is a Python loop
    per sample (about 4 s for the suite's 8000), and they depend only on the count, the seed and the generator's
    code, whose digest names the file."""
    from pytest_accel.workloads.gesture import hand

    path = _generated_cache_path(count, seed)
    cached = _read_generated(path, count)
    if cached is None:
        cached = hand.generate(count, seed)
        _write_generated(path, *cached)
    landmarks, labels = cached
    return LandmarkSet(normalise(landmarks), labels, hand.GESTURE_NAMES, f"generated (n={count}, seed={seed})")


def _generated_cache_path(count: int, seed: int) -> Path:
    from pytest_accel.environment import cache_dir
    from pytest_accel.workloads.cache import file_digest
    from pytest_accel.workloads.gesture import hand

    return cache_dir() / "gesture" / f"generated-{count}x{seed}-{file_digest(Path(hand.__file__))}.npz"


def _read_generated(path: Path, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached samples, or None when there are none or the file is not what the generator writes (then they are
    generated again)."""
    from pytest_accel.workloads.gesture.hand import GESTURE_NAMES

    try:
        with np.load(path, allow_pickle=False) as stored:
            landmarks, labels = stored["landmarks"], stored["labels"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if (landmarks.shape != (count, LANDMARKS, 3) or landmarks.dtype != np.float32 or labels.shape != (count,)
            or labels.dtype != np.int64 or not np.isfinite(landmarks).all()
            or not ((labels >= 0) & (labels < len(GESTURE_NAMES))).all()):
        return None
    return landmarks, labels


def _write_generated(path: Path, landmarks: np.ndarray, labels: np.ndarray) -> None:
    """Atomically (a reader sees no file or the whole one); a cache that cannot be written only costs the time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    except OSError:
        return
    try:
        with handle:
            np.savez(handle, landmarks=landmarks, labels=labels)
        os.replace(handle.name, path)
    except OSError:
        Path(handle.name).unlink(missing_ok=True)


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
