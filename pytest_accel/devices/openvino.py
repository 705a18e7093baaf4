"""The OpenVINO backend: ``ov:<device>`` — ``ov:CPU``, ``ov:GPU``, ``ov:GPU.1``, ``ov:NPU``, ``ov:AUTO``,
``ov:HETERO:NPU,CPU`` — with an optional pinned inference precision: ``ov:CPU/f32``, ``ov:GPU/f16``.

Written only against the public :class:`~pytest_accel.devices.Backend` / :class:`~pytest_accel.devices.Device` API
and the :class:`~pytest_accel.devices.OnnxModelRuntime` protocol, and registered through the same
``pytest_accel.backends`` entry point a vendor's package uses: it is the worked example for bringing up a new
accelerator SDK. Importing this module imports nothing of OpenVINO; opening a device does.

OpenVINO picks an inference precision per device unless told otherwise (its ``INFERENCE_PRECISION_HINT``): the CPU
plugin runs fp32 models in bf16 where the CPU has bf16 instructions, GPUs and NPUs in f16. So the precision a
model really ran in is read back from the compiled runtime model, operation by operation, and parity bounds follow
it rather than the model file's.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from pytest_accel.devices import (
    Backend,
    Device,
    DeviceInfo,
    DeviceUnavailable,
    ExecutionPrecision,
    host_cpu_info,
)

#: pinnable inference precisions: the spec suffix (OpenVINO's element type names, or ours) -> OpenVINO's name
PRECISIONS = {"f32": "f32", "fp32": "f32", "bf16": "bf16", "f16": "f16", "fp16": "f16"}
#: OpenVINO element types -> the precision names parity bounds use
_OUR_NAMES = {"f32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16", "f16": "fp16", "float16": "fp16",
              "i8": "int8", "u8": "int8", "int8": "int8", "uint8": "int8"}
#: layer types of a compiled runtime model that do the arithmetic (the rest move, reshape or convert data)
COMPUTE_LAYERS = frozenset({"Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul", "Gemm"})
#: OpenVINO's virtual devices, which take a list of real ones: AUTO:GPU,CPU
_VIRTUAL = ("AUTO", "HETERO", "MULTI", "BATCH")
_DEVICE = re.compile(r"^[A-Z][A-Z0-9_]*(\.\d+)?$")


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as error:
        raise DeviceUnavailable("ov", f"openvino is not installed ({error}); pip install 'pytest-accel[openvino]'"
                                ) from None
    return openvino


@dataclass(frozen=True)
class OvSpec:
    device: str  # what OpenVINO is given: CPU, GPU.1, HETERO:NPU,CPU
    precision: str | None  # pinned inference precision (OpenVINO's name), or None for the device's default

    @property
    def canonical(self) -> str:
        return f"ov:{self.device}" + (f"/{self.precision}" if self.precision else "")

    @property
    def real_devices(self) -> list[str]:
        """The physical devices it needs: HETERO:NPU,CPU -> [NPU, CPU]."""
        name, _, targets = self.device.partition(":")
        return [t for t in targets.split(",") if t] if name in _VIRTUAL else [self.device]


def parse_spec(spec: str) -> OvSpec | None:
    prefix, sep, rest = spec.partition(":")
    if prefix.lower() != "ov" or not sep or not rest:
        return None
    device, _, precision = rest.partition("/")
    device = device.strip().upper()
    if precision and precision.lower() not in PRECISIONS:
        return None
    name, colon, targets = device.partition(":")
    if colon:
        if name not in _VIRTUAL or not targets or not all(_DEVICE.match(t) for t in targets.split(",")):
            return None
    elif not _DEVICE.match(device):
        return None
    return OvSpec(device, PRECISIONS[precision.lower()] if precision else None)


@dataclass
class OvCompiled:
    """One model compiled for one OpenVINO device, run synchronously on host arrays."""

    compiled: Any
    request: Any

    def run(self, feeds: Mapping[str, Any]) -> list[Any]:
        self.request.infer(dict(feeds))
        return [self.request.get_output_tensor(i).data.copy() for i in range(len(self.compiled.outputs))]

    def run_in_place(self, feeds: Mapping[str, Any]) -> None:
        """One inference reading the host arrays where they are and leaving the outputs in the request: what a
        memory-bound kernel's bandwidth is measured on (``run`` copies both ways)."""
        self.request.infer(dict(feeds), share_inputs=True, share_outputs=True)

    def execution_precision(self) -> ExecutionPrecision:
        """How the compiled runtime model runs: operations per (layer type, runtime precision)."""
        counts: Counter[tuple[str, str]] = Counter()
        for op in self.compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if "layerType" not in info or "runtimePrecision" not in info:
                continue
            layer, precision = info["layerType"].astype(str), info["runtimePrecision"].astype(str)
            counts[(layer, _OUR_NAMES.get(precision.lower(), precision))] += 1
        return ExecutionPrecision.from_counts(counts, COMPUTE_LAYERS)


