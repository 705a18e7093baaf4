"""Devices whose SDK compiles a PyTorch module ahead of time: LiteRT converts it to a ``.tflite`` model and compiles
that for its CPU, GPU or a vendor's NPU plugin; ExecuTorch exports it and lowers it to a delegate's ``.pte``. The
protocols the bundled workloads drive them through, and how much of the graph the accelerator took.

A compiled model has fixed input shapes where its runtime needs them (``static_batch``): the workloads then give it
batches of that size only, and say so where a test needs another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from pytest_accel.devices import ExecutionPrecision


@dataclass(frozen=True)
class Delegation:
    """How much of a compiled graph the device's delegate (its accelerator's compiler) took: operators delegated
    out of all, in how many partitions, and the operators left on the host CPU by type. A delegate that takes part
    of a graph runs the rest on the host silently: this is what makes it visible."""

    delegated_ops: int
    total_ops: int
    partitions: int
    on_host: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.delegated_ops <= self.total_ops or self.total_ops < 1:
            raise ValueError(f"delegated {self.delegated_ops} of {self.total_ops} operators: need 0 <= delegated <= "
                             "total and total >= 1")

    @property
    def coverage(self) -> float:
        """Operators delegated / all operators."""
        return self.delegated_ops / self.total_ops

    @property
    def complete(self) -> bool:
        return self.delegated_ops == self.total_ops

    def summary(self) -> dict[str, Any]:
        """For reports: the counts and the host's operators, most first."""
        return {"delegated_ops": self.delegated_ops, "total_ops": self.total_ops, "partitions": self.partitions,
                "on_host": dict(sorted(self.on_host.items(), key=lambda item: (-item[1], item[0])))}


@runtime_checkable
class CompiledModel(Protocol):
    """A model compiled for one device: host arrays in (in the order of the example inputs), host arrays out; runs
    are synchronous (the outputs are on the host when ``run`` returns)."""

    #: the batch size the model was compiled for, where its shapes are fixed; None when any batch up to the
    #: ``max_batch`` it was compiled with runs
    static_batch: int | None

    def run(self, inputs: Sequence[Any]) -> list[Any]: ...

    def execution_precision(self) -> ExecutionPrecision | None: ...

    def delegation(self) -> Delegation | None: ...


@runtime_checkable
class TorchModelCompiler(Protocol):
    """A device whose SDK compiles PyTorch modules ahead of time (LiteRT, ExecuTorch; a vendor's AOT compiler).

    ``compile_torch`` compiles ``module`` (fp32, eval mode, on the CPU) for ``example_inputs`` (CPU tensors), for
    batches up to ``max_batch`` where the runtime allows other batch sizes. Compiling can take a minute: the device
    keeps what it made under ``cache_dir``, in a file named from ``cache_key`` (which names the module's weights and
    shapes) and its own settings (delegate, precision, options), written atomically, and reuses it."""

    spec: str

    def compile_torch(self, module: Any, example_inputs: tuple[Any, ...], *, cache_key: str, cache_dir: Path,
                      max_batch: int = 1) -> CompiledModel: ...
