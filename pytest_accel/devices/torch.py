"""The PyTorch backend: cpu, cuda[:N], mps, xpu[:N] and any PrivateUse1 (out-of-tree) device.

torch is imported only when a device of this backend is opened or a spec needs it to be recognised.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pytest_accel.devices import Backend, Device, DeviceInfo, DeviceUnavailable, host_cpu_info

if TYPE_CHECKING:
    import torch

_BUILTIN = re.compile(r"^(cpu|mps)$|^(cuda|xpu)(:\d+)?$")
_OTHER = re.compile(r"^([a-z][a-z0-9_]*)(:\d+)?$")
_PROBE_SIZE = 256


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

    @property
    def is_host_cpu(self) -> bool:
        return self.type == "cpu"

    def _module(self) -> Any:
        """The per-device-type torch module (torch.cuda, torch.xpu, torch.<privateuse1>), if any."""
        return getattr(self.torch, self.type, None)

    def describe(self) -> DeviceInfo:
        torch = self.torch
        runtime = {"torch": torch.__version__.split("+")[0]}
        if self.type == "cpu":
            return host_cpu_info(self.backend_name, self.spec, runtime, {"torch_threads": str(torch.get_num_threads())})
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
            )
        module = self._module()
        model = self.type
        get_name = getattr(module, "get_device_name", None)
        if callable(get_name):
            try:
                model = str(get_name(self.torch_device.index or 0))
            except Exception:  # noqa: BLE001 - a vendor module may not implement it fully
                pass
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor=self.type, model=model, runtime=runtime)

    def synchronize(self) -> None:
        if self.type == "cpu":
            return
        module = self._module()
        sync = getattr(module, "synchronize", None)
        if callable(sync):
            sync(self.torch_device) if self.type in ("cuda", "xpu") else sync()

    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        torch = self.torch
        if self.type == "cpu":
            return ("fp32", "bf16", "fp16")
        if self.type == "cuda":
            return ("fp32", "fp16", "bf16") if torch.cuda.is_bf16_supported() else ("fp32", "fp16")
        if self.type == "mps":
            return ("fp32", "fp16", "bf16")
        supported: Callable[[], bool] | None = getattr(self._module(), "is_bf16_supported", None)
        return ("fp32", "fp16", "bf16") if callable(supported) and supported() else ("fp32", "fp16")

    @property
    def claims_determinism(self) -> bool:
        """The CPU is; other devices when ``torch.use_deterministic_algorithms(True)`` is in force."""
        return self.type == "cpu" or bool(self.torch.are_deterministic_algorithms_enabled())

    def reset_peak_memory(self) -> None:
        reset = getattr(self._module(), "reset_peak_memory_stats", None)
        if self.type != "cpu" and callable(reset):
            reset(self.torch_device)

    def peak_memory_bytes(self) -> int | None:
        if self.type == "cpu":
            return None
        if self.type == "mps":
            return int(self.torch.mps.driver_allocated_memory())
        peak = getattr(self._module(), "max_memory_allocated", None)
        return int(peak(self.torch_device)) if callable(peak) else None

    def prepare_module(self, module: torch.nn.Module) -> torch.nn.Module:
        """Hand a model (already on this device, in its dtype) to the backend before it is run.

        The identity here. A backend that compiles, converts or instruments models (a vendor SDK's graph compiler,
        ``torch.compile`` with a custom backend) overrides it; workloads call it on every model they run.
        """
        return module

    def calibration_probe(self) -> Callable[[], None]:
        torch = self.torch
        generator = torch.Generator().manual_seed(0)
        matrix = torch.randn(_PROBE_SIZE, _PROBE_SIZE, generator=generator).to(self.torch_device)

        def probe() -> None:
            torch.mm(matrix, matrix)
            self.synchronize()

        return probe


def _nvidia_driver_version() -> str | None:
    try:
        first = Path("/proc/driver/nvidia/version").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", first)
    return match.group(1) if match else None


class TorchBackend(Backend):
    name = "torch"
    grammar = "cpu, cuda, cuda:N, mps, xpu, xpu:N, or a PyTorch PrivateUse1 device name (e.g. npu, npu:N)"

    def parse(self, spec: str) -> str | None:
        if _BUILTIN.match(spec):
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
        custom = _privateuse1_name()
        if custom and getattr(getattr(torch, custom, None), "is_available", lambda: False)():
            found.append(custom)
        return found

    def open(self, spec: str) -> Device:
        torch = _torch()
        kind, _, index_text = spec.partition(":")
        index = int(index_text) if index_text else 0
        if kind == "cuda":
            if not torch.cuda.is_available():
                build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
                raise DeviceUnavailable(spec, f"torch {torch.__version__} ({build}) finds no usable CUDA GPU")
            if index >= torch.cuda.device_count():
                raise DeviceUnavailable(spec, f"only {torch.cuda.device_count()} CUDA device(s): cuda:0..")
        elif kind == "mps":
            if not torch.backends.mps.is_available():
                raise DeviceUnavailable(spec, "torch.backends.mps.is_available() is False (Apple silicon only)")
        elif kind != "cpu":
            module = getattr(torch, kind, None)
            if module is None or not module.is_available():
                raise DeviceUnavailable(spec, f"torch.{kind}.is_available() is False or torch.{kind} is missing")
            if index >= module.device_count():
                raise DeviceUnavailable(spec, f"only {module.device_count()} {kind} device(s)")
        return TorchDevice(spec)
