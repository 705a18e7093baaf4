"""The gesture classifier (a small MLP on the 42 normalised landmark features) and its training recipe.

Everything random is fixed by the seed and independent of the device: the initial weights are drawn on the CPU and
copied over, the batch order comes from a host-side generator, and dropout masks come from the device's generator
seeded the same way. Mixed precision is PyTorch autocast (bf16, or fp16 with a gradient scaler).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from pytest_accel.devices import Device, TorchRuntime
from pytest_accel.devices.counters import RuntimeCounters, StepMarking, read_counters
from pytest_accel.errors import DeviceFailure, WorkloadUnsupported
from pytest_accel.turns import pass_turn_if_due
from pytest_accel.workloads.gesture.data import FEATURES, LandmarkSet

AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class Recipe:
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.2
    learning_rate: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 60
    #: small data sets get more epochs: at least this many optimiser steps in all (a 176-sample recorded set reached
    #: 94.8% in 60 epochs = 120 steps, 100% with 1200)
    min_steps: int = 2400
    target_accuracy: float = 0.95

    def steps_per_epoch(self, samples: int) -> int:
        return -(-samples // self.batch_size)

    def epochs_for(self, samples: int) -> int:
        return max(self.max_epochs, -(-self.min_steps // self.steps_per_epoch(samples)))

    def describe(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), "dropout": self.dropout, "learning_rate": self.learning_rate,
                "batch_size": self.batch_size, "max_epochs": self.max_epochs, "min_steps": self.min_steps,
                "target_accuracy": self.target_accuracy, "optimizer": "Adam", "loss": "cross-entropy"}


def build_classifier(classes: int, recipe: Recipe, seed: int) -> Any:
    """The MLP with CPU-drawn initial weights (identical on every device)."""
    import torch
    from torch import nn

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = FEATURES
    for hidden in recipe.hidden:
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(recipe.dropout)]
        width = hidden
    layers.append(nn.Linear(width, classes))
    model = nn.Sequential(*layers)
    torch.random.set_rng_state(generator_state)
    return model


@dataclass
class TrainingRun:
    seed: int
    dtype: str
    #: per epoch: the training loss (mean over the epoch's batches, dropout on), validation accuracy and loss
    epoch_losses: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    probe_seconds: list[float] = field(default_factory=list)
    samples: int = 0
    epochs_to_target: int | None = None
    seconds_to_target: float | None = None
    #: a compiling runtime's counters over the first epoch (with its evaluation) and over the epochs after it
    warmup_counters: RuntimeCounters | None = None
    steady_counters: RuntimeCounters | None = None

    @property
    def final_accuracy(self) -> float:
        return self.val_accuracy[-1]

    @property
    def samples_per_second(self) -> float:
        return self.samples / sum(self.epoch_seconds)

    def curves(self) -> dict[str, list[float] | list[int]]:
        """Per-epoch curves, as the report plots them."""
        return {"epoch": list(range(1, len(self.val_accuracy) + 1)), "val_accuracy": self.val_accuracy,
                "val_loss": self.val_losses, "train_loss": self.epoch_losses}


def curve_band(runs: Sequence[TrainingRun]) -> dict[str, Any]:
    """The reference band of several runs' curves: per epoch, the lowest and highest validation accuracy and loss
    (over the epochs every run reached)."""
    epochs = min(len(run.val_accuracy) for run in runs)
    band: dict[str, Any] = {"epoch": list(range(1, epochs + 1)), "runs": len(runs)}
    for name, per_run in (("val_accuracy", [run.val_accuracy for run in runs]),
                          ("val_loss", [run.val_losses for run in runs])):
        columns = [[values[epoch] for values in per_run] for epoch in range(epochs)]
        band[f"{name}_low"] = [min(column) for column in columns]
        band[f"{name}_high"] = [max(column) for column in columns]
    return band


class Trainer:
    """Trains and evaluates the classifier on one device in one precision."""

    def __init__(self, device: Device, dtype: str, recipe: Recipe) -> None:
        if dtype != "fp32" and dtype not in AUTOCAST_DTYPES:
            raise ValueError(f"dtype {dtype!r}: expected fp32, {', '.join(AUTOCAST_DTYPES)}")
        if not isinstance(device, TorchRuntime):
            raise WorkloadUnsupported(f"training runs with PyTorch; {device.spec} runs {device.runtime}")
        if dtype not in device.supported_dtypes:
            raise WorkloadUnsupported(f"{device.spec} does not support {dtype}")
        import torch

        self.torch = torch
        self.device = device
        self.torch_device = device.torch_device
        self.dtype = dtype
        self.recipe = recipe

    def _autocast(self) -> Any:
        import contextlib

        if self.dtype == "fp32":
            return contextlib.nullcontext()
        return self.torch.autocast(self.torch_device.type, dtype=getattr(self.torch, AUTOCAST_DTYPES[self.dtype]))

    def _tensors(self, data: LandmarkSet) -> tuple[Any, Any]:
        torch = self.torch
        return (torch.from_numpy(data.features).to(self.torch_device),
                torch.from_numpy(data.labels).to(self.torch_device))

    def evaluate(self, model: Any, features: Any, labels: Any) -> tuple[float, float]:
        """Accuracy and mean cross-entropy loss, dropout off."""
        model.eval()
        with self.torch.no_grad(), self._autocast():
            logits = model(features).float()
        model.train()
        loss = self.torch.nn.functional.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        self.device.synchronize()  # a lazy runtime computes both in one graph; each read would trace its own
        return float(accuracy.item()), float(loss.item())

    def train(
        self,
        train: LandmarkSet,
        val: LandmarkSet,
        seed: int,
        stop_at_target: bool = False,
        probe: Callable[[], None] | None = None,
    ) -> TrainingRun:
        """Train from the seed's initial weights; with ``probe``, the device's calibration probe is timed before
        every epoch (outside the epoch's time) for noise normalisation."""
        torch = self.torch
        recipe = self.recipe
        model = build_classifier(len(train.class_names), recipe, seed).to(self.torch_device)
        model = self.device.prepare_module(model)
        optimiser = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate)
        scaler = torch.amp.GradScaler(self.torch_device.type, enabled=self.dtype == "fp16")
        loss_fn = torch.nn.CrossEntropyLoss()
        features, labels = self._tensors(train)
        val_features, val_labels = self._tensors(val)
        order = np.random.default_rng(seed)
        torch.manual_seed(seed)  # dropout masks
        run = TrainingRun(seed, self.dtype)
        model.train()
        elapsed = 0.0
        counters = [read_counters(self.device)]
        mark_step = self.device.mark_step if isinstance(self.device, StepMarking) else None
        for epoch in range(1, recipe.epochs_for(len(train.labels)) + 1):
            permutation = order.permutation(len(train.labels))
            # each batch's indices a tensor of its own: slices of one device tensor would put each offset into the
            # graph, and a compiling runtime (XLA) would compile every step of the epoch anew
            batches = [torch.from_numpy(permutation[first : first + recipe.batch_size]).to(self.torch_device)
                       for first in range(0, len(permutation), recipe.batch_size)]
            pass_turn_if_due()  # between epochs, untimed (see pytest_accel.turns)
            if probe is not None:
                self.device.synchronize()
                start = time.perf_counter()
                probe()
                self.device.synchronize()
                run.probe_seconds.append(time.perf_counter() - start)
            # copied from the host, not made on the device: a lazy runtime would trace a made zero as a constant and
            # compile each epoch's first step apart from the steps that add to a computed total
            total = torch.zeros(()).to(self.torch_device)
            self.device.synchronize()
            start = time.perf_counter()
            for batch in batches:
                optimiser.zero_grad(set_to_none=True)
                with self._autocast():
                    loss = loss_fn(model(features[batch]).float(), labels[batch])
                scaler.scale(loss).backward()
                scaler.step(optimiser)
                scaler.update()
                total += loss.detach() * len(batch)
                if mark_step is not None:
                    mark_step()
            self.device.synchronize()
            seconds = time.perf_counter() - start
            elapsed += seconds
            run.epoch_seconds.append(seconds)
            run.samples += len(permutation)
            run.epoch_losses.append(float(total.item()) / len(permutation))
            accuracy, val_loss = self.evaluate(model, val_features, val_labels)
            self._require_finite(run.epoch_losses[-1], val_loss, epoch, seed)
            run.val_accuracy.append(accuracy)
            run.val_losses.append(val_loss)
            if epoch == 1:
                counters.append(read_counters(self.device))
            if run.epochs_to_target is None and run.val_accuracy[-1] >= recipe.target_accuracy:
                run.epochs_to_target = epoch
                run.seconds_to_target = elapsed
                if stop_at_target:
                    break
        counters.append(read_counters(self.device))
        before, warm, after = counters[0], counters[1], counters[-1]
        if before is not None and warm is not None and after is not None:
            run.warmup_counters, run.steady_counters = warm - before, after - warm
        return run

    def _require_finite(self, train_loss: float, val_loss: float, epoch: int, seed: int) -> None:
        """A run whose loss is NaN or infinite has no accuracy, speed or epochs to report: the features are checked
        finite where they are loaded, so the device or its precision diverged."""
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise DeviceFailure(f"gesture training on {self.device.spec} in {self.dtype} (seed {seed}) diverged: "
                                f"epoch {epoch} has training loss {train_loss} and validation loss {val_loss}; no "
                                "metric is reported from a run with a non-finite loss")

    def first_step_gradients(self, train: LandmarkSet, seed: int) -> dict[str, np.ndarray]:
        """Gradients of the first batch's loss for the seed's initial weights, dropout off (it draws on the device's
        generator, which differs between devices)."""
        torch = self.torch
        model = build_classifier(len(train.class_names), self.recipe, seed).to(self.torch_device)
        model = self.device.prepare_module(model)
        model.eval()
        batch = np.random.default_rng(seed).permutation(len(train.labels))[: self.recipe.batch_size]
        features = torch.from_numpy(train.features[batch]).to(self.torch_device)
        labels = torch.from_numpy(train.labels[batch]).to(self.torch_device)
        with self._autocast():
            loss = torch.nn.functional.cross_entropy(model(features).float(), labels)
        loss.backward()
        return {name: p.grad.detach().float().cpu().numpy() for name, p in model.named_parameters()}
