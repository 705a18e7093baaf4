"""The plugin's own hooks. Implement them in a conftest.py or in a plugin installed with an entry point.

Each hook lists its arguments by name; an implementation may take any subset of them (pluggy's rule).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_accel.devices import BackendRegistry, Device


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


@pytest.hookspec
def pytest_accel_configure_device(config: pytest.Config, device: Device) -> None:
    """Prepare ``device`` before any workload runs on it. Called once per available device, when the devices are
    resolved: after pytest-accel has applied its own settings (fp32 as IEEE or TF32 under ``--accel-allow-tf32``,
    deterministic algorithms under ``--accel-deterministic``) and before ``pytest_accel_update_device_info``. Not
    called by ``pytest-accel devices``, which reads no conftest.

    pytest-accel's own gate self-check (``--accel-inject-slowdown``) slows every model call through this hook.

    Example ``conftest.py`` that keeps reduced-precision reductions out of fp16 matmuls on CUDA devices, and says
    so in the device's facts::

        def pytest_accel_configure_device(config, device):
            if device.spec.startswith("cuda"):
                import torch

                torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False

        def pytest_accel_update_device_info(config, device, facts):
            if device.spec.startswith("cuda"):
                facts["fp16_reduced_precision_reduction"] = "off"
    """


@pytest.hookspec
def pytest_accel_update_device_info(config: pytest.Config, device: Device, facts: dict[str, str]) -> None:
    """Add facts about ``device`` to ``facts`` (name -> text). Called once per available device, when the devices
    are resolved; the facts join ``device.info.extra``, and with it the report header, every baseline file written
    for the device and the JSON report. They do not change the device key.

    Example ``conftest.py`` recording the firmware of a lab's accelerators and the rack they sit in::

        import os
        from pathlib import Path

        def pytest_accel_update_device_info(config, device, facts):
            if device.spec.startswith("cuda"):
                facts["rack"] = os.environ.get("LAB_RACK", "unknown")
                firmware = Path("/sys/class/accel/accel0/firmware_version")
                if firmware.is_file():
                    facts["firmware"] = firmware.read_text().strip()
    """


@pytest.hookspec
def pytest_accel_datasheet_files(config: pytest.Config) -> list[str | Path]:
    """Datasheet files (the shipped table's schema, docs/datasheet.md) to lay over the shipped table, after those
    given with ``--accel-datasheet``: a vendor's plugin brings the entries of its chips, a lab its price list.
    Every implementation's files are read; an entry with an id already loaded replaces it.

    Example ``conftest.py``::

        from pathlib import Path

        def pytest_accel_datasheet_files(config):
            return [Path(__file__).with_name("our-chips.toml")]
    """
    return []


@pytest.hookspec
def pytest_accel_update_report(config: pytest.Config, report: dict[str, Any]) -> None:
    """Amend the JSON report (``--accel-report``) in place before it is written: add keys, redact values.

    ``report`` follows the schema named in ``report["schema"]`` / ``report["schema_version"]``; keep its keys'
    meaning and add your own under a key of your own.

    Example ``conftest.py`` adding the CI job that produced the report::

        import os

        def pytest_accel_update_report(config, report):
            report["ci"] = {"job": os.environ.get("CI_JOB_ID"), "runner": os.environ.get("RUNNER_NAME")}
    """
