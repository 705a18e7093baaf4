"""What a compiling runtime counts about itself (XLA today; ``torch.compile`` or a vendor's graph compiler later):
graph compilations, the time they took, executions, and operations that ran on the host instead of the device.

A device offers them by satisfying :class:`CountingRuntime` (one method, cumulative counters since the process
started). Whoever times a workload reads them before and after warm-up and after the steady-state rounds
(:func:`pytest_accel.timing.measure_latency`, the gesture trainer's epochs), and :func:`counter_metrics` turns the two
windows into metrics: compile time stays apart from the steady-state time, and a compilation or a host fallback
after warm-up is a defect with a bound of 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

from pytest_accel.metrics import Metric


@dataclass(frozen=True)
class RuntimeCounters:
    """Cumulative counters of one runtime (or, after a subtraction, what happened in one window)."""

    compilations: int = 0
    compile_seconds: float = 0.0
    executions: int = 0
    execute_seconds: float = 0.0
    #: operation name -> calls that the runtime could not run on the device and ran on the host CPU instead
    host_fallbacks: Mapping[str, int] = field(default_factory=dict)

    def __sub__(self, earlier: RuntimeCounters) -> RuntimeCounters:
        fallbacks = {name: count - earlier.host_fallbacks.get(name, 0) for name, count in self.host_fallbacks.items()}
        return RuntimeCounters(
            compilations=self.compilations - earlier.compilations,
            compile_seconds=self.compile_seconds - earlier.compile_seconds,
            executions=self.executions - earlier.executions,
            execute_seconds=self.execute_seconds - earlier.execute_seconds,
            host_fallbacks={name: count for name, count in sorted(fallbacks.items()) if count},
        )

    @property
    def fallback_calls(self) -> int:
        return sum(self.host_fallbacks.values())


@runtime_checkable
class CountingRuntime(Protocol):
    """A device whose runtime compiles graphs and counts what it did (see the module's documentation)."""

    spec: str

    def runtime_counters(self) -> RuntimeCounters: ...


@runtime_checkable
class StepMarking(Protocol):
    """A runtime that traces lazily and runs what it traced when a step is marked (torch_xla): a training loop
    marks the end of every optimiser step, so each step is one graph, compiled once, instead of a whole epoch
    unrolled into a graph that grows with it."""

    def mark_step(self) -> None: ...


def read_counters(device: Any) -> RuntimeCounters | None:
    """The device's counters now, or None for a device that keeps none."""
    return device.runtime_counters() if isinstance(device, CountingRuntime) else None


def counter_metrics(name: str, warmup: RuntimeCounters, steady: RuntimeCounters) -> list[Metric]:
    """Metrics of one measured workload ``name``: what warm-up compiled and how long that took (the first calls pay
    it, the steady-state samples must not), and what the steady state compiled again or ran on the host, each
    bounded at 0."""
    steady_summary = {"executions": steady.executions, "execute_seconds": steady.execute_seconds}
    return [
        Metric(f"{name}.warmup_compilations", warmup.compilations, "", "info", "lower",
               summary={"compile_seconds": warmup.compile_seconds, "executions": warmup.executions}),
        Metric(f"{name}.compile_time", warmup.compile_seconds, "s", "startup", "lower",
               summary={"compilations": warmup.compilations, "window": "first run and warm-up"}),
        Metric(f"{name}.steady_compilations", steady.compilations, "", "parity", "lower", limit=0.0,
               summary={**steady_summary, "compile_seconds": steady.compile_seconds},
               limit_reason="a graph compiled again after warm-up: something in the workload changes from call to "
                            "call (a shape, a Python value traced as a constant), so every such call pays the "
                            "compiler"),
        Metric(f"{name}.host_fallbacks", steady.fallback_calls, "", "parity", "lower", limit=0.0,
               summary={**steady_summary, "ops": dict(steady.host_fallbacks)},
               limit_reason="operations of the steady state ran on the host CPU instead of the device: "
                            + (", ".join(f"{op} x{count}" for op, count in steady.host_fallbacks.items())
                               or "none")),
    ]


__all__ = ["CountingRuntime", "RuntimeCounters", "StepMarking", "counter_metrics", "read_counters"]
