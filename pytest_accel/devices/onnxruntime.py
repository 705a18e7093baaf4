"""The ONNX Runtime backend: ``ort:<execution provider>``, short names or full provider names.

A session on a non-CPU provider is created with CPU fallback disabled, so a model that the provider cannot run
whole fails loudly instead of being measured on the CPU.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

from pytest_accel.devices import Backend, Device, DeviceInfo, DeviceUnavailable, host_cpu_info, normalise_key_part
from pytest_accel.errors import DeviceFailure

SHORT_PROVIDER_NAMES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "vitisai": "VitisAIExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "webgpu": "WebGpuExecutionProvider",
}
_PROVIDER = re.compile(r"^[A-Za-z][A-Za-z0-9]*ExecutionProvider$")
_CPU = "CPUExecutionProvider"
_HOST_PROVIDERS = (_CPU, "XnnpackExecutionProvider")


class OrtFallbackError(DeviceFailure):
    """Nodes of a model would run (or ran) on the CPU provider instead of the provider under test."""


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise DeviceUnavailable(
            "ort", f"onnxruntime is not installed ({error}); pip install 'pytest-accel[onnxruntime]'"
        ) from None
    return onnxruntime


def short_name(provider: str) -> str:
    for short, full in SHORT_PROVIDER_NAMES.items():
        if full == provider:
            return short
    return provider.removesuffix("ExecutionProvider").lower()


class OrtDevice(Device):
    runtime = "onnxruntime"

    def __init__(self, spec: str, provider: str, provider_options: dict[str, str] | None = None) -> None:
        super().__init__(spec, OrtBackend.name)
        self.ort = _ort()
        self.provider = provider
        self.provider_options = provider_options or {}

    @property
    def key_prefix(self) -> str:
        return f"ort-{short_name(self.provider)}"

    @property
    def is_host_cpu(self) -> bool:
        return self.provider in _HOST_PROVIDERS

    def describe(self) -> DeviceInfo:
        runtime = {"onnxruntime": self.ort.__version__}
        if self.provider in _HOST_PROVIDERS:
            return host_cpu_info(self.backend_name, self.spec, runtime, {"provider": self.provider})
        vendor, model, memory = _gpu_from_torch() if self.provider in _NVIDIA_PROVIDERS else ("", "", None)
        return DeviceInfo(
            backend=self.backend_name,
            spec=self.spec,
            vendor=vendor,
            model=model or "unknown",
            memory_bytes=memory,
            runtime=runtime,
            extra={"provider": self.provider},
        )

    def session_options(self) -> Any:
        options = self.ort.SessionOptions()
        if self.provider != _CPU:
            options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        # Idle intra-op threads otherwise spin for a while after every run, taking cores from whatever is measured
        # next in the same process (seen here: a torch matmul 71% slower right after the detection suite on ORT).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def create_session(self, model: str | os.PathLike[str] | bytes, options: Any | None = None) -> Any:
        """An InferenceSession on this provider only; fails with ORT's reason if any node would fall back."""
        options = options or self.session_options()
        source = model if isinstance(model, bytes) else str(model)
        try:
            return self.ort.InferenceSession(
                source, sess_options=options, providers=[(self.provider, self.provider_options)]
            )
        except Exception as error:  # onnxruntime raises its own Fail/InvalidArgument types
            if "fallback" not in str(error).lower():
                raise
            placement = self.node_placement(source)
            on_cpu = [f"{name} ({op})" for name, (provider, op) in placement.items() if provider == _CPU]
            listed = ", ".join(on_cpu[:20]) + (f" and {len(on_cpu) - 20} more" if len(on_cpu) > 20 else "")
            raise OrtFallbackError(
                f"{self.provider} cannot run {len(on_cpu)} of {len(placement)} nodes, which would fall back to the "
                f"CPU: {listed or '(none found in a profiled run)'}"
            ) from None

    def node_placement(self, model: str | bytes, feeds: dict[str, Any] | None = None) -> dict[str, tuple[str, str]]:
        """{node name: (provider, op type)} from one profiled run with CPU fallback allowed.

        ``feeds`` default to zeros shaped by the model's inputs, symbolic dimensions set to 1.
        """
        options = self.ort.SessionOptions()
        with tempfile.TemporaryDirectory(prefix="accel-ort-profile-") as folder:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(folder) / "profile")
            providers = [self.provider] if self.provider == _CPU else [self.provider, _CPU]
            session = self.ort.InferenceSession(model, sess_options=options, providers=providers)
            session.run(None, feeds if feeds is not None else _zero_feeds(session))
            events = json.loads(Path(session.end_profiling()).read_text())
        placement: dict[str, tuple[str, str]] = {}
        for event in events:
            args = event.get("args", {})
            if event.get("cat") == "Node" and "provider" in args:
                placement[event["name"].removesuffix("_kernel_time")] = (args["provider"], args.get("op_name", "?"))
        return placement

    def calibration_probe(self) -> Callable[[], None] | None:
        try:
            model = matmul_model(_PROBE_SIZE, inputs=("a", "a"))
        except ImportError:
            return None
        import numpy as np

        session = self.create_session(model)
        feeds = {"a": np.random.default_rng(0).standard_normal((_PROBE_SIZE, _PROBE_SIZE), dtype=np.float32)}

        def probe() -> None:
            session.run(None, feeds)

        return probe


