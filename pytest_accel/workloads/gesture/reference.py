"""The gesture convergence reference: epochs-to-target and final accuracy of K seeds on the CPU in fp32.

Stored in ``baselines/reference/gesture/<data id>.json`` with the recipe and data identity, so a reference is never
applied to other data or another recipe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_accel.baselines import BaselineStore, metric_record, utc_now
from pytest_accel.environment import software_stack
from pytest_accel.metrics import Metric
from pytest_accel.stats import olympic_mean
from pytest_accel.workloads.gesture.data import LandmarkSet, generated_set, load_csv
from pytest_accel.workloads.gesture.train import Recipe, Trainer

SUITE = "gesture"
GENERATED_TRAIN = (6000, 1)  # (count, seed)
GENERATED_VAL = (2000, 2)
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
        return GestureData(generated_set(*GENERATED_TRAIN), generated_set(*GENERATED_VAL),
                           f"generated-{GENERATED_TRAIN[0]}x{GENERATED_TRAIN[1]}-{GENERATED_VAL[0]}x{GENERATED_VAL[1]}")
    full = load_csv(csv_path)
    train, val = full.split(VAL_FRACTION, SPLIT_SEED)
    digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()[:12]
    return GestureData(train, val, f"csv-{csv_path.stem}-{digest}")


def matching_reference(document: dict[str, Any] | None, data: GestureData, recipe: Recipe) -> str | None:
    if document is None:
        return "no reference file"
    measured = document.get("measured", {})
    if measured.get("data") != data.identity:
        return "reference recorded for other data"
    if measured.get("recipe") != recipe.describe():
        return "reference recorded with another recipe"
    return None


def record_reference(store: BaselineStore, data: GestureData, recipe: Recipe, seeds: int, force: bool) -> Path:
    from pytest_accel.devices.torch import TorchBackend

    if seeds < 3:
        raise ValueError(f"--seeds={seeds}: the convergence test needs at least 3 reference seeds")
    path = store.reference_path(SUITE, data.identity)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    device = TorchBackend().open("cpu")
    trainer = Trainer(device, "fp32", recipe)
    runs = [trainer.train(data.train, data.val, seed) for seed in range(seeds)]
    budget = recipe.epochs_for(len(data.train.labels))
    epochs = [run.epochs_to_target if run.epochs_to_target is not None else budget + 1 for run in runs]
    finals = [run.final_accuracy for run in runs]
    metrics = {
        f"{SUITE}.epochs_to_target": metric_record(
            Metric(f"{SUITE}.epochs_to_target", olympic_mean(epochs), "epochs", "info", "lower",
                   summary={"per_seed": epochs, "olympic_mean": olympic_mean(epochs)}), None),
        f"{SUITE}.final_accuracy": metric_record(
            Metric(f"{SUITE}.final_accuracy", sum(finals) / len(finals), "", "accuracy", "higher",
                   summary={"per_seed": finals}), 0.01),
    }
    header = {
        "measured": {"data": data.identity, "recipe": recipe.describe(), "seeds": seeds, "device": device.key,
                     "dtype": "fp32", "train_samples": len(data.train.labels), "val_samples": len(data.val.labels)},
        "software": software_stack(),
        "recorded_at": utc_now(),
    }
    store.write(path, metrics, header, None)
    return path
