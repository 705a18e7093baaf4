"""Per-run state: options, backends, resolved devices, the baseline store and every result recorded."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from pytest_accel import environment
from pytest_accel.baselines import REFERENCE_FOLDER, BaselineStore, utc_now
from pytest_accel.devices import (
    Backend,
    BackendRegistry,
    Device,
    DeviceSpecError,
    DeviceUnavailable,
    UnavailableDevice,
)
from pytest_accel.options import OPT_SKIP_UNAVAILABLE, AccelOptions
from pytest_accel.references import ReferenceStore
from pytest_accel.verdicts import Verdict

#: cuBLAS' documented setting for reproducible results (a workspace per stream of 4 MiB, 8 of them)
CUBLAS_WORKSPACE = ":4096:8"


@dataclass
class TestRecord:
    nodeid: str
    device: Device
    suite: str
    test: str
    baseline_path: Path
    verdicts: list[Verdict] = field(default_factory=list)


@dataclass
class WrittenBaseline:
    path: Path
    action: str  # "created", "updated" or "recorded"
    changes: list[str]


class AccelSession:
    def __init__(self, config: pytest.Config, options: AccelOptions, registry: BackendRegistry) -> None:
        self.config = config
        self.options = options
        self.registry = registry
        self.store = BaselineStore(options.baseline_dir)
        self.references = ReferenceStore(options.baseline_dir / REFERENCE_FOLDER)
        self.records: list[TestRecord] = []
        self.written: list[WrittenBaseline] = []
        self._devices: list[Device] | None = None

    @property
    def devices_resolved(self) -> bool:
        return self._devices is not None

    def devices(self) -> list[Device]:
        if self._devices is None:
            if self.options.deterministic:
                # read by cuBLAS when it starts, so before any device is opened; a value the user set stays
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
            devices = resolve_devices(self.registry, self.options.device_specs, self.options.skip_unavailable)
            for device in devices:
                if device.available:
                    device.set_fp32_math(self.options.allow_tf32)
                    if self.options.deterministic:
                        device.set_deterministic(True)
                    facts: dict[str, str] = {}
                    self.config.hook.pytest_accel_update_device_info(config=self.config, device=device, facts=facts)
                    device.add_info(facts)
            self._devices = devices
        return self._devices

    @cached_property
    def software(self) -> dict[str, str]:
        return environment.software_stack()

    @cached_property
    def git_commit(self) -> str | None:
        return environment.git_commit(self.config.rootpath)

    def header(self, device: Device) -> dict[str, Any]:
        return {
            "device_key": device.key,
            "device": device.info.to_dict(),
            "software": self.software,
            "git_commit": self.git_commit,
            "recorded_at": utc_now(),
        }


def resolve_devices(registry: BackendRegistry, specs: tuple[str, ...], skip_unavailable: bool) -> list[Device]:
    """Open every requested device; unknown specs are usage errors, absent ones errors or skips."""
    wanted: list[tuple[Backend, str]] = []
    if specs == ("auto",):
        wanted = registry.discover()
    else:
        for spec in specs:
            try:
                wanted.append(registry.parse(spec))
            except DeviceSpecError as error:
                raise pytest.UsageError(str(error)) from None
            except DeviceUnavailable as error:
                raise pytest.UsageError(f"--device={spec}: {error.reason}") from None
    devices: list[Device] = []
    seen: set[str] = set()
    for backend, spec in wanted:
        if spec in seen:
            continue
        seen.add(spec)
        try:
            devices.append(backend.open(spec))
        except DeviceUnavailable as error:
            if not skip_unavailable:
                raise pytest.UsageError(f"{error}; pass {OPT_SKIP_UNAVAILABLE} to skip its tests instead") from None
            devices.append(UnavailableDevice(spec, backend.name, error.reason))
    return devices
