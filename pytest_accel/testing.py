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

Importing this module imports no torch, onnxruntime or openvino: the checks that need them import them.
"""

from __future__ import annotations

import importlib
import json
import math
import pickle
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, ClassVar, NoReturn, Sequence, TypeVar

import pytest

from pytest_accel.devices import (
    Backend,
    Device,
    DeviceInfo,
    DeviceUnavailable,
    OnnxModelRuntime,
    OrtRuntime,
    TorchRuntime,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BackendContract", "MATMUL_MAX_REL_ERROR", "PRECISION_NAMES", "WORKLOAD_DTYPES"]

#: the dtypes a device may claim: those workloads ask for (fp32, fp16, bf16), and int8 for quantised-only devices
WORKLOAD_DTYPES = ("fp32", "fp16", "bf16", "int8")
#: what ``effective_precision`` may answer: the names parity bounds are kept for
PRECISION_NAMES = ("fp32", "tf32", "fp16", "bf16", "int8")
#: largest relative error (to the largest entry of the float64 product) of the kit's 64x64 unit-normal matmul, per
#: precision: about 8x what rounding inputs and outputs to that many mantissa bits gives
MATMUL_MAX_REL_ERROR = {"fp32": 1e-4, "tf32": 5e-3, "fp16": 5e-3, "bf16": 3e-2}
_MATMUL_SIZE = 64
#: how long the default PyTorch asynchronous work keeps the device busy
_ASYNC_WORK_SECONDS = 0.1
_PROBE_SAMPLES, _PROBE_BUDGET_SECONDS, _PROBE_STEADY_RATIO = 30, 1.0, 2.0
_SAFE_KEY = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_SAYS_NONE = re.compile(r"\b(no|none|not|0)\b", re.IGNORECASE)

_IMPORT_CHECK = r"""
import json, pickle, sys
request = json.loads(sys.stdin.read())
sys.path[:] = request["path"]
def packages():
    return {name.partition(".")[0] for name in list(sys.modules)}
at_start = packages()
backend = pickle.loads(bytes.fromhex(request["backend"]))
with_backend = packages()
by_spec = {}
for spec in request["specs"]:
    before = packages()
    backend.parse(spec)
    by_spec[spec] = sorted(packages() - before)
