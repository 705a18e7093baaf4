"""Devices, backends and the backend registry.

A *backend* (PyTorch, ONNX Runtime, a vendor SDK) turns a device spec such as ``cuda:1`` or ``ort:cpu`` into an
open :class:`Device`. Workloads only ever see a ``Device``: they pick their code path by the runtime it offers
(``isinstance(device, TorchRuntime)``, ``OrtRuntime`` or ``OnnxModelRuntime``), synchronise through it and read
its memory counters.
A device of a vendor's own backend that offers one of these runtimes runs the suites' workloads unchanged.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, runtime_checkable

__all__ = [
    "Backend",
    "BackendRegistry",
    "CompiledOnnx",
    "Device",
    "DeviceInfo",
    "DeviceSpecError",
    "DeviceUnavailable",
    "EnergyMeter",
    "ExecutionPrecision",
    "OnnxModelRuntime",
    "OrtRuntime",
    "TorchRuntime",
    "UnavailableDevice",
    "normalise_key_part",
]


class DeviceSpecError(ValueError):
    """A ``--device`` value that no registered backend understands."""


class DeviceUnavailable(RuntimeError):
    """A spec a backend understands but cannot open on this machine (no CUDA here, say)."""

    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(f"device {spec!r} is not available: {reason}")
        self.spec = spec
        self.reason = reason


@dataclass(frozen=True)
class DeviceInfo:
    """What the hardware and software under test are; goes into the header, the report and every baseline."""

    backend: str
    spec: str
    vendor: str
    model: str
    memory_bytes: int | None = None
    cores: int | None = None
    driver_version: str | None = None
    runtime: dict[str, str] = field(default_factory=dict)
    compute_capability: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        parts = [f"{self.vendor} {self.model}".strip()]
        if self.cores:
            parts.append(f"{self.cores} cores")
        if self.memory_bytes:
            parts.append(f"{self.memory_bytes / 2**30:.1f} GiB")
        if self.compute_capability:
            parts.append(f"sm {self.compute_capability}")
        if self.driver_version:
            parts.append(f"driver {self.driver_version}")
        parts.extend(f"{name} {version}" for name, version in self.runtime.items())
        return ", ".join(parts)


def host_cpu_info(backend: str, spec: str, runtime: dict[str, str], extra: dict[str, str]) -> DeviceInfo:
    """The host CPU as a device of ``backend``."""
    from pytest_accel import environment

    vendor, model = environment.cpu_model()
    return DeviceInfo(backend=backend, spec=spec, vendor=vendor, model=model,
                      memory_bytes=environment.host_memory_bytes(), cores=environment.cpu_cores(), runtime=runtime,
                      extra=extra)


def normalise_key_part(text: str) -> str:
    """Lower-case, trademark-free, dash-separated: 'Intel(R) Xeon(R) CPU @ 2.2GHz' -> 'intel-xeon'."""
    text = re.sub(r"\((r|tm|c)\)", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"@.*$", " ", text)
    text = re.sub(r"\b(cpu|processor|\d+-core)\b", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"[^a-z0-9]+", "-", text.lower())
    return text.strip("-") or "unknown"


class EnergyMeter(ABC):
    """A cumulative energy counter of one device: joules since some fixed moment, read at any time.

    A counter that the hardware updates only every ``update_period_s`` reads the same between updates, so energy
    is measured over windows many periods long (see :mod:`pytest_accel.energy`).
    """

    #: what the meter is, for reports: "NVML total energy", "RAPL package 0"
    name: str = ""
    #: how often the counter changes, in seconds (an upper estimate where the hardware does not say)
    update_period_s: float = 0.0
    #: the smallest step the reading takes, in joules
    resolution_j: float = 0.0

    @abstractmethod
    def read_joules(self) -> float:
        """The counter now, in joules (only differences between two reads mean anything)."""

    def describe(self) -> str:
        return f"{self.name} (updated every {self.update_period_s * 1e3:.3g} ms, resolution {self.resolution_j:g} J)"


class Device(ABC):
    """One open device of one backend. Subclasses add the runtime handle their workloads need."""

    #: name of the runtime this device runs workloads with ("torch", "onnxruntime" for the built-ins): shown in
    #: messages and matched by ``accel_only``; workloads choose their path by :class:`TorchRuntime` or
    #: :class:`OrtRuntime`
    runtime: str = ""

    def __init__(self, spec: str, backend_name: str) -> None:
        self.spec = spec
        self.backend_name = backend_name
        self._info: DeviceInfo | None = None

    @property
    def id(self) -> str:
        """The pytest parameter id: ``ort:cpu`` -> ``ort-cpu``."""
        return self.spec.replace(":", "-")

    @property
    def available(self) -> bool:
        return True

    @property
    def unavailable_reason(self) -> str | None:
        """Why the device could not be opened (only for stand-ins of unavailable devices)."""
        return None

    @property
    def info(self) -> DeviceInfo:
        if self._info is None:
            self._info = self.describe()
        return self._info

    def add_info(self, facts: Mapping[str, str]) -> None:
        """Merge ``facts`` into ``info.extra`` (from the ``pytest_accel_update_device_info`` hook)."""
        if facts:
            self._info = replace(self.info, extra={**self.info.extra, **{str(k): str(v) for k, v in facts.items()}})

    @property
    def is_host_cpu(self) -> bool:
        """Whether this device is the host CPU (through any backend): slow per round, so quick profiles suit it.

        By default, a device that reports a core count; the built-in backends say exactly.
        """
        return self.info.cores is not None

    @property
    def key_prefix(self) -> str:
        """First part of the device key: the device type without its index (``cuda:1`` -> ``cuda``)."""
        return self.spec.split(":")[0]

    @property
    def key(self) -> str:
        """Baseline folder name: backend + normalised accelerator model (+ core count for CPUs, + the host CPU for
        accelerators whose launch-bound timings depend on it: ``cuda-nvidia-h100-80gb-hbm3-on-intel-xeon-8480``).

        Software versions stay out of it: they are recorded inside the baseline files.
        """
        info = self.info
        key = f"{self.key_prefix}-{normalise_key_part(f'{info.vendor} {info.model}')}"
        key += f"-{info.cores}c" if info.cores else ""
        if self.host_in_key:
            from pytest_accel import environment

            key += "-on-" + normalise_key_part(" ".join(environment.cpu_model()))
        return key

    @property
    def host_in_key(self) -> bool:
        """Whether the host CPU is part of the key: for accelerators driven by a separate host CPU, whose speed sets
        the launch-bound (batch-1) timings. Off by default, so out-of-tree keys stay as their backends make them."""
        return False

    @abstractmethod
    def describe(self) -> DeviceInfo:
        """Read the hardware and driver details (called once, lazily)."""

    def synchronize(self) -> None:
        """Block until all work queued on the device has finished. Host-synchronous runtimes need nothing."""

    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        return ("fp32",)

    @property
    def emulated_dtypes(self) -> dict[str, str]:
        """Those of :attr:`supported_dtypes` that this device runs only in software emulation, each with the
        evidence: slow, and not what hardware of that precision does, so the suites' default dtype lists leave them
        out (an explicit list runs them). Empty when unknown."""
        return {}

    def effective_precision(self, dtype: str) -> str:
        """The precision a workload in ``dtype`` really gets here: "tf32" for fp32 where TF32 is on."""
        return "tf32" if dtype == "fp32" and self.fp32_math == "tf32" else dtype

    @property
    def fp32_math(self) -> str:
        """How fp32 matmuls and convolutions are computed here: "ieee", or "tf32" (inputs rounded to 10 mantissa
        bits, as NVIDIA tensor cores do when TF32 is on). Parity bounds for fp32 follow it."""
        return "ieee"

    def set_fp32_math(self, allow_tf32: bool) -> None:
        """Allow or forbid TF32 for fp32 work, where the device has it (before any workload runs)."""

    def set_deterministic(self, deterministic: bool) -> None:
        """Ask for deterministic algorithms, where the runtime offers the choice (before any workload runs)."""

    @property
    def claims_determinism(self) -> bool:
        """Whether the same program with the same seed gives bit-identical results here."""
        return False

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window, where the backend can."""

    def peak_memory_bytes(self) -> int | None:
        """Peak device memory since :meth:`reset_peak_memory`, or ``None`` where the backend cannot tell."""
        return None

    def calibration_probe(self) -> Callable[[], None] | None:
        """A small fixed computation on this device, timed beside workloads to normalise away machine noise."""
        return None

    def energy_meter(self) -> EnergyMeter | None:
        """This device's energy counter, or None where it has none (then :attr:`no_energy_meter_reason` says why):
        energy metrics are then not reported, never reported as zero."""
        return None

    @property
    def no_energy_meter_reason(self) -> str:
        """Why :meth:`energy_meter` gives None."""
        return f"device {self.spec} ({self.backend_name} backend) offers no energy meter"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"


