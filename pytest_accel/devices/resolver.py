"""The one path from device specs to open, configured devices: a pytest run's ``--device`` values, the console
script's ``pytest-accel devices`` and the detection workload's golden device all go through
:func:`resolve_devices`.

Like the rest of :mod:`pytest_accel.devices` it never imports pytest: it raises the devices' own errors
(:class:`DeviceSpecError`, :class:`DeviceUnavailable`), which the plugin turns into ``pytest.UsageError`` and the
console script into exit status 2.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from typing import Iterable

from pytest_accel.devices import Backend, BackendRegistry, Device, DeviceSpecError, DeviceUnavailable, UnavailableDevice

#: cuBLAS' documented setting for reproducible results (a workspace per stream of 4 MiB, 8 of them)
CUBLAS_WORKSPACE = ":4096:8"


@dataclass(frozen=True)
class DeviceSettings:
    """What is set on every opened device before any workload runs on it: how fp32 is computed (IEEE unless TF32
    is allowed) and, when asked, deterministic algorithms. The defaults are a pytest run's without
    ``--accel-allow-tf32`` and ``--accel-deterministic``."""

    allow_tf32: bool = False
    deterministic: bool = False

    def prepare_process(self) -> None:
        """What must be set before any device is opened: cuBLAS reads its workspace setting when it starts (a value
        the user set stays)."""
        if self.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)

    def apply(self, device: Device) -> None:
        """Set them on one open, available device. Determinism is only ever switched on, never off: a device opened
        later (the golden device) must not undo what the run asked for."""
        device.set_fp32_math(self.allow_tf32)
        if self.deterministic:
            device.set_deterministic(True)


#: a spec with one of these names every device the backends find that matches it (``cuda:*``)
WILDCARDS = "*?["


def _expand(registry: BackendRegistry, pattern: str, option: str) -> list[tuple[Backend, str]]:
    """Every discovered device whose spec matches ``pattern`` (shell-style, case-sensitive); DeviceSpecError when
    none does."""
    found = registry.discover()
    matched = [(backend, spec) for backend, spec in found if fnmatch.fnmatchcase(spec, pattern)]
    if not matched:
        listed = ", ".join(spec for _, spec in found) or "none"
        raise DeviceSpecError(f"{option}={pattern}: no device on this machine matches; the backends found: {listed}")
    return matched


def resolve_devices(registry: BackendRegistry, specs: Iterable[str], *, skip_unavailable: bool = False,
                    settings: DeviceSettings | None = None, option: str = "--device") -> list[Device]:
    """Open every device ``specs`` name (``("auto",)``: every device the backends find), each spec once, and apply
    ``settings`` to those available (None: leave them as opened).

    An unknown spec, or one its backend rejects, raises :class:`DeviceSpecError` naming ``option`` (how the user gave
    it). A known device that is not on this machine raises :class:`DeviceUnavailable`, or with ``skip_unavailable``
    is kept as an :class:`UnavailableDevice` stand-in whose tests can be skipped with the reason.
    """
    specs = tuple(specs)
    wanted: list[tuple[Backend, str]] = []
    if specs == ("auto",):
        wanted = registry.discover()
    else:
        for spec in specs:
            if any(character in spec for character in WILDCARDS):
                wanted.extend(_expand(registry, spec.strip(), option))
                continue
            try:
                wanted.append(registry.parse(spec, option))
            except DeviceUnavailable as error:  # a backend that cannot even tell without its runtime
                raise DeviceSpecError(f"{option}={spec}: {error.reason}") from None
    if settings is not None:
        settings.prepare_process()
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
                raise
            devices.append(UnavailableDevice(spec, backend.name, error.reason))
    if settings is not None:
        for device in devices:
            if device.available:
                settings.apply(device)
    return devices