class OvDevice(Device):
    runtime = "openvino"

    def __init__(self, spec: OvSpec) -> None:
        super().__init__(spec.canonical, OpenVinoBackend.name)
        self.ov = _openvino()
        self.core = self.ov.Core()
        self.ov_spec = spec
        self._probe: Callable[[], None] | None = None
        self._effective: str | None = None

    @property
    def id(self) -> str:
        return self.spec.replace(":", "-").replace("/", "-").replace(",", "+")

    @property
    def key_prefix(self) -> str:
        prefix = "ov-" + re.sub(r"[^a-z0-9]+", "-", self.ov_spec.device.lower()).strip("-")  # ov-cpu, ov-hetero-npu-cpu
        return prefix + (f"-{self.ov_spec.precision}" if self.ov_spec.precision else "")

    @property
    def is_host_cpu(self) -> bool:
        return self.ov_spec.device == "CPU"

    @property
    def host_in_key(self) -> bool:
        return not self.is_host_cpu

    def config(self) -> dict[str, str]:
        """Properties every model is compiled with: the pinned precision, if any."""
        return {"INFERENCE_PRECISION_HINT": self.ov_spec.precision} if self.ov_spec.precision else {}

    @property
    def inference_precision(self) -> str:
        """The precision OpenVINO runs fp32 models in on this device: the pinned one, else the device's default."""
        if self.ov_spec.precision:
            return self.ov_spec.precision
        try:
            hint = self.core.get_property(self.ov_spec.real_devices[0], "INFERENCE_PRECISION_HINT")
        except RuntimeError:  # a device without the property computes in the model's precision
            return "f32"
        return str(getattr(hint, "type_name", hint)).lower()

    def effective_precision(self, dtype: str) -> str:
        """What fp32 work really runs in here, read from a compiled matmul's runtime model rather than from the hint:
        on CPUs without fp16 arithmetic OpenVINO accepts ``/f16`` and runs bf16 (seen on this project's CPU)."""
        if dtype != "fp32":
            return dtype
        if self._effective is None:
            self._compile_probe()
        return self._effective or _OUR_NAMES.get(self.inference_precision, self.inference_precision)

    def describe(self) -> DeviceInfo:
        runtime = {"openvino": self.ov.get_version().split("-")[0]}
        # the hint asked for, and what a compiled fp32 matmul really ran in (they differ where the hint is not honoured)
        extra = {"device": self.ov_spec.device, "inference_precision": self.inference_precision,
                 "fp32_runs_in": self.effective_precision("fp32")}
        if self.is_host_cpu:
            return host_cpu_info(self.backend_name, self.spec, runtime, extra)
        names = []
        for device in self.ov_spec.real_devices:
            try:
                names.append(str(self.core.get_property(device, "FULL_DEVICE_NAME")))
            except RuntimeError:
                names.append(device)
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="Intel" if names else "",
                          model=" + ".join(names) or self.ov_spec.device, runtime=runtime, extra=extra)

    def compile_onnx(self, model: str | os.PathLike[str] | bytes, *,
                     sample_feeds: Mapping[str, Any] | None = None, max_batch: int = 1) -> OvCompiled:
        """Compile an ONNX model (a path or its bytes) for this device; one run on ``sample_feeds`` checks it."""
        source = self.core.read_model(model) if not isinstance(model, bytes) else \
            self.core.read_model(model, b"")  # bytes: ONNX in memory, no weights file
        compiled = self.core.compile_model(source, self.ov_spec.device, self.config())
        result = OvCompiled(compiled, compiled.create_infer_request())
        if sample_feeds is not None:
            result.run(sample_feeds)
        return result

    def _compile_probe(self) -> Any:
        import numpy as np

        opset = self.ov.opset13
        size = 256
        left = opset.parameter([size, size], self.ov.Type.f32, name="a")
        model = self.ov.Model([opset.matmul(left, left, False, False)], [left], "accel_probe")
        compiled = OvCompiled(self.core.compile_model(model, self.ov_spec.device, self.config()), None)
        compiled.request = compiled.compiled.create_infer_request()
        self._effective = compiled.execution_precision().dominant
        compiled.run({"a": np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)})
        return compiled

    def calibration_probe(self) -> Callable[[], None] | None:
        """A 256² matmul compiled for this device with the same precision: the same runtime, the same scheduling."""
        if self._probe is None:
            import numpy as np

            compiled = self._compile_probe()
            feeds = {"a": np.random.default_rng(0).standard_normal((256, 256), dtype=np.float32)}
            self._probe = lambda: compiled.request.infer(feeds)
        return self._probe


class OpenVinoBackend(Backend):
    name = "openvino"
    manifest_path = Path(__file__).with_name("openvino_manifest.toml")
    grammar = ("ov:<device> with CPU, GPU, GPU.N, NPU, AUTO, AUTO:<devices>, HETERO:<devices> "
               "(e.g. ov:HETERO:NPU,CPU), optionally /f32, /bf16 or /f16 to pin the inference precision (ov:CPU/f32)")

    def parse(self, spec: str) -> str | None:
        parsed = parse_spec(spec)
        return parsed.canonical if parsed else None

    def discover(self) -> list[str]:
        try:
            ov = _openvino()
        except DeviceUnavailable:
            return []
        return [f"ov:{device}" for device in ov.Core().available_devices]

    def open(self, spec: str) -> Device:
        parsed = parse_spec(spec)
        assert parsed is not None, spec
        ov = _openvino()
        available = ov.Core().available_devices
        for device in parsed.real_devices:
            if not _available(device, available):
                raise DeviceUnavailable(spec, f"OpenVINO {ov.get_version().split('-')[0]} finds no {device} here; "
                                              f"available: {', '.join(available) or 'none'}")
        return OvDevice(parsed)


def _available(device: str, available: list[str]) -> bool:
    """GPU matches GPU or GPU.0 (OpenVINO numbers devices only when there are several)."""
    return device in available or any(name.split(".")[0] == device for name in available)


__all__ = ["COMPUTE_LAYERS", "OpenVinoBackend", "OvDevice", "OvSpec", "parse_spec"]
