"""The XLA backend: ``xla``, ``xla:N`` — PyTorch on XLA devices through torch_xla and PJRT (Google TPUs; the host
CPU with ``PJRT_DEVICE=CPU``, which is how it runs on a machine without a TPU).

torch_xla traces PyTorch operations lazily into graphs, compiles each new graph with XLA and runs it when the
program asks for a result or marks a step. So this device differs from an eager one in three ways the suites must
see: ``synchronize()`` launches the traced graph and waits for it (``torch_xla.sync()``, then
``xm.wait_device_ops()``); a model output nobody keeps is never computed (a dead lazy tensor is dropped from the
graph), so the outputs of prepared models are kept until the next synchronisation; and compilation is a cost of its
own, counted by torch_xla's metrics and reported through :class:`~pytest_accel.devices.counters.CountingRuntime`.

Built in, registered beside the torch backend: ``xla`` names a PyTorch device, recognised (with what to install)
where torch_xla is absent, as the vendor extensions' names are. Importing this module imports neither torch nor
torch_xla; opening a device does.
"""

from __future__ import annotations

import os
import re
import weakref
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from pytest_accel.devices import Backend, Device, DeviceInfo, DeviceUnavailable, host_cpu_info
from pytest_accel.devices.counters import RuntimeCounters
from pytest_accel.devices.torch import _NATIVE_CPU_FLAGS, _PROBE_SIZE, TorchDevice

_SPEC = re.compile(r"^xla(?::(\d+))?$")
#: torch_xla releases are built against one PyTorch release each (a mismatch fails to load: undefined symbol)
INSTALL_HINT = ("pip install 'torch==2.9.*' 'torch_xla==2.9.*' (torch_xla matches its PyTorch release; tox -e xla "
                "builds such an environment); then PJRT_DEVICE=CPU runs XLA on the host CPU, PJRT_DEVICE=TPU on a "
                "TPU VM")
#: torch_xla's metric and counter names (torch_xla/csrc: computation_client.cpp, xla_graph_executor.cpp)
COMPILE_TIME, EXECUTE_TIME, UNCACHED_COMPILE = "CompileTime", "ExecuteTime", "UncachedCompile"
#: what torch_xla runs through its CPU fallback to read a value to the host (``.item()``): a transfer the workload
#: asked for, not an operation computed on the host instead of the device
HOST_READS = frozenset({"aten::_local_scalar_dense"})
#: XLA's fp32 matmul precision (torch_xla.backends.set_mat_mul_precision) -> the precision fp32 work gets on a TPU
_MATMUL_PRECISION = {"default": "bf16", "high": "tf32", "highest": "fp32"}


class TorchXla:
    """The imported torch_xla modules this backend uses."""

    def __init__(self) -> None:
        import torch_xla
        import torch_xla.core.xla_model as xm
        import torch_xla.debug.metrics as met
        import torch_xla.runtime as xr

        self.torch_xla, self.xm, self.met, self.xr = torch_xla, xm, met, xr
        self.version = str(getattr(torch_xla, "__version__", "unknown")).split("+")[0]


def load_torch_xla(spec: str) -> TorchXla:
    """torch_xla imported, or DeviceUnavailable saying what is missing and what to install."""
    try:
        installed = metadata.version("torch_xla")
    except metadata.PackageNotFoundError:
        raise DeviceUnavailable(spec, f"torch_xla is not installed; {INSTALL_HINT}") from None
    try:
        return TorchXla()
    except (ImportError, OSError, RuntimeError) as error:
        try:
            torch_version = metadata.version("torch")
        except metadata.PackageNotFoundError:
            torch_version = "none"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DeviceUnavailable(
            spec, f"torch_xla {installed} is installed but fails to load beside torch {torch_version} ({first_line}); "
                  f"{INSTALL_HINT}") from None


