"""The exceptions that workloads and devices raise for the plugin to turn into test outcomes.

Neither imports pytest: the plugin translates them, in one place, while tests set up and run.
"""

from __future__ import annotations


class WorkloadUnsupported(Exception):
    """This workload cannot run on this device (or in this dtype): the test is skipped with this reason.

    Raise it for combinations that are not expected to work (a PyTorch-only workload on an ONNX Runtime device,
    fp16 on a device without it), never for a device that should run the workload and fails to.
    """


class DeviceFailure(RuntimeError):
    """The device under test failed a precondition of measuring it (e.g. an ONNX Runtime provider that would run
    nodes on the CPU): the test fails with this message alone, no traceback."""
