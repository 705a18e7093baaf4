"""What a vendor's contract class is made of before its checks: the class attributes a vendor sets, the hooks a
vendor may override, and the fixtures the checks share (the backend, one open device and a fresh interpreter's
import report, each made once per test class)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from typing import TYPE_CHECKING, Any, Callable, ClassVar, NoReturn, Sequence, TypeVar

import pytest

from pytest_accel.devices import Backend, Device, DeviceUnavailable, OnnxModelRuntime, OrtRuntime, TorchRuntime
from pytest_accel.testing.torch_work import queue_torch_matmuls, torch_matmul

if TYPE_CHECKING:
    import numpy as np

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


def fail(message: str) -> NoReturn:
    """Fail the contract test with ``message`` alone: the contract broken, no traceback into the kit."""
    pytest.fail(message, pytrace=False)


class ContractBase:
    """The settings, hooks and fixtures :class:`~pytest_accel.testing.BackendContract` and its checks share."""

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
            return queue_torch_matmuls(device)
        return None

    def run_matmul(self, device: Device, a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray | None:
        """``a @ b`` computed on ``device`` in ``dtype``, as a host float array; None where the kit cannot run that
        dtype on this device. The default covers PyTorch devices in every dtype, ONNX ones in fp32."""
        if isinstance(device, TorchRuntime):
            return torch_matmul(device, a, b, dtype)
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
            fail(f"{type(self).__name__}.backend must be an instance of your Backend subclass, got {backend!r}")
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
            fail(f"calibration_probe() returned {probe!r}; the contract requires None or a callable")
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


_T = TypeVar("_T")
_DEVICE = pytest.StashKey[Device]()
_IMPORTS = pytest.StashKey[dict[str, Any]]()


def _once_per_class(request: pytest.FixtureRequest, key: pytest.StashKey[_T], make: Callable[[], _T]) -> _T:
    holder = request.node.getparent(pytest.Class) or request.node
    if key not in holder.stash:
        holder.stash[key] = make()
    return holder.stash[key]


def _discovered(backend: Backend) -> list[str]:
    try:
        return list(backend.discover())
    except DeviceUnavailable:
        return []

