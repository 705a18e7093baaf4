"""The contract's checks of an open device: its description, timing, energy meter and numerics."""

from __future__ import annotations

import importlib
import math
import re
import time
from typing import Callable, Sequence

import pytest

from pytest_accel.devices import Backend, Device, DeviceInfo, DeviceUnavailable, TorchRuntime
from pytest_accel.testing.base import ContractBase, fail
from pytest_accel.testing.limits import MATMUL_MAX_REL_ERROR, PRECISION_NAMES, WORKLOAD_DTYPES

_MATMUL_SIZE = 64
_PROBE_SAMPLES, _PROBE_BUDGET_SECONDS, _PROBE_STEADY_RATIO = 30, 1.0, 2.0
_SAFE_KEY = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class DeviceChecks(ContractBase):
    """Description, timing, energy and numerics, on the device the ``contract_device`` fixture opened."""

    # -- description -------------------------------------------------------------------------------------------

    def test_info_describes_the_device(self, contract_backend: Backend, contract_device: Device) -> None:
        info = contract_device.info
        if not isinstance(info, DeviceInfo):
            fail(f"info is {info!r}; the contract requires a DeviceInfo")
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
            fail(f"{contract_device.spec}: " + "; ".join(wrong))

    def test_key_is_a_safe_folder_name(self, contract_device: Device) -> None:
        key = contract_device.key
        if not isinstance(key, str) or not _SAFE_KEY.match(key):
            fail(f"key is {key!r}; the contract requires lower-case letters, digits and single dashes (it names "
                 "the device's baseline folder on every file system); normalise_key_part makes one")

    def test_key_is_stable_across_opens(self, contract_backend: Backend, contract_device: Device) -> None:
        again = contract_backend.open(contract_device.spec).key
        if again != contract_device.key:
            fail(f"two opens of {contract_device.spec!r} gave keys {contract_device.key!r} and {again!r}; the "
                 "contract requires the same key (or stored baselines are never found again)")

    def test_keys_differ_between_distinct_devices(self, contract_backend: Backend) -> None:
        keys: dict[str, str] = {}
        for spec in self.distinct_specs:
            canonical = contract_backend.parse(spec)
            if canonical is None:
                fail(f"parse({spec!r}) returned None; distinct_specs must be specs of this backend")
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
                fail(f"{' and '.join(specs)} share the key {key!r}; the contract requires distinct devices and "
                     "settings to have their own baseline folders")

    def test_id_is_safe_in_test_ids_and_file_names(self, contract_device: Device) -> None:
        if not isinstance(contract_device.id, str) or not _SAFE_ID.match(contract_device.id):
            fail(f"id is {contract_device.id!r}; the contract requires letters, digits and _ . + - only (it "
                 "appears in test ids, as in test_x[<id>], and in file names)")

    # -- timing ------------------------------------------------------------------------------------------------

    def test_synchronize_returns_on_an_idle_device(self, contract_device: Device) -> None:
        start = time.perf_counter()
        contract_device.synchronize()
        contract_device.synchronize()
        took = time.perf_counter() - start
        if took > 1.0:
            fail(f"synchronize() on an idle device took {took:.2f} s for two calls; it must return once nothing "
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
            fail(f"synchronize() returned after {took * 1e3:.1f} ms while the work queued before it was still "
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
        fail(f"a calibration probe call took {typical * 1e3:.1f} ms (lower quartile of {len(timings)}, twice); the "
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
        fail(f"calibration probe calls took {first * 1e3:.2f} ms, later {second * 1e3:.2f} ms (lower quartiles, "
             f"twice); the contract requires repeated calls within {_PROBE_STEADY_RATIO}x of each other (the probe "
             "normalises timings: it must measure the machine, not its own warm-up or caches)")

    # -- energy ------------------------------------------------------------------------------------------------

    def test_energy_meter_is_none_with_a_reason_or_counts_up(self, contract_device: Device) -> None:
        meter = contract_device.energy_meter()
        if meter is None:
            reason = contract_device.no_energy_meter_reason
            if not (isinstance(reason, str) and reason.strip()):
                fail(f"energy_meter() is None and no_energy_meter_reason is {reason!r}; the contract requires a "
                     "reason (the energy test is skipped with it)")
            return
        period, resolution = meter.update_period_s, meter.resolution_j
        if not (isinstance(period, (int, float)) and math.isfinite(period) and 0 < period <= 10):
            fail(f"energy meter {meter.name!r}: update_period_s={period!r}; the contract requires the seconds "
                 "between counter updates, > 0 and at most 10 (energy windows are sized by it)")
        if not (isinstance(resolution, (int, float)) and math.isfinite(resolution) and resolution >= 0):
            fail(f"energy meter {meter.name!r}: resolution_j={resolution!r}; the contract requires joules >= 0")
        first = meter.read_joules()
        time.sleep(min(2 * period, 1.0))
        second = meter.read_joules()
        if not (math.isfinite(first) and math.isfinite(second) and second >= first):
            fail(f"energy meter {meter.name!r} read {first!r} J, then {second!r} J {min(2 * period, 1.0):g} s "
                 "later; the contract requires a cumulative counter in finite joules that never goes down")

    # -- numerics ----------------------------------------------------------------------------------------------

    def test_supported_dtypes_are_known_names(self, contract_device: Device) -> None:
        dtypes = contract_device.supported_dtypes
        unknown = [dtype for dtype in dtypes if dtype not in WORKLOAD_DTYPES]
        if not dtypes or unknown:
            fail(f"supported_dtypes is {dtypes!r}; the contract requires names workloads ask for: "
                 f"{', '.join(WORKLOAD_DTYPES)}")
        for dtype in dtypes:
            precision = contract_device.effective_precision(dtype)
            if precision not in PRECISION_NAMES:
                fail(f"effective_precision({dtype!r}) is {precision!r}; the contract requires one of "
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
                fail(f"supported_dtypes claims {dtype!r}, but a {dtype} matmul on {contract_device.spec} raised "
                     f"{type(error).__name__}: {error}")
            if result is None:
                unchecked.append(dtype)
                continue
            result = np.asarray(result, dtype=np.float64)
            if result.shape != expected.shape or not np.isfinite(result).all():
                fail(f"a {dtype} matmul on {contract_device.spec} gave shape {result.shape} with non-finite values "
                     f"or the wrong shape; supported_dtypes claims {dtype!r}")
            off_by = float(np.abs(result - expected).max() / np.abs(expected).max())
            if off_by > MATMUL_MAX_REL_ERROR[precision]:
                fail(f"a {dtype} matmul on {contract_device.spec} is off by {off_by:.2e} (relative to its largest "
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
                fail(f"prepare_module returned {prepared!r}; the contract requires a module to run")
            output = prepared(inputs)
        target = contract_device.torch_device.type
        if not isinstance(output, torch.Tensor) or output.device.type != target:
            where = output.device.type if isinstance(output, torch.Tensor) else type(output).__name__
            fail(f"the prepared module's output is on {where}, not on {target}; the contract requires prepare_module "
                 "to keep the work on the device under test")
        error = float((output.float().cpu() - expected).abs().max() / expected.abs().max())
        bound = MATMUL_MAX_REL_ERROR.get(contract_device.effective_precision("fp32"), 1e-4)
        if output.shape != expected.shape or not math.isfinite(error) or error > bound:
            fail(f"the prepared module computes something else: shape {tuple(output.shape)} vs "
                 f"{tuple(expected.shape)}, off by {error:.2e} relative (allowed {bound:.0e}); the contract requires "
                 "prepare_module to return a module that computes what the original does")


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


def _lower_quartile(values: Sequence[float]) -> float:
    return sorted(values)[(len(values) - 1) // 4]