class UnavailableDevice(Device):
    """Stands in for a device that could not be opened, so its tests can be skipped with the reason."""

    def __init__(self, spec: str, backend_name: str, reason: str) -> None:
        super().__init__(spec, backend_name)
        self.reason = reason

    @property
    def available(self) -> bool:
        return False

    @property
    def unavailable_reason(self) -> str | None:
        return self.reason

    @property
    def key(self) -> str:
        return self.id

    def describe(self) -> DeviceInfo:
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="", model="unavailable")


@runtime_checkable
class TorchRuntime(Protocol):
    """A device that runs PyTorch: tensors go to ``torch_device``, every model passes ``prepare_module`` first."""

    spec: str

    @property
    def torch_device(self) -> Any: ...

    def prepare_module(self, module: Any) -> Any: ...


@runtime_checkable
class OrtRuntime(Protocol):
    """A device that runs ONNX models through ONNX Runtime sessions it creates: ``sample_feeds`` are real-sized
    inputs for a first, checked run; ``shape_ranges`` (input name -> min/opt/max shapes) let providers that build
    engines ahead of time build one for every batch the workload uses."""

    spec: str

    def create_session(
        self,
        model: Any,
        options: Any | None = None,
        *,
        sample_feeds: dict[str, Any] | None = None,
        shape_ranges: Mapping[str, Any] | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class ExecutionPrecision:
    """The precisions a compiled model really runs in, read back from the runtime: operations per (layer type,
    precision), and which layer types do the arithmetic. A runtime may lower an fp32 model (OpenVINO's CPU plugin
    runs it in bf16 where it can) or keep a "quantized" one mostly in float: this says which happened."""

    counts: Mapping[tuple[str, str], int]
    compute_layers: frozenset[str]

    @classmethod
    def from_counts(cls, counts: Mapping[tuple[str, str], int], compute_layers: Iterable[str]) -> ExecutionPrecision:
        return cls(dict(counts), frozenset(compute_layers))

    @property
    def compute(self) -> dict[str, int]:
        """Compute operations per precision, most first."""
        totals: dict[str, int] = {}
        for (layer, precision), count in self.counts.items():
            if layer in self.compute_layers:
                totals[precision] = totals.get(precision, 0) + count
        return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))

    @property
    def dominant(self) -> str | None:
        """The precision most compute operations ran in (None for a model without any)."""
        return next(iter(self.compute), None)

    def share(self, precision: str) -> float:
        total = sum(self.compute.values())
        return self.compute.get(precision, 0) / total if total else 0.0

    def summary(self) -> dict[str, Any]:
        """For reports: compute operations per precision and per layer type."""
        by_layer: dict[str, dict[str, int]] = {}
        for (layer, precision), count in sorted(self.counts.items()):
            if layer in self.compute_layers:
                by_layer.setdefault(layer, {})[precision] = count
        return {"compute_ops": self.compute, "by_layer": by_layer}