class XlaDevice(TorchDevice):
    runtime = "torch_xla"
    #: workloads run models under torch.no_grad(), not torch.inference_mode(): torch_xla's functionalised tensors
    #: need the version counters inference tensors lack ("Cannot set version_counter for inference tensor")
    inference_mode = False
    #: no: every new output shape is a new graph to compile, so post-processing whose shapes follow the data (NMS)
    #: runs on the host; on the device it compiled on nearly every call and ultralytics' NMS, past its time limit,
    #: returned a fraction of the boxes (6.6% matched the CPU's)
    data_dependent_shapes = False

    def __init__(self, spec: str, xla: TorchXla, index: int) -> None:
        super().__init__("cpu")  # TorchDevice's set-up; the device itself is set below
        self.spec, self.backend_name, self.xla = spec, XlaBackend.name, xla
        self.torch_device = xla.torch_xla.device(index)
        self.type, self.index = "xla", index
        self.hardware = str(xla.xm.xla_device_hw(self.torch_device))  # CPU, TPU, CUDA, NEURON
        #: outputs of prepared models since the last synchronisation: a lazy tensor nobody holds is never computed
        self._pending: list[Any] = []
        self._probe: Callable[[], None] | None = None

    @property
    def is_host_cpu(self) -> bool:
        return self.hardware == "CPU"

    @property
    def host_in_key(self) -> bool:
        return not self.is_host_cpu

    @property
    def key_prefix(self) -> str:
        return "xla"

    def describe(self) -> DeviceInfo:
        runtime = {"torch": self.torch.__version__.split("+")[0], "torch_xla": self.xla.version,
                   "pjrt": self.hardware}
        extra = {"pjrt_device": str(self.xla.xr.device_type()), "xla_device": str(self.torch_device),
                 "fp32_math": self.fp32_math, **self.math_settings()}
        if self.is_host_cpu:
            return host_cpu_info(self.backend_name, self.spec, runtime, extra)
        kind = str(self.xla.xm.xla_device_kind(self.torch_device))
        vendor = {"TPU": "Google", "CUDA": "NVIDIA", "NEURON": "AWS"}.get(self.hardware, self.hardware)
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor=vendor, model=kind, runtime=runtime,
                          extra=extra)

    def synchronize(self) -> None:
        """Launch what was traced (compiling it the first time) and wait until the device has run it."""
        self.xla.torch_xla.sync()
        self.xla.xm.wait_device_ops()
        self._pending.clear()

    def mark_step(self) -> None:
        """End of a training step: launch its graph without waiting (as torch_xla's own data loader does)."""
        self.xla.torch_xla.sync()
        self._pending.clear()

    def keep(self, output: Any) -> Any:
        """Hold ``output`` until the next :meth:`synchronize`, which then computes it."""
        self._pending.append(output)
        return output

    def prepare_module(self, module: Any) -> Any:
        """Keep every output of the module until the next synchronisation: a timed forward whose result the caller
        drops would otherwise be traced and never run, and time nothing."""
        pending = weakref.ref(self)

        def keep_output(_module: Any, _inputs: Any, output: Any) -> None:
            device = pending()
            if device is not None:
                device.keep(output)

        module.register_forward_hook(keep_output)
        return module

    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        """fp32 and bf16: XLA's native types on TPUs; fp16 is left to the devices that have it."""
        return ("fp32", "bf16")

    @property
    def emulated_dtypes(self) -> dict[str, str]:
        if not self.is_host_cpu:
            return {}
        from pytest_accel.environment import cpu_flags

        flags, native = cpu_flags(), _NATIVE_CPU_FLAGS["bf16"]
        if not flags or flags.intersection(native):
            return {}
        return {"bf16": f"XLA's CPU client on a CPU that reports no {', '.join(native[:-1])} or {native[-1]}"}

    def _matmul_precision(self) -> str | None:
        backends = getattr(self.xla.torch_xla, "backends", None)
        getter = getattr(backends, "get_mat_mul_precision", None)
        return str(getter()) if callable(getter) else None

    def fp32_math_and_reason(self) -> tuple[str, str]:
        """On TPUs fp32 matmuls and convolutions run at XLA's matmul precision (one bf16 pass by default); the
        CPU client computes fp32 in fp32."""
        if self.is_host_cpu:
            return "ieee", "XLA's CPU client computes fp32 in fp32"
        precision = self._matmul_precision()
        ran = _MATMUL_PRECISION.get(precision or "", "fp32")
        return ("ieee" if ran == "fp32" else ran), f"torch_xla matmul precision {precision!r}"

    def effective_precision(self, dtype: str) -> str:
        math = self.fp32_math
        return (math if math != "ieee" else "fp32") if dtype == "fp32" else dtype

    def set_fp32_math(self, allow_tf32: bool) -> None:
        """IEEE fp32 unless reduced fp32 math is allowed (as for TF32 on NVIDIA GPUs): TPUs' default is bf16."""
        setter = getattr(getattr(self.xla.torch_xla, "backends", None), "set_mat_mul_precision", None)
        if not self.is_host_cpu and callable(setter):
            setter("high" if allow_tf32 else "highest")

    def math_settings(self) -> dict[str, str]:
        settings = {"deterministic_algorithms": str(bool(self.torch.are_deterministic_algorithms_enabled())).lower()}
        precision = self._matmul_precision()
        return settings | ({"xla_mat_mul_precision": precision} if precision else {})

    @property
    def claims_determinism(self) -> bool:
        """No: ``torch.manual_seed`` does not seed XLA's random generator (``torch_xla.manual_seed`` does), so two
        runs with the same seed draw different dropout masks."""
        return False

    def reset_peak_memory(self) -> None:
        """Nothing to reset: PJRT keeps its own peak, read as it is."""

    def peak_memory_bytes(self) -> int | None:
        """PJRT's peak bytes in use where the client keeps allocator statistics (TPUs, GPUs; not the CPU client)."""
        try:
            info = self.xla.xm.get_memory_info(self.torch_device)
        except RuntimeError:  # UNIMPLEMENTED: GetAllocatorStats is not supported (the CPU client)
            return None
        peak = info.get("peak_bytes_used") if isinstance(info, dict) else None
        return int(peak) if peak is not None else None

    @property
    def no_energy_meter_reason(self) -> str:
        return f"torch_xla offers no energy counter for {self.hardware} devices"

    def calibration_probe(self) -> Callable[[], None]:
        """A 256² matmul on this device, its result kept so that it runs (and compiled once, before timing)."""
        if self._probe is None:
            torch = self.torch
            generator = torch.Generator().manual_seed(0)
            matrix = torch.randn(_PROBE_SIZE, _PROBE_SIZE, generator=generator).to(self.torch_device)

            def probe() -> None:
                self.keep(torch.mm(matrix, matrix))
                self.synchronize()

            self._probe = probe
        return self._probe

    def runtime_counters(self) -> RuntimeCounters:
        """torch_xla's process-wide counters: compilations that missed its graph cache, compile and execute time
        (its metrics are in nanoseconds), and the operations it ran through its CPU fallback."""
        met = self.xla.met

        def total(metric: str) -> tuple[int, float]:
            data = met.metric_data(metric)
            return (int(data[0]), float(data[1]) / 1e9) if data else (0, 0.0)

        compiled, compile_seconds = total(COMPILE_TIME)
        executions, execute_seconds = total(EXECUTE_TIME)
        fallbacks = {str(name): int(met.counter_value(name) or 0) for name in met.executed_fallback_ops()
                     if name not in HOST_READS}
        return RuntimeCounters(compilations=int(met.counter_value(UNCACHED_COMPILE) or 0),
                               compile_seconds=compile_seconds, executions=executions,
                               execute_seconds=execute_seconds, host_fallbacks=fallbacks)


