"""Train the bundled default detector: ultralytics YOLOv8n from scratch on the generated shapes data set.

Run through the console script: ``pytest-accel build-detector`` (see its --help). Fixed seed; ultralytics'
deterministic mode. On this project's 2-core CPU machine a 60-epoch run takes tens of minutes; on a GPU a minute.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_accel.progress import NULL_PROGRESS, Progress
from pytest_accel.workloads.detection.dataset import DatasetSpec, ensure_dataset
from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics

ARCHITECTURE = "yolov8n.yaml"
TRAINING_PHASE = "training detector"


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 60
    imgsz: int = 320
    batch: int = 16
    seed: int = 0
    device: str = "cpu"
    workers: int = 2
    #: ultralytics' own output (its settings, per-epoch tables and progress bars); False leaves its warnings only
    verbose: bool = True


@dataclass(frozen=True)
class TrainResult:
    weights: Path
    seconds: float
    epochs: int
    data_yaml: Path


def train_detector(
    out: Path, cache_dir: Path, settings: TrainSettings, spec: DatasetSpec | None = None,
    progress: Progress = NULL_PROGRESS,
) -> TrainResult:
    import_ultralytics()
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    spec = spec or DatasetSpec()
    data_yaml = ensure_dataset(cache_dir, spec, progress)
    # absolute: ultralytics puts a relative project under its own runs folder in the current directory (runs/detect/)
    runs = (cache_dir / "detection" / "training-runs").resolve()
    start = time.perf_counter()
    model = YOLO(ARCHITECTURE)

    reported = [0]

    def epoch_done(trainer: Any) -> None:
        done = min(trainer.epoch + 1, trainer.epochs)
        if done <= reported[0]:  # the final validation of best.pt calls this once more, as epoch epochs + 1
            return
        reported[0] = done
        progress.update(TRAINING_PHASE, done, trainer.epochs, "epochs",
                        f"fitness {trainer.fitness:.4f}" if trainer.fitness is not None else "")

    model.add_callback("on_fit_epoch_end", epoch_done)
    progress.update(TRAINING_PHASE, 0, settings.epochs, "epochs")
    # train(verbose=False) still logs settings and epoch tables at INFO, and its progress bars stay on unless
    # the logger's level is above INFO (ultralytics.utils.tqdm.TQDM)
    level = LOGGER.level
    with contextlib.ExitStack() as quiet:
        if not settings.verbose:
            LOGGER.setLevel(logging.WARNING)
            quiet.callback(LOGGER.setLevel, level)
            # its image-caching bars ignore the logger (TQDM(disable=LOCAL_RANK > 0)) and write to sys.stdout;
            # its warnings still show: LOGGER's handler holds the stdout of ultralytics' import
            quiet.enter_context(contextlib.redirect_stdout(quiet.enter_context(open(os.devnull, "w"))))
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
            verbose=settings.verbose,
        )
    seconds = time.perf_counter() - start
    best = Path(model.trainer.best)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out)
    return TrainResult(out, seconds, settings.epochs, data_yaml)