print(json.dumps({"backend_import": sorted(with_backend - at_start), "by_spec": by_spec}))
"""


def _fail(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


class BackendContract:
    """Base class of a vendor's contract tests; see the module documentation. Not collected itself (its name does
    not start with ``Test``); every ``Test*`` subclass is, with all the tests below."""

    #: the backend under test, an instance
    backend: ClassVar[Backend]
    #: specs the backend must understand (at least one)
    valid_specs: ClassVar[Sequence[str]] = ()
    #: specs the backend must not claim
    invalid_specs: ClassVar[Sequence[str]] = ()
    #: a spec of this backend naming a device this machine lacks, or None where no spec is sure to be absent
    absent_spec: ClassVar[str | None] = None
    #: the device the description, timing and numerics checks run on (None: the first that opens)
    device_spec: ClassVar[str | None] = None
    #: specs whose devices must not share a baseline folder: other hardware, or a setting that changes results
    distinct_specs: ClassVar[Sequence[str]] = ()
    #: other backends' specs, plainly not this one's: parsing them must import nothing (those it claims are left out)
    foreign_specs: ClassVar[Sequence[str]] = ("auto", "cpu", "cuda:0", "ort:cpu", "ov:CPU")
    #: packages importing the backend's module must not import (the plugin loads every backend in every pytest run)
    heavy_modules: ClassVar[Sequence[str]] = ("torch", "onnxruntime", "openvino", "tensorflow", "jax", "ultralytics")
    #: the longest a calibration probe call (with its synchronize) may take
    probe_max_seconds: ClassVar[float] = 0.05

    # -- hooks a vendor may override ---------------------------------------------------------------------------

    def launch_async_work(self, device: Device) -> Callable[[], bool] | None:
        """Queue work on ``device`` that keeps it busy for tens of milliseconds, without waiting for it, and return
        a callable that tells, without blocking, whether that work has finished. None where the device's runtime is
        host-synchronous. The default covers PyTorch devices."""
        if isinstance(device, TorchRuntime):
            return _queue_torch_matmuls(device)
        return None

    def run_matmul(self, device: Device, a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray | None:
        """``a @ b`` computed on ``device`` in ``dtype``, as a host float array; None where the kit cannot run that
        dtype on this device. The default covers PyTorch devices in every dtype, ONNX ones in fp32."""
        if isinstance(device, TorchRuntime):
            return _torch_matmul(device, a, b, dtype)
        if dtype != "fp32" or not isinstance(device, (OrtRuntime, OnnxModelRuntime)):
            return None
        pytest.importorskip("onnx", reason="building the ONNX matmul needs the onnx package")
        from pytest_accel.devices.onnxruntime import matmul_model

        model, feeds = matmul_model(a.shape[0]), {"a": a, "b": b}
        if isinstance(device, OrtRuntime):
            return device.create_session(model).run(None, feeds)[0]
        return device.compile_onnx(model, sample_feeds=feeds).run(feeds)[0]

    # -- fixtures ----------------------------------------------------------------------------------------------

    # The fixtures are per test (class-scoped method fixtures differ between pytest versions); what is costly is
    # made once per test class and kept in the class node's stash.

    @pytest.fixture
    def contract_backend(self) -> Backend:
        backend = getattr(type(self), "backend", None)
        if not isinstance(backend, Backend):
            _fail(f"{type(self).__name__}.backend must be an instance of your Backend subclass, got {backend!r}")
        return backend

    @pytest.fixture
    def contract_device(self, request: pytest.FixtureRequest, contract_backend: Backend) -> Device:
        return _once_per_class(request, _DEVICE, lambda: self._open_a_device(contract_backend))

    @pytest.fixture
    def import_report(self, request: pytest.FixtureRequest, contract_backend: Backend) -> dict[str, Any]:
        """What a fresh interpreter imports to rebuild the backend, and then to parse each foreign spec."""
        return _once_per_class(request, _IMPORTS, lambda: self._imports_seen_afresh(contract_backend))

    @pytest.fixture
    def calibration_probe(self, contract_device: Device) -> Callable[[], None]:
        probe = contract_device.calibration_probe()
        if probe is None:
            pytest.skip("calibration_probe() is None: comparisons across runs use absolute times only (allowed)")
        if not callable(probe):
            _fail(f"calibration_probe() returned {probe!r}; the contract requires None or a callable")
        return probe

    def _open_a_device(self, backend: Backend) -> Device:
        candidates = [self.device_spec] if self.device_spec else [*self.valid_specs, *_discovered(backend)]
        reasons = []
        for spec in dict.fromkeys(candidates):
            canonical = backend.parse(spec)
            if canonical is None:
                continue
            try:
                return backend.open(canonical)
            except DeviceUnavailable as error:
                reasons.append(str(error))
        pytest.skip(f"no device of backend {backend.name!r} opens here: {'; '.join(reasons) or 'none tried'}")

    def _imports_seen_afresh(self, backend: Backend) -> dict[str, Any]:
        foreign = [spec for spec in self.foreign_specs if backend.parse(spec) is None]
        try:
            pickled = pickle.dumps(backend).hex()
        except Exception as error:  # noqa: BLE001 - pickling can fail in many ways; each is the same finding
            pytest.skip(f"the backend cannot be pickled to be rebuilt in a fresh interpreter ({error!r}), so what "
                        "its import and parse import cannot be seen")
        request = json.dumps({"path": sys.path, "backend": pickled, "specs": foreign})
        done = subprocess.run([sys.executable, "-c", _IMPORT_CHECK], input=request, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            pytest.skip(f"a fresh interpreter could not rebuild the backend: {done.stderr.strip()[-600:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    # -- parsing -----------------------------------------------------------------------------------------------

    def test_valid_specs_parse_to_a_canonical_spec(self, contract_backend: Backend) -> None:
        if not self.valid_specs:
            _fail(f"{type(self).__name__}.valid_specs is empty: list the specs your backend understands")
        for spec in self.valid_specs:
            canonical = contract_backend.parse(spec)
            if not isinstance(canonical, str) or not canonical:
                _fail(f"parse({spec!r}) returned {canonical!r}; the contract requires the canonical spec (a "
                      "non-empty string) for every spec in valid_specs")
            again = contract_backend.parse(canonical)
            if again != canonical:
                _fail(f"parse({spec!r}) gave {canonical!r}, but parse({canonical!r}) gave {again!r}; a canonical "
                      "spec must parse to itself (the plugin opens what parse returns)")

    def test_invalid_specs_are_not_claimed(self, contract_backend: Backend) -> None:
        for spec in [*self.invalid_specs, "auto", "", ":"]:
            claimed = contract_backend.parse(spec)
            if claimed is not None:
                why = "'auto' is the plugin's own spec" if spec == "auto" else "it is listed in invalid_specs"
                _fail(f"parse({spec!r}) returned {claimed!r}; the contract requires None ({why}: a backend "
                      "that claims other specs takes devices away from the backends that own them)")

    def test_grammar_is_one_line_naming_the_spec_forms(self, contract_backend: Backend) -> None:
        grammar = contract_backend.grammar
        if not isinstance(grammar, str) or not grammar.strip() or "\n" in grammar:
            _fail(f"grammar is {grammar!r}; the contract requires one non-empty line (it is listed in the error "
                  "for an unknown --device)")
        for spec in self.valid_specs:
            canonical = contract_backend.parse(spec) or spec
            form = canonical.split(":")[0]
            if form.lower() not in grammar.lower():
                _fail(f"grammar {grammar!r} does not mention {form!r}, the form of the valid spec {canonical!r}; "
                      "the contract requires it to name every form of spec the backend understands")

    def test_parsing_foreign_specs_imports_nothing(self, import_report: dict[str, Any]) -> None:
        imported = {spec: [name for name in names if name not in sys.stdlib_module_names]
                    for spec, names in import_report["by_spec"].items()}
        culprits = {spec: names for spec, names in imported.items() if names}
        if culprits:
            _fail("parsing other backends' specs imported packages: "
                  + "; ".join(f"parse({spec!r}) imported {', '.join(names)}" for spec, names in culprits.items())
                  + "; the contract requires parse to import nothing for specs it plainly does not own (every "
                  "--device value goes through every backend)")
        if not imported:
            pytest.skip("the backend claims every spec in foreign_specs: nothing to check")

    def test_importing_the_backend_imports_no_heavy_library(self, import_report: dict[str, Any]) -> None:
        heavy = sorted(set(import_report["backend_import"]) & set(self.heavy_modules))
        if heavy:
            _fail(f"importing the backend's module ({type(self.backend).__module__}) imported {', '.join(heavy)}; "
                  "the contract requires them to be imported only when a device is opened (the plugin loads every "
                  "registered backend in every pytest run)")

    # -- discovery ---------------------------------------------------------------------------------------------

    def test_discover_returns_canonical_specs(self, contract_backend: Backend) -> None:
        found = _discover_or_skip(contract_backend)
        if not isinstance(found, list) or not all(isinstance(spec, str) for spec in found):
            _fail(f"discover() returned {found!r}; the contract requires a list of spec strings")
        if len(set(found)) != len(found):
            _fail(f"discover() returned {found!r}, with repeats; each device once")
        for spec in found:
            if contract_backend.parse(spec) != spec:
                _fail(f"discover() returned {spec!r}, but parse({spec!r}) gives {contract_backend.parse(spec)!r}; "
                      "the contract requires canonical specs (what parse returns for them)")

    def test_discovered_devices_open(self, contract_backend: Backend) -> None:
        for spec in _discover_or_skip(contract_backend):
            try:
                device = contract_backend.open(spec)
            except DeviceUnavailable as error:
                if not error.reason:
                    _fail(f"open({spec!r}) raised DeviceUnavailable without a reason")
                continue
            if not isinstance(device, Device) or device.spec != spec:
                _fail(f"open({spec!r}) returned {device!r}; the contract requires a Device whose spec is {spec!r}")

    # -- absent devices ----------------------------------------------------------------------------------------

    def test_absent_device_raises_device_unavailable(self, contract_backend: Backend) -> None:
        spec, error = self._open_absent(contract_backend)
        if not isinstance(error, DeviceUnavailable):
            _fail(f"open({spec!r}) raised {type(error).__name__}: {error}; the contract requires "
                  "DeviceUnavailable(spec, reason) for a device this machine lacks (the plugin turns it into a "
                  "clear error, or a skip under --accel-skip-unavailable; anything else is a crash)")
        if spec not in str(error) and (self.absent_spec or "") not in str(error):
            _fail(f"open({spec!r}) raised {error}; the message must name the device ({spec!r})")
        if not error.reason.strip():
            _fail(f"open({spec!r}) raised DeviceUnavailable with an empty reason")

    def test_absent_device_message_says_what_is_available(self, contract_backend: Backend) -> None:
        spec, error = self._open_absent(contract_backend)
        message = str(error)
        try:
            present = contract_backend.discover()
        except DeviceUnavailable:
            present = []
        # a spec, or its device part where that is a name ("ort:cpu" -> "cpu"; not "cuda:1" -> "1")
        names = {name.lower() for found in present for name in (found, found.split(":", 1)[-1])
                 if re.search("[A-Za-z]", name)}
        # a name at the start of a word: "cpu" is named by "CPUExecutionProvider", not by "vcpu"
        if present and not any(re.search(rf"(?<![a-z0-9]){re.escape(name)}", message.lower()) for name in names):
            _fail(f"open({spec!r}) failed with {message!r}, which names none of the devices this machine has "
                  f"({', '.join(present)}); the contract requires the message to say what is available")
        if not present and not _SAYS_NONE.search(message):
            _fail(f"open({spec!r}) failed with {message!r}; discover() finds no device here, and the message must "
                  "say so (what is available: none)")

    def _open_absent(self, backend: Backend) -> tuple[str, BaseException]:
        if self.absent_spec is None:
            pytest.skip("absent_spec is None: no spec of this backend is sure to name a missing device")
        canonical = backend.parse(self.absent_spec)
        if canonical is None:
            _fail(f"parse({self.absent_spec!r}) returned None; absent_spec must be a spec this backend owns")
        try:
            device = backend.open(canonical)
        except Exception as error:  # noqa: BLE001 - what was raised is what is judged
            return canonical, error
        _fail(f"open({canonical!r}) returned {device!r}; either this machine has that device (choose another "
              "absent_spec) or open does not check that the device exists: the contract requires DeviceUnavailable")

    # -- description -------------------------------------------------------------------------------------------

    def test_info_describes_the_device(self, contract_backend: Backend, contract_device: Device) -> None:
        info = contract_device.info
        if not isinstance(info, DeviceInfo):
            _fail(f"info is {info!r}; the contract requires a DeviceInfo")
        wrong = [f"{name} is {got!r}, expected {want!r}" for name, got, want in (
            ("info.backend", info.backend, contract_backend.name), ("info.spec", info.spec, contract_device.spec),
            ("device.backend_name", contract_device.backend_name, contract_backend.name))if got != want]
        if not isinstance(info.model, str) or not info.model.strip():
            wrong.append(f"info.model is {info.model!r}, expected the hardware's model name")
        if not info.runtime or not all(isinstance(v, str) and v.strip() for v in info.runtime.values()):
            wrong.append(f"info.runtime is {info.runtime!r}, expected the versions of the software that runs the work "
                         "({'mysdk': '1.2.0'})")
        if not isinstance(contract_device.runtime, str) or not contract_device.runtime:
            wrong.append(f"device.runtime is {contract_device.runtime!r}, expected the runtime's name (accel_only "
                         "matches it)")
        if wrong:
            _fail(f"{contract_device.spec}: " + "; ".join(wrong))

    def test_key_is_a_safe_folder_name(self, contract_device: Device) -> None:
        key = contract_device.key
        if not isinstance(key, str) or not _SAFE_KEY.match(key):
            _fail(f"key is {key!r}; the contract requires lower-case letters, digits and single dashes (it names "
                  "the device's baseline folder on every file system); normalise_key_part makes one")

    def test_key_is_stable_across_opens(self, contract_backend: Backend, contract_device: Device) -> None:
        again = contract_backend.open(contract_device.spec).key
        if again != contract_device.key:
            _fail(f"two opens of {contract_device.spec!r} gave keys {contract_device.key!r} and {again!r}; the "
                  "contract requires the same key (or stored baselines are never found again)")

    def test_keys_differ_between_distinct_devices(self, contract_backend: Backend) -> None:
        keys: dict[str, str] = {}
        for spec in self.distinct_specs:
            canonical = contract_backend.parse(spec)
            if canonical is None:
                _fail(f"parse({spec!r}) returned None; distinct_specs must be specs of this backend")
            try:
                keys[canonical] = contract_backend.open(canonical).key
            except DeviceUnavailable:
                continue
        if len(keys) < 2:
            pytest.skip(f"fewer than two of distinct_specs ({', '.join(self.distinct_specs) or 'none given'}) open "
                        "here")
        shared = {key: [spec for spec, k in keys.items() if k == key] for key in keys.values()}
        for key, specs in shared.items():
            if len(specs) > 1:
                _fail(f"{' and '.join(specs)} share the key {key!r}; the contract requires distinct devices and "
                      "settings to have their own baseline folders")

    def test_id_is_safe_in_test_ids_and_file_names(self, contract_device: Device) -> None:
        if not isinstance(contract_device.id, str) or not _SAFE_ID.match(contract_device.id):
            _fail(f"id is {contract_device.id!r}; the contract requires letters, digits and _ . + - only (it "
                  "appears in test ids, as in test_x[<id>], and in file names)")

    # -- timing ------------------------------------------------------------------------------------------------

    def test_synchronize_returns_on_an_idle_device(self, contract_device: Device) -> None:
        start = time.perf_counter()
        contract_device.synchronize()
        contract_device.synchronize()
        took = time.perf_counter() - start
        if took > 1.0:
            _fail(f"synchronize() on an idle device took {took:.2f} s for two calls; it must return once nothing "
                  "is queued (every timed round calls it)")

    def test_synchronize_waits_for_queued_work(self, contract_device: Device) -> None:
        is_done = self.launch_async_work(contract_device)
        if is_done is None:
            runtime = contract_device.runtime or "its runtime"
            pytest.skip(f"{contract_device.spec} runs work host-synchronously ({runtime}: work has finished when the "
                        "call returns), so synchronize() may be a no-op; a runtime that queues work must override "
                        "launch_async_work for this check")
        if is_done():
            pytest.skip("the work launch_async_work queued had finished before synchronize() was called: nothing "
                        "to wait for (queue longer work to check this device)")
        start = time.perf_counter()
        contract_device.synchronize()
        took = time.perf_counter() - start
        if not is_done():
            _fail(f"synchronize() returned after {took * 1e3:.1f} ms while the work queued before it was still "
                  "running; the contract requires it to block until all queued work has finished (else every "
                  "latency measures the launch, not the work)")

    # Probe timings are judged by their lower quartile, what a call costs when the shared machine leaves it alone,
    # and measured a second time before failing: a burst of load elsewhere must not fail a backend.

    def test_calibration_probe_runs_in_bounded_time(self, contract_device: Device,
                                                    calibration_probe: Callable[[], None]) -> None:
        for _ in range(2):
            timings = _time_calls(calibration_probe, contract_device)
            typical = _lower_quartile(timings)
            if typical <= self.probe_max_seconds:
                return
        _fail(f"a calibration probe call took {typical * 1e3:.1f} ms (lower quartile of {len(timings)}, twice); the "
              f"contract requires under {self.probe_max_seconds * 1e3:.0f} ms (it runs before every timed round)")

    def test_calibration_probe_is_steady(self, contract_device: Device,
                                         calibration_probe: Callable[[], None]) -> None:
        for _ in range(2):
            timings = _time_calls(calibration_probe, contract_device)
            if len(timings) < 6:
                pytest.skip(f"only {len(timings)} probe calls fit in {_PROBE_BUDGET_SECONDS} s: too few to judge")
            half = len(timings) // 2
            first, second = _lower_quartile(timings[:half]), _lower_quartile(timings[half:])
            if max(first, second) <= _PROBE_STEADY_RATIO * max(min(first, second), 1e-9):
                return
        _fail(f"calibration probe calls took {first * 1e3:.2f} ms, later {second * 1e3:.2f} ms (lower quartiles, "
              f"twice); the contract requires repeated calls within {_PROBE_STEADY_RATIO}x of each other (the probe "
              "normalises timings: it must measure the machine, not its own warm-up or caches)")

    # -- energy ------------------------------------------------------------------------------------------------

    def test_energy_meter_is_none_with_a_reason_or_counts_up(self, contract_device: Device) -> None:
        meter = contract_device.energy_meter()
        if meter is None:
            reason = contract_device.no_energy_meter_reason
            if not (isinstance(reason, str) and reason.strip()):
                _fail(f"energy_meter() is None and no_energy_meter_reason is {reason!r}; the contract requires a "
                      "reason (the energy test is skipped with it)")
            return
        period, resolution = meter.update_period_s, meter.resolution_j
        if not (isinstance(period, (int, float)) and math.isfinite(period) and 0 < period <= 10):
            _fail(f"energy meter {meter.name!r}: update_period_s={period!r}; the contract requires the seconds "
                  "between counter updates, > 0 and at most 10 (energy windows are sized by it)")
        if not (isinstance(resolution, (int, float)) and math.isfinite(resolution) and resolution >= 0):
            _fail(f"energy meter {meter.name!r}: resolution_j={resolution!r}; the contract requires joules >= 0")
        first = meter.read_joules()
        time.sleep(min(2 * period, 1.0))
        second = meter.read_joules()
        if not (math.isfinite(first) and math.isfinite(second) and second >= first):
            _fail(f"energy meter {meter.name!r} read {first!r} J, then {second!r} J {min(2 * period, 1.0):g} s "
                  "later; the contract requires a cumulative counter in finite joules that never goes down")

    # -- numerics ----------------------------------------------------------------------------------------------

    def test_supported_dtypes_are_known_names(self, contract_device: Device) -> None:
        dtypes = contract_device.supported_dtypes
        unknown = [dtype for dtype in dtypes if dtype not in WORKLOAD_DTYPES]
        if not dtypes or unknown:
            _fail(f"supported_dtypes is {dtypes!r}; the contract requires names workloads ask for: "
                  f"{', '.join(WORKLOAD_DTYPES)}")
        for dtype in dtypes:
            precision = contract_device.effective_precision(dtype)
            if precision not in PRECISION_NAMES:
                _fail(f"effective_precision({dtype!r}) is {precision!r}; the contract requires one of "
                      f"{', '.join(PRECISION_NAMES)} (parity bounds are chosen by it)")

    def test_supported_dtypes_really_run(self, contract_device: Device) -> None:
        import numpy as np

        generator = np.random.default_rng(0)
        a, b = (generator.standard_normal((_MATMUL_SIZE, _MATMUL_SIZE), dtype=np.float32) for _ in range(2))
        expected = a.astype(np.float64) @ b.astype(np.float64)
        unchecked = []
        for dtype in contract_device.supported_dtypes:
            precision = contract_device.effective_precision(dtype)
            if precision not in MATMUL_MAX_REL_ERROR:
                unchecked.append(dtype)
                continue
            try:
                result = self.run_matmul(contract_device, a, b, dtype)
            except Exception as error:  # noqa: BLE001 - a claimed dtype that fails to run is the finding
                _fail(f"supported_dtypes claims {dtype!r}, but a {dtype} matmul on {contract_device.spec} raised "
                      f"{type(error).__name__}: {error}")
            if result is None:
                unchecked.append(dtype)
                continue
            result = np.asarray(result, dtype=np.float64)
            if result.shape != expected.shape or not np.isfinite(result).all():
                _fail(f"a {dtype} matmul on {contract_device.spec} gave shape {result.shape} with non-finite values "
                      f"or the wrong shape; supported_dtypes claims {dtype!r}")
            off_by = float(np.abs(result - expected).max() / np.abs(expected).max())
            if off_by > MATMUL_MAX_REL_ERROR[precision]:
                _fail(f"a {dtype} matmul on {contract_device.spec} is off by {off_by:.2e} (relative to its largest "
                      f"entry); {precision} (what effective_precision says it runs in) allows "
                      f"{MATMUL_MAX_REL_ERROR[precision]:.0e}")
        if unchecked:
            pytest.skip(f"the kit cannot run {', '.join(unchecked)} on {contract_device.spec} (override run_matmul to "
                        "check them); the others passed")

    def test_prepare_module_computes_the_same(self, contract_device: Device) -> None:
        if not isinstance(contract_device, TorchRuntime):
            pytest.skip(f"{contract_device.spec} does not run PyTorch (TorchRuntime): no prepare_module to check")
        torch = importlib.import_module("torch")
        generator = torch.Generator().manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
        with torch.no_grad():
            for parameter in module.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / 4)
        module = module.to(contract_device.torch_device).eval()
        inputs = torch.randn(8, 16, generator=generator).to(contract_device.torch_device)
        with torch.no_grad():
            expected = module(inputs).float().cpu()
            prepared = contract_device.prepare_module(module)
            if not callable(prepared):
                _fail(f"prepare_module returned {prepared!r}; the contract requires a module to run")
            output = prepared(inputs)
        target = contract_device.torch_device.type
        if not isinstance(output, torch.Tensor) or output.device.type != target:
            where = output.device.type if isinstance(output, torch.Tensor) else type(output).__name__
            _fail(f"the prepared module's output is on {where}, not on {target}; the contract requires prepare_module "
                  "to keep the work on the device under test")
        error = float((output.float().cpu() - expected).abs().max() / expected.abs().max())
        bound = MATMUL_MAX_REL_ERROR.get(contract_device.effective_precision("fp32"), 1e-4)
        if output.shape != expected.shape or not math.isfinite(error) or error > bound:
            _fail(f"the prepared module computes something else: shape {tuple(output.shape)} vs "
                  f"{tuple(expected.shape)}, off by {error:.2e} relative (allowed {bound:.0e}); the contract requires "
                  "prepare_module to return a module that computes what the original does")


_T = TypeVar("_T")
_DEVICE = pytest.StashKey[Device]()
_IMPORTS = pytest.StashKey[dict[str, Any]]()


def _once_per_class(request: pytest.FixtureRequest, key: pytest.StashKey[_T], make: Callable[[], _T]) -> _T:
    holder = request.node.getparent(pytest.Class) or request.node
    if key not in holder.stash:
        holder.stash[key] = make()
    return holder.stash[key]


def _time_calls(probe: Callable[[], None], device: Device) -> list[float]:
    """Seconds per probe call with the synchronize after it, after two untimed calls, within a time budget."""
    timings: list[float] = []
    deadline = time.perf_counter() + _PROBE_BUDGET_SECONDS
    for call in range(_PROBE_SAMPLES + 2):
        start = time.perf_counter()
        probe()
        device.synchronize()
        if call >= 2:
            timings.append(time.perf_counter() - start)
        if time.perf_counter() > deadline and timings:
            break
    return timings

def _discovered(backend: Backend) -> list[str]:
    try:
        return list(backend.discover())
    except DeviceUnavailable:
        return []


def _discover_or_skip(backend: Backend) -> list[str]:
    try:
        return backend.discover()
    except DeviceUnavailable as error:
        pytest.skip(f"discover() raised {error}")


def _lower_quartile(values: Sequence[float]) -> float:
    return sorted(values)[(len(values) - 1) // 4]

_TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _torch_matmul(device: Any, a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray | None:
    if dtype not in _TORCH_DTYPES:
        return None
    torch = importlib.import_module("torch")
    torch_dtype = getattr(torch, _TORCH_DTYPES[dtype])
    left, right = (torch.from_numpy(x).to(device.torch_device, torch_dtype) for x in (a, b))
    return (left @ right).float().cpu().numpy()


def _queue_torch_matmuls(device: Any) -> Callable[[], bool]:
    """Queue about :data:`_ASYNC_WORK_SECONDS` of matmuls on a PyTorch accelerator; done is read from an event.

    The amount is sized with the event's own ``synchronize``, so the backend's ``synchronize`` is first called by
    the check itself."""
    torch = importlib.import_module("torch")
    target = device.torch_device
    if target.type == "cpu":
        pytest.skip("PyTorch runs CPU ops on the calling thread: work has finished when the call returns, so "
                    "synchronize() has nothing to wait for (a no-op is right)")
    try:
        finished = torch.Event(device=target)
    except Exception as error:  # noqa: BLE001 - a device type without event support
        pytest.skip(f"torch.Event is not available for {target.type} ({error}): override launch_async_work")
    matrix = torch.randn(1024, 1024, device=target)
    product = torch.empty_like(matrix)

    def queue(count: int) -> None:
        for _ in range(count):
            torch.mm(matrix, matrix, out=product)
        finished.record()

    queue(1)
    finished.synchronize()
    start = time.perf_counter()
    queue(8)
    finished.synchronize()
    per_product = max((time.perf_counter() - start) / 8, 1e-6)
    queue(max(1, min(20_000, round(_ASYNC_WORK_SECONDS / per_product))))
    return lambda: bool(finished.query())
