"""Devices that compile the PyTorch detector ahead of time (LiteRT, ExecuTorch): the runner gives the compiled model
its first output's inputs, splits batches for a model compiled for a fixed batch, and passes on what ran and what
was delegated."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_accel.devices import Device, DeviceInfo
from pytest_accel.devices.compiled import CompiledModel, Delegation, TorchModelCompiler
from pytest_accel.errors import WorkloadUnsupported
from pytest_accel.workloads.detection.runners import CompiledTorchRunner, make_runner

torch = pytest.importorskip("torch")


class TwoOutputs(torch.nn.Module):
    """Outputs like the detector's in eval mode: (decoded predictions, raw heads)."""

    def forward(self, images: Any) -> Any:
        return images.mean(dim=(2, 3)) * 2, images


@dataclass
class FakeSource:
    cache_dir: Path
    imgsz: int = 8
    digest: str = "abc123"

    def torch_module(self) -> Any:
        return TwoOutputs()


class EagerModel:
    """"Compiled" as it is: the same arithmetic, for a fixed batch when ``static_batch`` is set."""

    def __init__(self, module: Any, static_batch: int | None) -> None:
        self.module = module
        self.static_batch = static_batch
        self.calls: list[int] = []

    def run(self, inputs: Any) -> list[Any]:
        [images] = inputs
        if self.static_batch is not None:
            assert len(images) == self.static_batch, "a fixed-batch model was given another batch"
        self.calls.append(len(images))
        with torch.inference_mode():
            return [self.module(torch.from_numpy(images)).numpy()]

    def execution_precision(self) -> None:
        return None

    def delegation(self) -> Delegation:
        return Delegation(delegated_ops=3, total_ops=4, partitions=1, on_host={"aten.mean": 1})


class CompilingDevice(Device):
    runtime = "traced"

    def __init__(self, static_batch: int | None) -> None:
        super().__init__("traced", "traced")
        self.static_batch = static_batch
        self.compiled: list[tuple[str, Path, int, tuple[int, ...]]] = []

    def describe(self) -> DeviceInfo:
        return DeviceInfo(backend="traced", spec=self.spec, vendor="host", model="tracer")

    def compile_torch(self, module: Any, example_inputs: tuple[Any, ...], *, cache_key: str, cache_dir: Path,
                      max_batch: int = 1) -> CompiledModel:
        self.compiled.append((cache_key, cache_dir, max_batch, tuple(example_inputs[0].shape)))
        return EagerModel(module, self.static_batch)


def test_the_protocols_are_what_the_runner_dispatches_on(tmp_path: Path) -> None:
    device = CompilingDevice(static_batch=None)
    assert isinstance(device, TorchModelCompiler)
    runner = make_runner(device, FakeSource(tmp_path), "fp32", max_batch=4)
    assert isinstance(runner, CompiledTorchRunner) and isinstance(runner.compiled, CompiledModel)
    [(key, folder, max_batch, shape)] = device.compiled
    assert (key, folder, max_batch, shape) == ("abc123-8", tmp_path / "detection" / "compiled", 4, (1, 3, 8, 8))


def test_a_fixed_batch_model_gets_batches_in_pieces_with_the_same_result(tmp_path: Path) -> None:
    images = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    dynamic = CompiledTorchRunner(CompilingDevice(None), FakeSource(tmp_path), "fp32", 4)
    fixed = CompiledTorchRunner(CompilingDevice(1), FakeSource(tmp_path), "fp32", 4)
    expected = images.mean(axis=(2, 3)) * 2  # the first output only, as the ONNX export has it
    np.testing.assert_allclose(dynamic.to_host(dynamic.forward(dynamic.to_device(images))), expected, atol=1e-6)
    np.testing.assert_allclose(fixed.to_host(fixed.forward(fixed.to_device(images))), expected, atol=1e-6)
    assert fixed.compiled.calls == [1, 1, 1, 1] and dynamic.compiled.calls == [4]
    assert fixed.static_batch == 1 and fixed.delegation().coverage == 0.75


def test_a_batch_that_does_not_split_and_other_dtypes_are_refused_in_words(tmp_path: Path) -> None:
    pairs = CompiledTorchRunner(CompilingDevice(2), FakeSource(tmp_path), "fp32", 4)
    with pytest.raises(WorkloadUnsupported, match="compiled for batch 2; a batch of 3 does not split into it"):
        pairs.forward(np.zeros((3, 3, 8, 8), dtype=np.float32))
    with pytest.raises(WorkloadUnsupported, match="compiles the fp32 PyTorch detector.*bf16 is not one of its"):
        CompiledTorchRunner(CompilingDevice(1), FakeSource(tmp_path), "bf16", 1)


@pytest.mark.parametrize(("delegated", "total"), [(5, 4), (-1, 4), (0, 0)])
def test_a_delegation_that_cannot_be_is_refused(delegated: int, total: int) -> None:
    with pytest.raises(ValueError, match=f"delegated {delegated} of {total} operators"):
        Delegation(delegated_ops=delegated, total_ops=total, partitions=1)


def test_the_delegation_summary_lists_the_hosts_operators_most_first() -> None:
    delegation = Delegation(220, 300, 13, {"aten.split": 20, "aten.arange": 40, "aten.softmax": 20})
    assert not delegation.complete and delegation.coverage == pytest.approx(220 / 300)
    assert list(delegation.summary()["on_host"]) == ["aten.arange", "aten.softmax", "aten.split"]


def test_the_gate_self_checks_slowdown_reaches_the_compiled_model(tmp_path: Path) -> None:
    import time

    from pytest_accel.gatecheck import inject_slowdown

    device = CompilingDevice(static_batch=1)
    inject_slowdown(device, 1.0)
    runner = CompiledTorchRunner(device, FakeSource(tmp_path), "fp32", 1)
    real_run = runner.compiled._compiled.run
    runner.compiled._compiled.run = lambda inputs: (time.sleep(0.02), real_run(inputs))[1]
    start = time.perf_counter()
    runner.forward(np.zeros((1, 3, 8, 8), dtype=np.float32))
    assert time.perf_counter() - start >= 0.039, "the run's own 20 ms, then as much again of work"
    assert runner.static_batch == 1 and runner.delegation().coverage == 0.75
