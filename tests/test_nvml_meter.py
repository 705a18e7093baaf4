"""The NVML energy meter against a fake ``pynvml`` (the one place a fake is honest: no GPU here): the GPU found by
torch's PCI bus id, else its UUID; every way of finding no meter says why; a CUDA device offers it, the CPU none."""

from __future__ import annotations

import re
import sys
import types
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_accel.devices import Device
from pytest_accel.devices.nvml import NVML_UPDATE_PERIOD_S, open_nvml_meter
from pytest_accel.energy import measure_energy
from pytest_accel.errors import WorkloadUnsupported


class FakeNVMLError(Exception):
    pass


def fake_pynvml(gpus: dict[str, tuple[str, int]], *, init_error: str | None = None,
                unsupported: bool = False) -> types.ModuleType:
    """Two or more GPUs by PCI bus id -> (UUID, millijoules); NVML's own order is the bus order."""
    module = types.ModuleType("pynvml")
    module.NVMLError = FakeNVMLError  # type: ignore[attr-defined]
    calls: list[str] = []
    module.calls = calls  # type: ignore[attr-defined]

    def init() -> None:
        calls.append("init")
        if init_error:
            raise FakeNVMLError(init_error)

    def by_bus(bus: str) -> str:
        if bus not in gpus:
            raise FakeNVMLError("Not Found")
        return bus

    def by_uuid(uuid: str) -> str:
        for bus, (known, _) in gpus.items():
            if known == uuid:
                return bus
        raise FakeNVMLError("Not Found")

    def energy(handle: str) -> int:
        if unsupported:
            raise FakeNVMLError("Not Supported")
        return gpus[handle][1]

    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: calls.append("shutdown")  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByPciBusId = by_bus  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByUUID = by_uuid  # type: ignore[attr-defined]
    module.nvmlDeviceGetTotalEnergyConsumption = energy  # type: ignore[attr-defined]
    return module


GPUS = {"00000000:3b:00.0": ("GPU-aaaa-1111", 5_000), "00000000:86:00.0": ("GPU-bbbb-2222", 9_000_123)}


def properties(bus: int = 0x86, uuid: str = "bbbb-2222") -> SimpleNamespace:
    """What torch.cuda.get_device_properties gives for the second GPU (cuda:0 when CUDA_VISIBLE_DEVICES=1)."""
    return SimpleNamespace(pci_domain_id=0, pci_bus_id=bus, pci_device_id=0, uuid=uuid)


def test_the_nvml_meter_reads_the_gpu_with_torchs_bus_id_not_its_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(GPUS))
    meter, reason = open_nvml_meter(properties())
    assert meter is not None and reason == ""
    assert meter.read_joules() == pytest.approx(9000.123)
    assert meter.update_period_s == NVML_UPDATE_PERIOD_S and meter.resolution_j == 1e-3
    assert "PCI bus id 00000000:86:00.0" in meter.describe()


def test_the_nvml_meter_falls_back_to_the_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(GPUS))
    meter, _ = open_nvml_meter(properties(bus=0x99))  # a bus id NVML does not know (say, behind a VM's remapping)
    assert meter is not None and meter.read_joules() == pytest.approx(9000.123)
    assert "UUID GPU-bbbb-2222" in meter.describe()


@pytest.mark.parametrize(
    ("pynvml", "props", "reason"),
    [(fake_pynvml(GPUS, init_error="Driver Not Loaded"), properties(), "NVML did not initialise: Driver Not Loaded"),
     (fake_pynvml(GPUS), properties(bus=0x99, uuid="cccc"),
      re.escape("NVML finds no GPU matching this CUDA device (by PCI bus id 00000000:99:00.0: Not Found; by UUID "
                "GPU-cccc: Not Found)")),
     (fake_pynvml(GPUS, unsupported=True), properties(),
      re.escape("the GPU (PCI bus id 00000000:86:00.0) has no energy counter: nvmlDeviceGetTotalEnergyConsumption: "
                "Not Supported")),
     (None, properties(), "pynvml is not importable .*pip install 'pytest-accel\\[nvidia\\]'")],
    ids=["init-fails", "no-such-gpu", "no-counter", "not-installed"],
)
def test_no_nvml_meter_says_why(monkeypatch: pytest.MonkeyPatch, pynvml: Any, props: Any, reason: str) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", pynvml)
    meter, why = open_nvml_meter(props)
    assert meter is None
    assert re.fullmatch(reason, why), why
    if pynvml is not None and "init" in pynvml.calls and "did not initialise" not in why:
        assert pynvml.calls.count("shutdown") == 1, "an init that found no meter must be balanced"


def test_the_real_pynvml_without_a_gpu_gives_no_meter_and_the_reason() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("NVML initialises here: this test is for machines without an NVIDIA driver")
    meter, why = open_nvml_meter(properties())
    assert meter is None and why.startswith("NVML did not initialise: "), why


def fake_cuda_device(monkeypatch: pytest.MonkeyPatch, props: SimpleNamespace) -> Device:
    """A TorchDevice whose type is cuda and whose torch reports ``props``: the CUDA branch without a GPU."""
    from pytest_accel.devices.torch import TorchDevice

    device = TorchDevice("cpu")
    cuda = SimpleNamespace(get_device_properties=lambda index: props)
    monkeypatch.setattr(device, "type", "cuda")
    monkeypatch.setattr(device, "torch", SimpleNamespace(version=SimpleNamespace(hip=None), cuda=cuda))
    return device


def test_a_cuda_device_offers_the_nvml_meter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(GPUS))
    device = fake_cuda_device(monkeypatch, properties())
    meter = device.energy_meter()
    assert meter is not None and meter.read_joules() == pytest.approx(9000.123)


def test_a_cuda_device_where_nvml_fails_has_no_meter_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(GPUS, init_error="Driver Not Loaded"))
    device = fake_cuda_device(monkeypatch, properties())
    assert device.energy_meter() is None
    assert device.no_energy_meter_reason == "NVML did not initialise: Driver Not Loaded"
    with pytest.raises(WorkloadUnsupported, match="no energy metrics: NVML did not initialise: Driver Not Loaded"):
        measure_energy("toy", lambda: None, device)


def test_the_cpu_has_no_meter() -> None:
    from pytest_accel.devices.torch import TorchDevice

    device = TorchDevice("cpu")
    assert device.energy_meter() is None
    assert device.no_energy_meter_reason == "device cpu (torch backend) offers no energy meter"
