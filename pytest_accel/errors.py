"""The exceptions that workloads, devices and option validation raise for the plugin to translate.

None imports pytest: the plugin turns them into test outcomes while tests set up and run, and a bad option into
``pytest.UsageError`` where the options are read (``pytest.UsageError`` itself is final and lives in pytest, which
workloads and devices never import).
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


class OptionError(ValueError):
    """A bad option, ini or marker value: the message names its source, the bad value and what is allowed. The
    plugin reports it as ``pytest.UsageError`` (one ``ERROR:`` line, exit code 4), or fails the one test whose
    marker holds it."""
