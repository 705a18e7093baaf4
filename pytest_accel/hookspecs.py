"""The plugin's own hooks. Implement them in a conftest.py or in a plugin installed with an entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_accel.devices import BackendRegistry


@pytest.hookspec
def pytest_accel_register_backends(registry: BackendRegistry) -> None:
    """Register device backends. Called once per run, before ``--device`` values are resolved.

    The built-in PyTorch and ONNX Runtime backends are registered through this same hook. A backend registered
    later may claim specs an earlier one also understands (the registry asks the newest first).

    Example ``conftest.py`` for a vendor NPU exposed as an ONNX Runtime execution provider::

        from pytest_accel.devices.onnxruntime import OrtBackend, OrtDevice

        class MyNpuBackend(OrtBackend):
            name = "mynpu"
            grammar = "mynpu"

            def parse(self, spec):
                return spec if spec == "mynpu" else None

            def discover(self):
                return ["mynpu"]

            def open(self, spec):
                return OrtDevice(spec, "MyNpuExecutionProvider", {"device_id": "0"})

        def pytest_accel_register_backends(registry):
            registry.register(MyNpuBackend())

    Backends can also be installed without a conftest, through the entry-point group ``pytest_accel.backends``
    (the entry point names a Backend subclass, a Backend instance, or a callable taking the registry).
    """
