"""A test kit for backend authors: the contract a backend must keep, as tests a vendor runs in their own suite.

Subclass :class:`BackendContract` in a test module, give it the backend and a few specs, and pytest collects one
test per part of the contract::

    from pytest_accel.testing import BackendContract

    class TestMyNpu(BackendContract):
        backend = MyNpuBackend()
        valid_specs = ["npu", "npu:0"]        # must parse, to themselves or a canonical form
        invalid_specs = ["npu:x", "cuda"]     # must not be claimed
        absent_spec = "npu:99"                # a device this machine lacks (None where that cannot be known)

What is checked, each part a test of its own so a failure names the part:

- parsing: valid specs parse to a canonical spec that parses to itself; invalid specs and the plugin's ``auto``
  give ``None``; parsing other backends' specs (``foreign_specs``) imports no third-party package, and importing
  the backend's module imports none of ``heavy_modules`` (both seen from a fresh interpreter, since the test
  process has long imported everything; the backend is pickled to get there, and one that cannot be skips them);
  ``grammar`` is one line naming the form of every valid spec.
- discovery: ``discover()`` gives canonical specs, each of which opens or raises ``DeviceUnavailable``.
- absent devices: opening ``absent_spec`` raises ``DeviceUnavailable`` naming the device, and its message names
  what this machine has instead (a device ``discover()`` returns), or says it has none.
- description, on a device that opens (``device_spec``, else the first valid or discovered spec that opens):
  ``info`` names the backend, the spec, a model and runtime versions; ``key`` is a safe folder name, the same on
  every open and different for each of ``distinct_specs``; ``id`` is safe in test ids and file names.
- timing: ``synchronize()`` waits for work queued before it (see below); the calibration probe is ``None`` or runs
  in under ``probe_max_seconds`` a call, at a steady speed.
- energy: ``energy_meter()`` is ``None`` with ``no_energy_meter_reason`` saying why, or a meter that states a
  positive update period and a non-negative resolution and whose counter reads finite joules that never go down.
- numerics: every dtype in ``supported_dtypes`` really runs a matmul close to the float64 result, within the bound
  of the precision ``effective_precision`` names (one of :data:`PRECISION_NAMES`); ``prepare_module`` returns a
  module that computes what the original computes, on the device.

Synchronize: timings are ``fn(); device.synchronize()`` between two clock reads, so a ``synchronize`` that returns
before queued work is done makes every latency measure the launch instead. The check queues work through
:meth:`BackendContract.launch_async_work`, which returns a non-blocking "is it done?" callable, then requires that
work to be done once ``synchronize()`` returns. PyTorch accelerators are covered by the default (matmuls queued
on the device, completion read from a ``torch.Event``); a vendor runtime that queues work overrides it. Runtimes
that are host-synchronous (PyTorch on the CPU, ONNX Runtime's ``run``, OpenVINO's synchronous ``infer``, numpy)
have finished when the call returns, so ``synchronize()`` may be a no-op there: the check then skips, saying so,
and only the idle-device check runs.

Numerics run through :meth:`BackendContract.run_matmul`, which handles the three runtimes workloads use
(:class:`~pytest_accel.devices.TorchRuntime`, :class:`~pytest_accel.devices.OrtRuntime`,
:class:`~pytest_accel.devices.OnnxModelRuntime`; the ONNX ones in fp32 only). A device with a runtime of its own
overrides it; a dtype it cannot run is reported as unchecked by a skip, never passed silently.

Importing this package imports no torch, onnxruntime or openvino: the checks that need them import them.

Its modules: :mod:`.contract` assembles :class:`BackendContract` from :mod:`.base` (what a vendor sets and overrides,
the shared fixtures), :mod:`.spec_checks` (parsing, discovery, absent devices) and :mod:`.device_checks` (description,
timing, energy, numerics on an open device); :mod:`.limits` holds the names and bounds judged by, :mod:`.torch_work`
the work the default hooks queue on PyTorch devices.
"""

from __future__ import annotations

from pytest_accel.testing.contract import BackendContract
from pytest_accel.testing.limits import MATMUL_MAX_REL_ERROR, PRECISION_NAMES, WORKLOAD_DTYPES

__all__ = ["BackendContract", "MATMUL_MAX_REL_ERROR", "PRECISION_NAMES", "WORKLOAD_DTYPES"]
