"""NVIDIA's total-energy counter, read through NVML (``pynvml``, from the ``nvidia-ml-py`` package: extra ``nvidia``).

``nvmlDeviceGetTotalEnergyConsumption`` gives the board's energy in millijoules since the driver was last loaded
(Volta and later). NVML does not say how often the counter changes: about every 10 ms was seen on one GPU (the
pynvml pull request that added the call), 20-100 ms is quoted for recent GPUs (PETSc's GPU energy logging), so the
meter states 100 ms, the slow end, and measurements size their windows by it.

The GPU is found by its PCI bus id, else its UUID, as PyTorch reports them: never by index, because
``CUDA_VISIBLE_DEVICES`` (and CUDA's default fastest-first order) renumber devices while NVML counts all of them in
PCI order.
"""

from __future__ import annotations

from typing import Any

from pytest_accel.devices import EnergyMeter

#: the slow end of the update periods reported for the counter (see the module's docstring)
NVML_UPDATE_PERIOD_S = 0.1
#: the counter counts millijoules
NVML_RESOLUTION_J = 1e-3


def _pynvml() -> Any:
    import pynvml

    return pynvml


class NvmlEnergyMeter(EnergyMeter):
    name = "NVML total energy"
    update_period_s = NVML_UPDATE_PERIOD_S
    resolution_j = NVML_RESOLUTION_J

    def __init__(self, nvml: Any, handle: Any, found_by: str) -> None:
        self._nvml = nvml
        self._handle = handle
        self.found_by = found_by

    def read_joules(self) -> float:
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)) * NVML_RESOLUTION_J

    def describe(self) -> str:
        return f"{super().describe()}, GPU found by {self.found_by}"


def nvml_bus_id(domain: int, bus: int, device: int) -> str:
    """NVML's PCI bus id text, ``domain:bus:device.function`` in hexadecimal (function 0: the GPU)."""
    return f"{domain:08x}:{bus:02x}:{device:02x}.0"


def open_nvml_meter(properties: Any) -> tuple[NvmlEnergyMeter | None, str]:
    """The energy meter of the GPU that PyTorch describes with ``properties`` (``torch.cuda.get_device_properties``),
    or None and why there is none (no pynvml, NVML does not start, no such GPU, no energy counter on it)."""
    try:
        nvml = _pynvml()
    except ImportError as error:
        return None, f"pynvml is not importable ({error}); pip install 'pytest-accel[nvidia]'"
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as error:
        return None, f"NVML did not initialise: {error}"
    handle, found_by, failures = None, "", []
    for how, lookup, key in _lookups(nvml, properties):
        try:
            handle, found_by = lookup(key), f"{how} {key}"
            break
        except nvml.NVMLError as error:
            failures.append(f"by {how} {key}: {error}")
    if handle is None:
        _shutdown(nvml)
        tried = "; ".join(failures) or "PyTorch reports neither a PCI bus id nor a UUID"
        return None, f"NVML finds no GPU matching this CUDA device ({tried})"
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except nvml.NVMLError as error:
        _shutdown(nvml)
        return None, f"the GPU ({found_by}) has no energy counter: nvmlDeviceGetTotalEnergyConsumption: {error}"
    return NvmlEnergyMeter(nvml, handle, found_by), ""


def _lookups(nvml: Any, properties: Any) -> list[tuple[str, Any, str]]:
    lookups = []
    bus = getattr(properties, "pci_bus_id", None)
    if bus is not None:
        key = nvml_bus_id(int(getattr(properties, "pci_domain_id", 0)), int(bus),
                          int(getattr(properties, "pci_device_id", 0)))
        lookups.append(("PCI bus id", nvml.nvmlDeviceGetHandleByPciBusId, key))
    uuid = getattr(properties, "uuid", None)
    if uuid is not None:
        text = str(uuid)
        lookups.append(("UUID", nvml.nvmlDeviceGetHandleByUUID, text if text.startswith("GPU-") else f"GPU-{text}"))
    return lookups


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except nvml.NVMLError:  # balancing our own init: nothing to report if it fails
        pass
