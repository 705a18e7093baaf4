"""Per-run state: options, backends, resolved devices, the baseline store and every result recorded."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from pytest_accel import environment
from pytest_accel.baselines import REFERENCE_FOLDER, BaselineError, BaselineStore, utc_now
from pytest_accel.devices import (
    Backend,
    BackendRegistry,
    Device,
    DeviceSpecError,
    DeviceUnavailable,
    UnavailableDevice,
)
from pytest_accel.metrics import KINDS
from pytest_accel.options import OPT_SKIP_UNAVAILABLE, AccelOptions
from pytest_accel.references import ReferenceStore
from pytest_accel.verdicts import MIN_HISTORY, Verdict

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
    #: metric names the baseline file held, and those of them the test did not produce
    stored_names: set[str] = field(default_factory=set)
    absent: list[str] = field(default_factory=list)


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
        self._family_size: int | None = None

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
                    if self.options.inject_slowdown:
                        from pytest_accel.gatecheck import inject_slowdown

                        inject_slowdown(device, self.options.inject_slowdown)
                    facts: dict[str, str] = {}
                    self.config.hook.pytest_accel_update_device_info(config=self.config, device=device, facts=facts)
                    device.add_info(facts)
            self._devices = devices
        return self._devices

    def speed_family_size(self) -> int:
        """How many speed metrics with a usable history the baselines of this run's devices hold: the family
        whose false alarms are controlled together (each is judged at alpha / this). Counted over every baseline
        of these devices, so a run that selects fewer tests is judged conservatively, never the other way."""
        if self._family_size is None:
            self._family_size = count_history_metrics(
                self.store, [d.key for d in self.devices() if d.available], MIN_HISTORY
            )
        return max(self._family_size, 1)

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


def count_history_metrics(store: BaselineStore, device_keys: list[str], min_history: int) -> int:
    count = 0
    for key in device_keys:
        for path in sorted((store.root / key).rglob("*.json")) if (store.root / key).is_dir() else []:
            try:
                document = store.load(path)
            except BaselineError:
                continue  # the test that uses it fails with the reason
            for record in (document or {}).get("metrics", {}).values():
                speed = KINDS.get(record.get("kind"), KINDS["info"]).speed
                count += bool(speed and len(record.get("history") or []) >= min_history)
    return count


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
