"""The PyTorch backend: cpu, cuda[:N], mps, xpu[:N], the devices of vendors' PyTorch extensions (npu, rbln, hpu:
see :mod:`pytest_accel.devices.torch_extensions`) and any other PrivateUse1 (out-of-tree) device an installed
extension registers.

torch is imported only when a device of this backend is opened or a spec needs it to be recognised.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pytest_accel.devices import Backend, Device, DeviceInfo, DeviceUnavailable, EnergyMeter, host_cpu_info
from pytest_accel.devices.torch_extensions import EXTENSIONS, why_missing
from pytest_accel.devices.torch_extensions import SPEC as _EXTENSION

if TYPE_CHECKING:
    import torch

_BUILTIN = re.compile(r"^(cpu|mps)$|^(cuda|xpu)(:\d+)?$")
_OTHER = re.compile(r"^([a-z][a-z0-9_]*)(:\d+)?$")
_PROBE_SIZE = 256
#: CPU flags (as py-cpuinfo names them, x86 and Arm) of arithmetic in each half precision: without one, PyTorch's
#: CPU kernels convert to fp32 and back around every operation (the detector in fp16 took about 10x its fp32 time
#: on a 2-core EPYC without AVX512-FP16)
_NATIVE_CPU_FLAGS = {"fp16": ("avx512_fp16", "amx_fp16", "asimdhp"), "bf16": ("avx512_bf16", "amx_bf16", "bf16")}


def _torch() -> Any:
    try:
        import torch
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise DeviceUnavailable(
            "torch", f"PyTorch is not installed ({error}); pip install 'pytest-accel[torch]'"
        ) from None
    return torch


def _privateuse1_name() -> str | None:
    torch = _torch()
    name = torch._C._get_privateuse1_backend_name()
    return None if name == "privateuseone" else name


class TorchDevice(Device):
    runtime = "torch"

    def __init__(self, spec: str) -> None:
        super().__init__(spec, TorchBackend.name)
        self.torch = _torch()
        self.torch_device: torch.device = self.torch.device(spec)
        self.type = self.torch_device.type
        self.index = self.torch_device.index or 0
        #: memory still allocated when the peak window opened (earlier models the session keeps loaded)
        self._allocated_at_reset = 0
        #: the energy meter and why there is none, once looked for
        self._energy: tuple[EnergyMeter | None, str] | None = None

    @property
    def is_host_cpu(self) -> bool:
        return self.type == "cpu"

    @property
    def host_in_key(self) -> bool:
        return self.type not in ("cpu", "mps")  # Apple's GPU and CPU are one chip, named by the device already

    def _module(self) -> Any:
        """The per-device-type torch module (torch.cuda, torch.xpu, torch.<privateuse1>), if any."""
        return getattr(self.torch, self.type, None)

    def _accelerator(self) -> Any | None:
        """``torch.accelerator`` when it drives this device's type (PyTorch 2.6+)."""
        accelerator = getattr(self.torch, "accelerator", None)
        try:
            current = accelerator.current_accelerator() if accelerator is not None else None
        except Exception:  # noqa: BLE001 - an out-of-tree backend may not register the accelerator hooks
            return None
        return accelerator if current is not None and current.type == self.type else None

    def _call_on_device(self, function_name: str) -> Any:
        """``torch.<type>.<fn>`` for this very device: given the device where the function takes one, else run with
        this device made current (``npu:1`` must not time or measure device 0). ``torch.accelerator.<fn>(device)``
        only where the device module lacks the function: it is documented as a no-op while the accelerator is not
        initialised, which would make timings measure launches."""
        module = self._module()
        function = getattr(module, function_name, None)
        if callable(function):
            if _takes_an_argument(function):
                return function(self.torch_device)
            switch = getattr(module, "device", None)
            with switch(self.index) if switch is not None else contextlib.nullcontext():
                return function()
        accelerator = self._accelerator()
        if accelerator is not None and callable(getattr(accelerator, function_name, None)):
            return getattr(accelerator, function_name)(self.torch_device)
        return None

    def describe(self) -> DeviceInfo:
        torch = self.torch
        runtime = {"torch": torch.__version__.split("+")[0]}
        if self.type == "cpu":
            return host_cpu_info(self.backend_name, self.spec, runtime,
                                 {"torch_threads": str(torch.get_num_threads()), **self.math_settings()})
        if self.type == "cuda":
            index = self.torch_device.index or 0
            props = torch.cuda.get_device_properties(index)
            is_hip = getattr(torch.version, "hip", None)
            runtime["hip" if is_hip else "cuda"] = str(is_hip or torch.version.cuda)
            if torch.backends.cudnn.is_available():
                runtime["cudnn"] = str(torch.backends.cudnn.version())
            name = props.name
            vendor = "AMD" if is_hip else "NVIDIA"
            if name.upper().startswith(vendor):
                name = name[len(vendor) :].strip()
            return DeviceInfo(
                backend=self.backend_name,
                spec=self.spec,
                vendor=vendor,
                model=name,
                memory_bytes=int(props.total_memory),
                driver_version=_nvidia_driver_version(),
                runtime=runtime,
                compute_capability=f"{props.major}.{props.minor}",
                extra={**self.math_settings(), "energy_meter": self._energy_meter_text()},
            )
        if self.type == "mps":
            vendor, chip = _apple_chip()
            return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor=vendor, model=chip, runtime=runtime,
                              extra=self.math_settings())
        module = self._module()
        model = self.type
        get_name = getattr(module, "get_device_name", None)
        if callable(get_name):
            try:
                model = str(get_name(self.torch_device.index or 0))
            except Exception:  # noqa: BLE001 - a vendor module may not implement it fully
                pass
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor=self.type, model=model, runtime=runtime,
                          extra=self.math_settings())

    def synchronize(self) -> None:
        """Wait for this device (``npu:1`` itself, not whichever device is current)."""
        if self.type != "cpu":
            self._call_on_device("synchronize")

    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        """fp32 and fp16 everywhere; bf16 where this very device runs it natively (not emulated)."""
        if self.type in ("cpu", "mps"):
            return ("fp32", "bf16", "fp16") if self.type == "cpu" else ("fp32", "fp16", "bf16")
        return ("fp32", "fp16", "bf16") if self._native_bf16() else ("fp32", "fp16")

    @property
    def emulated_dtypes(self) -> dict[str, str]:
        if self.type != "cpu":
            return {}
        from pytest_accel.environment import cpu_flags

        flags = cpu_flags()
        if not flags:
            return {}
        return {dtype: f"the CPU reports no {', '.join(native[:-1])} or {native[-1]}"
                for dtype, native in _NATIVE_CPU_FLAGS.items()
                if dtype in self.supported_dtypes and not flags.intersection(native)}

    def _native_bf16(self) -> bool:
        torch = self.torch
        if self.type == "cuda" and not getattr(torch.version, "hip", None):
            return bool(torch.cuda.get_device_capability(self.index) >= (8, 0))  # Ampere and later
        supported = getattr(self._module(), "is_bf16_supported", None)
        if not callable(supported):
            return False
        switch = getattr(self._module(), "device", None)
        with switch(self.index) if switch is not None else contextlib.nullcontext():
            try:
                return bool(supported(including_emulation=False))
            except TypeError:  # an older or out-of-tree signature
                return bool(supported())

    @property
    def fp32_math(self) -> str:
        return self.fp32_math_and_reason()[0]

    def fp32_math_and_reason(self) -> tuple[str, str]:
        if self.type != "cuda" or getattr(self.torch.version, "hip", None):
            return "ieee", "no TF32 on this device type"
        capability = tuple(self.torch.cuda.get_device_capability(self.index))
        return tf32_math(tf32_flags(self.torch), capability, os.environ)

    def set_fp32_math(self, allow_tf32: bool) -> None:
        if self.type == "cuda":
            set_tf32(self.torch, allow_tf32)

    def set_deterministic(self, deterministic: bool) -> None:
        """Deterministic algorithms for every op that has them, cuDNN without autotuning (the cuBLAS workspace
        variable that needs is set by the plugin before CUDA starts)."""
        torch = self.torch
        torch.use_deterministic_algorithms(deterministic)
        if self.type == "cuda":
            torch.backends.cudnn.benchmark = not deterministic and torch.backends.cudnn.benchmark
            torch.backends.cudnn.deterministic = deterministic

    def math_settings(self) -> dict[str, str]:
        """What decides this run's numerics, for the device info and every baseline written."""
        torch = self.torch
        settings = {"deterministic_algorithms": str(bool(torch.are_deterministic_algorithms_enabled())).lower()}
        if self.type == "cuda":
            math, reason = self.fp32_math_and_reason()
            flags = tf32_flags(torch)
            settings |= {
                "fp32_math": math,
                "fp32_math_reason": reason,
                "tf32_matmul": str(flags["matmul"]).lower(),
                "tf32_cudnn_conv": str(flags["conv"]).lower(),
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "cudnn_benchmark": str(bool(torch.backends.cudnn.benchmark)).lower(),
                "cudnn_deterministic": str(bool(torch.backends.cudnn.deterministic)).lower(),
                "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG", "unset"),
            }
        return settings

    @property
    def claims_determinism(self) -> bool:
        """The CPU is; other devices when ``torch.use_deterministic_algorithms(True)`` is in force."""
        return self.type == "cpu" or bool(self.torch.are_deterministic_algorithms_enabled())

    def reset_peak_memory(self) -> None:
        """Open a peak window. The peak restarts at what is still allocated (models earlier tests loaded), so that
        amount is remembered and :meth:`peak_memory_bytes` reports only what this window added."""
        if self.type in ("cpu", "mps"):
            return
        self._call_on_device("reset_peak_memory_stats")
        allocated = self._call_on_device("memory_allocated")
        self._allocated_at_reset = int(allocated) if allocated is not None else 0

    def peak_memory_bytes(self) -> int | None:
        """Peak allocated memory above the start of the window; None where PyTorch keeps no peak (CPU, and MPS,
        whose driver_allocated_memory is the driver's current total, not a peak)."""
        if self.type in ("cpu", "mps"):
            return None
        peak = self._call_on_device("max_memory_allocated")
        return max(int(peak) - self._allocated_at_reset, 0) if peak is not None else None

    def prepare_module(self, module: torch.nn.Module) -> torch.nn.Module:
        """Hand a model (already on this device, in its dtype) to the backend before it is run.

        The identity here. A backend that compiles, converts or instruments models (a vendor SDK's graph compiler,
        ``torch.compile`` with a custom backend) overrides it; workloads call it on every model they run.
        """
        return module

    def energy_meter(self) -> EnergyMeter | None:
        return self._find_energy_meter()[0]

    @property
    def no_energy_meter_reason(self) -> str:
        return self._find_energy_meter()[1]

    def _find_energy_meter(self) -> tuple[EnergyMeter | None, str]:
        """NVIDIA GPUs: NVML's total-energy counter; other device types have no meter here."""
        if self._energy is None:
            if self.type == "cuda" and not getattr(self.torch.version, "hip", None):
                from pytest_accel.devices.nvml import open_nvml_meter

                self._energy = open_nvml_meter(self.torch.cuda.get_device_properties(self.index))
            else:
                self._energy = None, super().no_energy_meter_reason
        return self._energy

    def _energy_meter_text(self) -> str:
        meter, reason = self._find_energy_meter()
        return meter.describe() if meter is not None else f"none: {reason}"

    def calibration_probe(self) -> Callable[[], None]:
        torch = self.torch
        generator = torch.Generator().manual_seed(0)
        matrix = torch.randn(_PROBE_SIZE, _PROBE_SIZE, generator=generator).to(self.torch_device)

        def probe() -> None:
            torch.mm(matrix, matrix)
            self.synchronize()

        return probe