class XlaBackend(Backend):
    name = "xla"
    grammar = "xla, xla:N (PyTorch on XLA through torch_xla: TPUs, or the host CPU with PJRT_DEVICE=CPU)"
    manifest_path = Path(__file__).with_name("xla_manifest.toml")

    def parse(self, spec: str) -> str | None:
        match = _SPEC.match(spec.strip().lower())
        return f"xla:{int(match.group(1))}" if match and match.group(1) else ("xla" if match else None)

    def discover(self) -> list[str]:
        """Nothing unless PJRT_DEVICE names a device type: torch_xla would otherwise pick one by probing, and the
        host CPU is already the cpu device."""
        if not os.environ.get("PJRT_DEVICE"):
            return []
        try:
            xla = load_torch_xla("xla")
            count = len(xla.xm.get_xla_supported_devices())
        except (DeviceUnavailable, RuntimeError):
            return []
        return ["xla"] if count == 1 else [f"xla:{i}" for i in range(count)]

    def open(self, spec: str) -> Device:
        canonical = self.parse(spec)
        assert canonical is not None, spec
        xla = load_torch_xla(canonical)  # without PJRT_DEVICE, torch_xla picks a TPU if it finds one, else the CPU
        index = int(canonical.partition(":")[2] or 0)
        try:
            devices = xla.xm.get_xla_supported_devices()
        except RuntimeError as error:
            raise DeviceUnavailable(canonical, f"torch_xla {xla.version} cannot start PJRT_DEVICE="
                                               f"{os.environ.get('PJRT_DEVICE', '(unset)')}: "
                                               f"{str(error).splitlines()[0]}") from None
        if index >= len(devices):
            raise DeviceUnavailable(canonical, f"PJRT_DEVICE={os.environ.get('PJRT_DEVICE', '(unset)')} has "
                                               f"{len(devices)} device(s): xla:0..xla:{len(devices) - 1}")
        return XlaDevice(canonical, xla, index)


__all__ = ["INSTALL_HINT", "XlaBackend", "XlaDevice", "load_torch_xla"]
