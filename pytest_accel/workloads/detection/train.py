"""Train the bundled default detector: ultralytics YOLOv8n from scratch on the generated shapes data set.

Run through the console script: ``pytest-accel build-detector`` (see its --help). Fixed seed; ultralytics'
deterministic mode. On this project's 2-core CPU machine a 60-epoch run takes tens of minutes; on a GPU a minute.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_accel.workloads.detection.dataset import DatasetSpec, ensure_dataset
from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics

ARCHITECTURE = "yolov8n.yaml"


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 60
    imgsz: int = 320
    batch: int = 16
    seed: int = 0
    device: str = "cpu"
    workers: int = 2


@dataclass(frozen=True)
class TrainResult:
    weights: Path
    seconds: float
    epochs: int
    data_yaml: Path


def train_detector(
    out: Path, cache_dir: Path, settings: TrainSettings, spec: DatasetSpec | None = None
) -> TrainResult:
    import_ultralytics()
    from ultralytics import YOLO

    spec = spec or DatasetSpec()
    data_yaml = ensure_dataset(cache_dir, spec)
    runs = cache_dir / "detection" / "training-runs"
    start = time.perf_counter()
    model = YOLO(ARCHITECTURE)
    model.train(
        data=str(data_yaml),
        epochs=settings.epochs,
        imgsz=settings.imgsz,
        batch=settings.batch,
        device=settings.device,
        workers=settings.workers,
        seed=settings.seed,
        deterministic=True,
        pretrained=False,
        amp=False,
        plots=False,
        cache="ram",
        project=str(runs),
        name=f"shapes-{spec.fingerprint}-s{settings.seed}-e{settings.epochs}",
        exist_ok=True,
        verbose=True,
    )
    seconds = time.perf_counter() - start
    best = Path(model.trainer.best)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out)
    return TrainResult(out, seconds, settings.epochs, data_yaml)