_PROBE_SIZE = 256


def matmul_model(size: int, inputs: tuple[str, str] = ("a", "b")) -> bytes:
    """A serialised ONNX model of one fp32 ``size``x``size`` MatMul; ``inputs`` ("a", "a") squares a single input."""
    from onnx import TensorProto, helper

    names = list(dict.fromkeys(inputs))
    graph = helper.make_graph(
        [helper.make_node("MatMul", list(inputs), ["y"], name="matmul")],
        "accel_matmul",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [size, size]) for name in names],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


_NVIDIA_PROVIDERS = {"CUDAExecutionProvider", "TensorrtExecutionProvider"}
_NUMPY_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
                "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(bool)": "bool"}


def _zero_feeds(session: Any) -> dict[str, Any]:
    import numpy as np

    feeds = {}
    for node in session.get_inputs():
        shape = [dim if isinstance(dim, int) and dim > 0 else 1 for dim in node.shape]
        feeds[node.name] = np.zeros(shape, dtype=_NUMPY_TYPES.get(node.type, "float32"))
    return feeds


def _gpu_from_torch() -> tuple[str, str, int | None]:
    """Name the GPU behind a CUDA/TensorRT provider through torch when it is installed; ORT cannot tell."""
    try:
        import torch
    except ImportError:
        return "", "", None
    if not torch.cuda.is_available():
        return "", "", None
    props = torch.cuda.get_device_properties(0)
    return "NVIDIA", props.name.removeprefix("NVIDIA").strip(), int(props.total_memory)


class OrtBackend(Backend):
    name = "onnxruntime"
    grammar = (
        "ort:<provider> with " + ", ".join(SHORT_PROVIDER_NAMES) + " or a full name such as ort:CUDAExecutionProvider"
    )

    def parse(self, spec: str) -> str | None:
        prefix, sep, rest = spec.partition(":")
        if prefix != "ort" or not sep:
            return None
        if rest.lower() in SHORT_PROVIDER_NAMES:
            return f"ort:{rest.lower()}"
        if _PROVIDER.match(rest):
            short = short_name(rest)
            return f"ort:{short}" if short in SHORT_PROVIDER_NAMES else f"ort:{rest}"
        return None

    def provider_for(self, spec: str) -> str:
        rest = spec.partition(":")[2]
        return SHORT_PROVIDER_NAMES.get(rest, rest)

    def discover(self) -> list[str]:
        ort = _ort()
        specs = []
        for provider in ort.get_available_providers():
            if provider == "AzureExecutionProvider":  # a remote-endpoint provider, not local hardware
                continue
            short = short_name(provider)
            specs.append(f"ort:{short}" if short in SHORT_PROVIDER_NAMES else f"ort:{provider}")
        return specs

    def open(self, spec: str) -> Device:
        ort = _ort()
        provider = self.provider_for(spec)
        available = ort.get_available_providers()
        if provider not in available:
            raise DeviceUnavailable(
                spec,
                f"onnxruntime {ort.__version__} has no {provider}; available: {', '.join(available)}"
                + (" (install onnxruntime-gpu for CUDA/TensorRT)" if provider in _NVIDIA_PROVIDERS else ""),
            )
        return OrtDevice(spec, provider)


__all__ = ["OrtBackend", "OrtDevice", "OrtFallbackError", "SHORT_PROVIDER_NAMES", "matmul_model", "normalise_key_part"]
