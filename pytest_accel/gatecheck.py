"""The gate self-check: how often does this machine's latency gate fail unchanged code, and which slowdowns does it
catch? ``pytest-accel gate-check`` runs the chosen timed tests in separate pytest processes, unchanged and with an
injected slowdown, interleaved in time, and judges every run with the plugin's own verdict code.

The slowdown is real work, not a sleep: every model call on the device under test is followed by CPU work
proportional to the call's own duration (forward and backward for training), so the machine is loaded as by a
real regression. The calibration probe is left alone, as a regression of the workload would leave it. Under
``--accel-inject-slowdown`` the plugin registers a :class:`SlowdownInjector`, which applies it through the plugin's
own ``pytest_accel_configure_device`` hook, as a conftest would.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from pytest_accel.devices import CompiledOnnx, Device, OnnxModelRuntime, OrtRuntime, TorchRuntime
from pytest_accel.devices.compiled import TorchModelCompiler


def spin(seconds: float) -> None:
    """Busy CPU work for ``seconds`` (one core)."""
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        count += 1


class SlowdownInjector:
    """A plugin object: slows every model call on each device under test by ``fraction`` (0.1 = 10%)."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def pytest_accel_configure_device(self, device: Device) -> None:
        inject_slowdown(device, self.fraction)


def inject_slowdown(device: Device, fraction: float) -> None:
    """Make every model call on ``device`` ``fraction`` slower (0.1 = 10%)."""
    device.calibration_probe()  # made (and cached, where the device caches it) before the models are slowed
    if isinstance(device, TorchRuntime):
        prepare = device.prepare_module

        def slowed_prepare(module: Any) -> Any:
            prepared = prepare(module)
            _slow_torch_module(prepared, device, fraction)
            return prepared

        _override(device, "prepare_module", slowed_prepare)
    if isinstance(device, OrtRuntime):
        create = device.create_session

        def slowed_create(model: Any, options: Any | None = None, **kwargs: Any) -> Any:
            return SlowedSession(create(model, options, **kwargs), device, fraction)

        _override(device, "create_session", slowed_create)
    if isinstance(device, OnnxModelRuntime):  # OpenVINO, a vendor's ONNX compiler: its compiled model's runs
        compile_onnx = device.compile_onnx

        def slowed_compile(model: Any, **kwargs: Any) -> CompiledOnnx:
            return SlowedCompiledModel(compile_onnx(model, **kwargs), fraction)

        _override(device, "compile_onnx", slowed_compile)
    if isinstance(device, TorchModelCompiler):  # LiteRT, ExecuTorch: the compiled model's runs
        compile_torch = device.compile_torch

        def slowed_compile_torch(module: Any, example_inputs: tuple[Any, ...], **kwargs: Any) -> Any:
            return SlowedCompiledModel(compile_torch(module, example_inputs, **kwargs), fraction)

        _override(device, "compile_torch", slowed_compile_torch)


def _override(device: Device, method: str, replacement: Callable[..., Any]) -> None:
    """Replace one method on this device instance only: its class and every other device keep theirs."""
    setattr(device, method, replacement)


def _slow_torch_module(module: Any, device: Any, fraction: float) -> None:
    started: dict[str, float] = {}

    def before_forward(_module: Any, _inputs: Any) -> None:
        device.synchronize()
        started["forward"] = time.perf_counter()

    def after_forward(_module: Any, _inputs: Any, output: Any) -> None:
        device.synchronize()
        spin(fraction * (time.perf_counter() - started["forward"]))
        tensor = output[0] if isinstance(output, (tuple, list)) else output
        if getattr(tensor, "requires_grad", False):
            tensor.register_hook(lambda grad: started.__setitem__("backward", time.perf_counter()))

    module.register_forward_pre_hook(before_forward)
    module.register_forward_hook(after_forward)
    parameters = [p for p in module.parameters() if p.requires_grad]
    if parameters and hasattr(parameters[0], "register_post_accumulate_grad_hook"):
        # the first layer's weight gets its gradient last: the module's backward ends there
        def after_backward(_parameter: Any) -> None:
            if "backward" in started:
                device.synchronize()
                spin(fraction * (time.perf_counter() - started.pop("backward")))

        parameters[0].register_post_accumulate_grad_hook(after_backward)


class SlowedCompiledModel:
    """A model compiled by a device's SDK (from ONNX or from PyTorch; host arrays in, host arrays out: synchronous)
    whose runs are followed by proportional CPU work; everything else is the compiled model's."""

    def __init__(self, compiled: Any, fraction: float) -> None:
        self._compiled = compiled
        self._fraction = fraction

    def run(self, feeds: Any) -> list[Any]:
        start = time.perf_counter()
        result = self._compiled.run(feeds)
        spin(self._fraction * (time.perf_counter() - start))
        return list(result)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._compiled, name)


class SlowedSession:
    """An ONNX Runtime session whose runs are followed by proportional CPU work; everything else is the session's."""

    def __init__(self, session: Any, device: Device, fraction: float) -> None:
        self._session = session
        self._device = device
        self._fraction = fraction

    def run(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = self._session.run(*args, **kwargs)
        spin(self._fraction * (time.perf_counter() - start))
        return result

    def run_with_iobinding(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = self._session.run_with_iobinding(*args, **kwargs)
        self._device.synchronize()
        spin(self._fraction * (time.perf_counter() - start))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)
