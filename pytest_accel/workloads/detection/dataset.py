"""A procedurally generated detection data set in YOLO format, deterministic by seed.

Filled shapes of three classes (circle, rectangle, triangle) in varied sizes, colours and rotations, partly
overlapping, on textured backgrounds (gradients, blurred noise, stripes, checkerboards) with thin-line and dot
clutter and sensor noise. Each image depends only on (seed, split, index), so a data set of N images is a prefix of
one with more. Written to a cache folder atomically (built in a temporary folder, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pytest_accel.progress import NULL_PROGRESS, Progress

CLASSES: tuple[str, ...] = ("circle", "rectangle", "triangle")
GENERATOR_VERSION = 1
SPLITS = {"train": 0, "val": 1}
BUILDING_PHASE = "building detection data set"


@dataclass(frozen=True)
class DatasetSpec:
    seed: int = 0
    train_images: int = 400
    val_images: int = 100
    imgsz: int = 320
    max_objects: int = 6
    min_size: int = 18
    max_size: int = 110

    def __post_init__(self) -> None:
        for name in ("train_images", "val_images", "imgsz", "max_objects", "min_size", "max_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"DatasetSpec.{name}={getattr(self, name)} must be >= 1")
        if not self.min_size <= self.max_size < self.imgsz:
            raise ValueError(f"need min_size <= max_size < imgsz, got {self.min_size}, {self.max_size}, {self.imgsz}")

    @property
    def fingerprint(self) -> str:
        payload = json.dumps({"version": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Box:
    cls: int
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    def overlap_of(self, other: Box) -> float:
        """Share of ``other`` covered by this box."""
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return max(0.0, w) * max(0.0, h) / other.area if other.area else 0.0


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    base = rng.uniform(20, 235, 3)
    kind = rng.integers(4)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 0:  # linear gradient between two colours
        other = rng.uniform(20, 235, 3)
        angle = rng.uniform(0, np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy)
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        image = base * (1 - t[..., None]) + other * t[..., None]
    elif kind == 1:  # blurred noise blobs
        coarse = rng.normal(0, 1, (size // 16, size // 16, 3)).astype(np.float32)
        blobs = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        image = base + 35 * blobs
    elif kind == 2:  # stripes
        period = rng.uniform(6, 30)
        angle = rng.uniform(0, np.pi)
        phase = (np.cos(angle) * xx + np.sin(angle) * yy) * size / period
        image = base + 25 * np.sign(np.sin(2 * np.pi * phase))[..., None]
    else:  # checkerboard
        cell = int(rng.integers(8, 40))
        board = ((np.arange(size)[:, None] // cell + np.arange(size)[None, :] // cell) % 2).astype(np.float32)
        image = base + 30 * (board[..., None] - 0.5)
    return np.clip(image, 0, 255).astype(np.uint8)


def _clutter(rng: np.random.Generator, image: np.ndarray) -> None:
    import cv2

    size = image.shape[0]
    for _ in range(int(rng.integers(3, 12))):
        color = tuple(int(c) for c in rng.uniform(0, 255, 3))
        if rng.random() < 0.6:
            p0 = tuple(int(v) for v in rng.integers(0, size, 2))
            p1 = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.line(image, p0, p1, color, int(rng.integers(1, 3)), cv2.LINE_AA)
        else:
            center = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.circle(image, center, int(rng.integers(1, 4)), color, -1, cv2.LINE_AA)


def _contrasting_colour(rng: np.random.Generator, image: np.ndarray, box: Box) -> tuple[int, int, int]:
    x0, y0, x1, y1 = (int(max(0, v)) for v in (box.x0, box.y0, box.x1, box.y1))
    local = image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].reshape(-1, 3).mean(axis=0)
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if np.abs(colour - local).sum() > 150:
            break
    return int(colour[0]), int(colour[1]), int(colour[2])


def _shape_points(rng: np.random.Generator, cls: int, cx: float, cy: float, size: float) -> np.ndarray | None:
    """Polygon of a rectangle or triangle (None for circles), rotated at random."""
    if cls == 0:
        return None
    angle = rng.uniform(0, 2 * np.pi)
    if cls == 1:
        aspect = rng.uniform(0.45, 1.0)
        w, h = size / 2, size * aspect / 2
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
    else:
        radius = size / 2
        angles = np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.normal(0, 0.12, 3)
        corners = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return corners @ rotation.T + np.array([cx, cy])


def render_image(spec: DatasetSpec, split: str, index: int) -> tuple[np.ndarray, list[Box]]:
    """One image (RGB uint8) and its boxes; depends only on (spec.seed, split, index) and the size settings."""
    import cv2

    rng = np.random.default_rng([spec.seed, SPLITS[split], index])
    size = spec.imgsz
    image = _background(rng, size)
    _clutter(rng, image)
    boxes: list[Box] = []
    for _ in range(int(rng.integers(1, spec.max_objects + 1))):
        for _attempt in range(10):
            cls = int(rng.integers(len(CLASSES)))
            diameter = float(np.exp(rng.uniform(np.log(spec.min_size), np.log(spec.max_size))))
            cx, cy = rng.uniform(diameter / 2, size - diameter / 2, 2)
            points = _shape_points(rng, cls, cx, cy, diameter)
            if points is None:
                box = Box(cls, cx - diameter / 2, cy - diameter / 2, cx + diameter / 2, cy + diameter / 2)
            else:
                (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
                box = Box(cls, float(x0), float(y0), float(x1), float(y1))
            # overlap is allowed, hiding most of an earlier object is not: its label would lie
            if all(box.overlap_of(other) < 0.3 for other in boxes):
                break
        else:
            continue
        colour = _contrasting_colour(rng, image, box)
        if points is None:
            cv2.circle(image, (int(round(cx)), int(round(cy))), int(round(diameter / 2)), colour, -1, cv2.LINE_AA)
        else:
            cv2.fillPoly(image, [np.round(points).astype(np.int32)], colour, cv2.LINE_AA)
        boxes.append(box)
    noise = rng.normal(0, rng.uniform(2, 9), image.shape)
    image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return image, boxes


def yolo_label_lines(boxes: list[Box], size: int) -> list[str]:
    lines = []
    for box in boxes:
        x0, y0 = max(box.x0, 0.0), max(box.y0, 0.0)
        x1, y1 = min(box.x1, float(size)), min(box.y1, float(size))
        cx, cy, w, h = (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size
        lines.append(f"{box.cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def data_yaml_text(root: Path) -> str:
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(CLASSES))
    return f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n"


def ensure_dataset(cache_dir: Path, spec: DatasetSpec = DatasetSpec(), progress: Progress = NULL_PROGRESS) -> Path:
    """The data set's YAML file, generating the data set first if this cache does not hold it yet (telling
    ``progress`` how many images are done)."""
    import cv2

    root = cache_dir / "detection" / f"shapes-{spec.fingerprint}"
    yaml_path = root / "data.yaml"
    if yaml_path.is_file():
        return yaml_path
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    total = spec.train_images + spec.val_images
    done = 0
    try:
        progress.update(BUILDING_PHASE, done, total, "images")
        for split, count in (("train", spec.train_images), ("val", spec.val_images)):
            (building / "images" / split).mkdir(parents=True)
            (building / "labels" / split).mkdir(parents=True)
            for index in range(count):
                image, boxes = render_image(spec, split, index)
                stem = f"{split}_{index:05d}"
                cv2.imwrite(str(building / "images" / split / f"{stem}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                labels = "\n".join(yolo_label_lines(boxes, spec.imgsz)) + "\n"
                (building / "labels" / split / f"{stem}.txt").write_text(labels)
                done += 1
                progress.update(BUILDING_PHASE, done, total, "images")
        (building / "spec.json").write_text(json.dumps({"version": GENERATOR_VERSION, **asdict(spec)}, indent=2))
        (building / "data.yaml").write_text(data_yaml_text(root))
        try:
            os.rename(building, root)
        except OSError:  # another process finished first: use its copy
            if not yaml_path.is_file():
                raise
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return yaml_path
