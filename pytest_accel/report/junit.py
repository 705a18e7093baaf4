"""JUnit XML properties per checked metric: what ``record_property`` would attach, so ``--junitxml`` carries them."""

from __future__ import annotations

from pytest_accel.devices import Device
from pytest_accel.verdicts import Verdict


def junit_properties(device: Device, verdicts: list[Verdict], *, first: bool = True) -> list[tuple[str, object]]:
    """What ``record_property`` would attach for these verdicts (``--junitxml`` writes them as ``<property>``):
    ``accel.device`` and ``accel.device_key`` once per test (``first``), then per metric its value, unit, baseline,
    expected (the baseline, bound or reference it was held to, as the summary prints it), tolerance, verdict and
    whether it is gated. Unset fields are left out rather than written as "None"."""
    properties: list[tuple[str, object]] = [("accel.device", device.spec), ("accel.device_key", device.key)] \
        if first else []
    for verdict in verdicts:
        metric = verdict.metric
        fields: dict[str, object | None] = {
            "value": metric.value, "unit": metric.unit or None, "baseline": verdict.baseline_value,
            "expected": verdict.expected_text if verdict.expected_text != "-" else None,
            "tolerance": verdict.tolerance, "verdict": verdict.status, "gated": verdict.gated,
        }
        properties += [(f"accel.{metric.name}.{field}", value) for field, value in fields.items() if value is not None]
    return properties