@runtime_checkable
class CompiledOnnx(Protocol):
    """An ONNX model compiled for one device by its own SDK: host arrays in, host arrays out."""

    def run(self, feeds: Mapping[str, Any]) -> list[Any]: ...

    def execution_precision(self) -> ExecutionPrecision | None: ...


@runtime_checkable
class OnnxModelRuntime(Protocol):
    """A device whose SDK compiles ONNX models itself (OpenVINO; a vendor's NPU compiler): the bundled workloads run
    their ONNX exports through it. ``sample_feeds`` are real-sized inputs for a first, checked run; ``max_batch`` the
    largest batch the workload will give (compilers that fix shapes ahead of time build for it)."""

    spec: str

    def compile_onnx(self, model: Any, *, sample_feeds: Mapping[str, Any] | None = None,
                     max_batch: int = 1) -> CompiledOnnx: ...


class Backend(ABC):
    """A family of devices. Register instances through the ``pytest_accel_register_backends`` hook."""

    #: short unique name, e.g. "torch"
    name: str = ""
    #: one line for error messages: the specs this backend understands
    grammar: str = ""
    #: the backend's own manifest (expected failures, unsupported tests, tolerances, coverage floor of its
    #: devices; see :mod:`pytest_accel.manifest`), shipped beside it; None for none
    manifest_path: Path | None = None

    @abstractmethod
    def parse(self, spec: str) -> str | None:
        """Return the canonical spec if this backend understands ``spec``, else ``None``. Must not import heavy
        libraries for specs it plainly does not own."""

    @abstractmethod
    def discover(self) -> list[str]:
        """Specs of every device of this backend present on this machine (for ``--device=auto``)."""

    @abstractmethod
    def open(self, spec: str) -> Device:
        """Open a canonical spec; raise :class:`DeviceUnavailable` with the reason when it is not here."""