def _takes_an_argument(function: Any) -> bool:
    import inspect

    try:
        return bool(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # a builtin without a signature: the device modules' take the device
        return True


def tf32_flags(torch: Any) -> dict[str, bool]:
    """Whether PyTorch lets cuBLAS matmuls and cuDNN convolutions use TF32, read through whichever API this
    PyTorch has (mixing the legacy ``allow_tf32`` flags with the newer ``fp32_precision`` ones is an error)."""
    backends = torch.backends
    if not hasattr(backends.cuda.matmul, "fp32_precision"):
        return {"matmul": bool(backends.cuda.matmul.allow_tf32), "conv": bool(backends.cudnn.allow_tf32)}

    def resolved(*levels: Any) -> bool | None:  # "none" defers to the enclosing level
        for level in levels:
            value = getattr(level, "fp32_precision", "none")
            if value != "none":
                return bool(value == "tf32")
        return None

    matmul = resolved(backends.cuda.matmul, backends.cuda, backends)
    conv = resolved(backends.cudnn.conv, backends.cudnn, backends)
    return {
        "matmul": matmul if matmul is not None else torch.get_float32_matmul_precision() != "highest",
        "conv": conv if conv is not None else True,  # cuDNN convolutions default to TF32 in PyTorch
    }


def set_tf32(torch: Any, allow: bool) -> None:
    backends = torch.backends
    if hasattr(backends.cuda.matmul, "fp32_precision"):
        precision = "tf32" if allow else "ieee"
        backends.cuda.matmul.fp32_precision = precision
        backends.cudnn.conv.fp32_precision = precision
        backends.cudnn.rnn.fp32_precision = precision
    else:
        backends.cuda.matmul.allow_tf32 = allow
        backends.cudnn.allow_tf32 = allow


def tf32_math(flags: dict[str, bool], capability: tuple[int, ...], env: Any) -> tuple[str, str]:
    """("tf32" | "ieee", why) for an NVIDIA GPU of ``capability`` under PyTorch's ``flags`` and the environment's
    overrides: NVIDIA_TF32_OVERRIDE=0 turns TF32 off in every CUDA library; TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 forces
    it on for cuBLAS whatever PyTorch's flags say (some containers set it)."""
    if tuple(capability) < (8, 0):
        return "ieee", f"compute capability {'.'.join(map(str, capability))} has no TF32"
    if env.get("NVIDIA_TF32_OVERRIDE") == "0":
        return "ieee", "NVIDIA_TF32_OVERRIDE=0"
    if env.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE") == "1":
        return "tf32", "forced on for matmuls by TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1"
    on = [name for name, allowed in (("matmul", flags["matmul"]), ("cudnn conv", flags["conv"])) if allowed]
    if on:
        return "tf32", f"TF32 allowed for {' and '.join(on)}"
    return "ieee", "TF32 off for matmul and cudnn conv"


def _apple_chip() -> tuple[str, str]:
    """("Apple", "M2 Pro") from the host's CPU brand: the GPU behind MPS is part of the same chip."""
    import subprocess

    try:
        brand = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        brand = ""
    vendor, _, chip = brand.partition(" ")
    return (vendor, chip) if vendor == "Apple" and chip else ("Apple", brand or "unknown")


def _nvidia_driver_version() -> str | None:
    try:
        first = Path("/proc/driver/nvidia/version").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", first)
    return match.group(1) if match else None


def _listed(names: list[str]) -> str:
    return f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else "".join(names)


class TorchBackend(Backend):
    name = "torch"
    grammar = (f"cpu, cuda, cuda:N, mps, xpu, xpu:N, the vendor-extension devices {_listed(sorted(EXTENSIONS))} "
               "(also :N), or the device name another installed PyTorch extension registers")

    def parse(self, spec: str) -> str | None:
        """Built-in device types and the known extensions' devices by their names alone (``open`` says when one is
        not here); any other name only when an installed extension has registered it."""
        if _BUILTIN.match(spec) or _EXTENSION.match(spec):
            return spec
        match = _OTHER.match(spec)
        if match is None or spec == "auto":
            return None
        try:
            custom = _privateuse1_name()
        except DeviceUnavailable:
            return None
        return spec if custom is not None and match.group(1) == custom else None

    def discover(self) -> list[str]:
        torch = _torch()
        found = ["cpu"]
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            found.extend(["cuda"] if count == 1 else [f"cuda:{i}" for i in range(count)])
        if torch.backends.mps.is_available():
            found.append("mps")
        if hasattr(torch, "xpu") and torch.xpu.is_available():
            found.append("xpu")
        for name in dict.fromkeys([*sorted(EXTENSIONS), _privateuse1_name()]):
            if name and getattr(getattr(torch, name, None), "is_available", lambda: False)():
                found.append(name)
        return found

    def open(self, spec: str) -> Device:
        torch = _torch()
        kind, _, index_text = spec.partition(":")
        index = int(index_text) if index_text else 0
        if kind == "cuda":
            if not torch.cuda.is_available():
                build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
                raise DeviceUnavailable(
                    spec, f"torch {torch.__version__} ({build}) finds no usable CUDA GPU; {self._available()}"
                )
            if index >= torch.cuda.device_count():
                raise DeviceUnavailable(spec, f"only {torch.cuda.device_count()} CUDA device(s): cuda:0..")
        elif kind == "mps":
            if not torch.backends.mps.is_available():
                raise DeviceUnavailable(
                    spec, f"torch.backends.mps.is_available() is False (Apple silicon only); {self._available()}"
                )
        elif kind != "cpu":
            module = getattr(torch, kind, None)
            if module is None and kind in EXTENSIONS:
                missing = why_missing(EXTENSIONS[kind], torch, os.environ)
                raise DeviceUnavailable(spec, f"{missing}; {self._available()}")
            if module is None or not module.is_available():
                why = f"torch.{kind} is missing" if module is None else f"torch.{kind}.is_available() is False"
                raise DeviceUnavailable(spec, f"{why}; {self._available()}")
            if index >= module.device_count():
                raise DeviceUnavailable(spec, f"only {module.device_count()} {kind} device(s): {kind}:0..")
        return TorchDevice(spec)

    def _available(self) -> str:
        return f"available: {', '.join(self.discover())}"
