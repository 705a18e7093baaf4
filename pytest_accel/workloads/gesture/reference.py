"""The gesture convergence reference: epochs-to-target and final accuracy of K seeds on the CPU in fp32, with the
band their per-epoch validation curves span (what the report draws a device's curves against).

Stored in ``<reference-dir>/gesture/<data id>.json`` (shipped: ``suites/reference/``) with the recipe and data
identity, so a reference is never applied to other data or another recipe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_accel.metrics import Metric
from pytest_accel.progress import NULL_PROGRESS, Progress
from pytest_accel.references import ReferenceStore
from pytest_accel.stats import olympic_mean
from pytest_accel.workloads.gesture.data import LandmarkSet, generated_set, load_csv
from pytest_accel.workloads.gesture.train import Recipe, Trainer, curve_band

SUITE = "gesture"
GENERATED_TRAIN = (6000, 1)  # (count, seed)
GENERATED_VAL = (2000, 2)
GENERATED_IDENTITY = f"generated-{GENERATED_TRAIN[0]}x{GENERATED_TRAIN[1]}-{GENERATED_VAL[0]}x{GENERATED_VAL[1]}"
TRAINING_PHASE = "gesture reference: training CPU fp32 runs"
#: the most epochs a reference run may report to the target (a tiny data set's budget is a few thousand): larger
#: values in a reference file are damage, and would make the convergence test's statistics overflow
MAX_EPOCHS_TO_TARGET = 1_000_000
VAL_FRACTION = 0.25
SPLIT_SEED = 0


@dataclass(frozen=True)
class GestureData:
    train: LandmarkSet
    val: LandmarkSet
    identity: str


def load_gesture_data(csv_path: Path | None) -> GestureData:
    """The generated sets, or a CSV split 75/25 with a fixed seed."""
    if csv_path is None:
        return GestureData(generated_set(*GENERATED_TRAIN), generated_set(*GENERATED_VAL), GENERATED_IDENTITY)
    full = load_csv(csv_path)
    train, val = full.split(VAL_FRACTION, SPLIT_SEED)
    digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()[:12]
    return GestureData(train, val, f"csv-{csv_path.stem}-{digest}")


def identity(data: GestureData, recipe: Recipe) -> dict[str, Any]:
    """What a convergence reference is valid for: these data, trained with this recipe."""
    return {"data": data.identity, "recipe": recipe.describe()}


def record_reference(store: ReferenceStore, data: GestureData, recipe: Recipe, seeds: int, force: bool,
                     progress: Progress = NULL_PROGRESS) -> Path:
    """Train ``seeds`` runs in fp32 on the CPU and store epochs-to-target and final accuracy as the reference."""
    from pytest_accel.devices.torch import TorchBackend

    if seeds < 3:
        raise ValueError(f"--seeds={seeds}: the convergence test needs at least 3 reference seeds")
    path = store.path(SUITE, data.identity)
    if path.exists() and not force:  # before training, which takes a while
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    device = TorchBackend().open("cpu")
    trainer = Trainer(device, "fp32", recipe)
    runs = []
    progress.update(TRAINING_PHASE, 0, seeds, "seeds")
    for seed in range(seeds):
        runs.append(trainer.train(data.train, data.val, seed))
        epochs_to_target = runs[-1].epochs_to_target
        progress.update(TRAINING_PHASE, seed + 1, seeds, "seeds",
                        f"seed {seed}: target reached in {epochs_to_target} epochs" if epochs_to_target is not None
                        else f"seed {seed}: target not reached")
    budget = recipe.epochs_for(len(data.train.labels))
    epochs = [run.epochs_to_target if run.epochs_to_target is not None else budget + 1 for run in runs]
    finals = [run.final_accuracy for run in runs]
    metrics = [
        Metric(f"{SUITE}.epochs_to_target", olympic_mean(epochs), "epochs", "info", "lower",
               summary={"per_seed": epochs, "olympic_mean": olympic_mean(epochs)}),
        Metric(f"{SUITE}.final_accuracy", sum(finals) / len(finals), "", "accuracy", "higher",
               summary={"per_seed": finals, "curves": curve_band(runs)}),
    ]
    facts = {"seeds": seeds, "device": device.key, "dtype": "fp32", "train_samples": len(data.train.labels),
             "val_samples": len(data.val.labels)}
    return store.record(SUITE, data.identity, identity(data, recipe), metrics, facts, force=force)