class BackendRegistry:
    """Backends by name, in registration order; parses ``--device`` values (opened by
    :func:`pytest_accel.devices.resolver.resolve_devices`)."""

    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}

    def register(self, backend: Backend) -> None:
        if not isinstance(backend, Backend):
            raise TypeError(f"pytest-accel: can only register Backend instances, got {backend!r}")
        if not backend.name:
            raise ValueError(f"pytest-accel: backend {backend!r} has no name")
        if backend.name in self._backends:
            raise ValueError(f"pytest-accel: a backend named {backend.name!r} is already registered")
        self._backends[backend.name] = backend

    def __contains__(self, name: str) -> bool:
        return name in self._backends

    def __iter__(self) -> Iterator[Backend]:
        return iter(list(self._backends.values()))

    def __len__(self) -> int:
        return len(self._backends)

    def describe(self) -> str:
        return "; ".join(f"{b.name}: {b.grammar}" for b in self._backends.values()) or "(none)"

    def parse(self, spec: str, option: str = "--device") -> tuple[Backend, str]:
        """Find the backend that owns ``spec``. Backends registered later win, so plugins can take over a name.
        ``option`` is how the user gave the spec, named in the error."""
        cleaned = spec.strip()
        for backend in reversed(list(self._backends.values())):
            canonical = backend.parse(cleaned)
            if canonical is not None:
                return backend, canonical
        raise DeviceSpecError(
            f"{option}={spec!r} is not a device any registered backend knows; registered: {self.describe()}; "
            "or 'auto' for every available device"
        )

    def discover(self) -> list[tuple[Backend, str]]:
        found: list[tuple[Backend, str]] = []
        for backend in self._backends.values():
            found.extend((backend, spec) for spec in backend.discover())
        return found
