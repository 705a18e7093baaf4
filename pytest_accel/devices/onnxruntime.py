"""The ONNX Runtime backend: ``ort:<execution provider>``, short names or full provider names.

A session on a non-CPU provider is created with CPU fallback disabled, so a model that the provider cannot run
whole fails loudly instead of being measured on the CPU.
"""

from __future__ import annotations

import os
import re
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
    normalise_key_part,
)
from pytest_accel.devices.ort_placement import (
    compute_on_cpu,
    graph_nodes,
    kernel_precision,
    list_nodes,
    profile_options,
    profiled_placement,
)
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


#: OrtValue device type for inputs and outputs that stay on the provider's device (I/O binding); providers not
#: listed exchange host arrays, which is all a host-memory provider needs
IO_DEVICE_TYPES = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda", "DmlExecutionProvider": "dml"}
_CUDA = "CUDAExecutionProvider"
_TENSORRT = "TensorrtExecutionProvider"


@dataclass(frozen=True)
class ShapeRange:
    """The smallest, the tuned-for and the largest shape of one model input (TensorRT builds its engine for it)."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


class OrtDevice(Device):
    """One execution provider. Sessions may leave shape bookkeeping on the CPU (as GPU providers do by design) but
    fail with the nodes' names when compute lands there, or when ONNX Runtime drops the provider altogether."""

    runtime = "onnxruntime"

    def __init__(
        self,
        spec: str,
        provider: str,
        provider_options: dict[str, str] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__(spec, OrtBackend.name)
        self.ort = _ort()
        self.provider = provider
        self.provider_options = dict(provider_options or {})
        if provider == _CUDA:
            self.provider_options.setdefault("use_tf32", "0")  # fp32 means IEEE fp32 unless TF32 is asked for
        self.cache_dir = cache_dir
        #: exchange device-resident inputs and outputs with sessions (None: wherever the provider has a device
        #: memory of its own, see IO_DEVICE_TYPES)
        self.io_binding: bool | None = None
        self._probe: Callable[[], None] | None = None

    @property
    def key_prefix(self) -> str:
        return f"ort-{short_name(self.provider)}"

    @property
    def is_host_cpu(self) -> bool:
        return self.provider in _HOST_PROVIDERS

    @property
    def device_id(self) -> int:
        return int(self.provider_options.get("device_id", 0))

    @property
    def io_device_type(self) -> str | None:
        """Where inputs and outputs live for model-only runs: an OrtValue device type, or None for host arrays."""
        if self.io_binding is False:
            return None
        return IO_DEVICE_TYPES.get(self.provider, "cpu" if self.io_binding else None)

    @property
    def fp32_math(self) -> str:
        if self.provider == _TENSORRT:
            # TensorRT builds fp32 layers with TF32 tactics unless the CUDA libraries are told not to
            return "ieee" if os.environ.get("NVIDIA_TF32_OVERRIDE") == "0" else "tf32"
        if self.provider == _CUDA and self.provider_options.get("use_tf32") == "1":
            return "ieee" if os.environ.get("NVIDIA_TF32_OVERRIDE") == "0" else "tf32"
        return "ieee"

    def set_fp32_math(self, allow_tf32: bool) -> None:
        if self.provider == _CUDA:
            self.provider_options["use_tf32"] = "1" if allow_tf32 else "0"

    def describe(self) -> DeviceInfo:
        runtime = {"onnxruntime": self.ort.__version__}
        extra = {"provider": self.provider, "fp32_math": self.fp32_math}
        if self.provider in _HOST_PROVIDERS:
            return host_cpu_info(self.backend_name, self.spec, runtime, extra)
        vendor, model, memory = ("", "", None)
        if self.provider in _NVIDIA_PROVIDERS:
            vendor, model, memory = _gpu_from_torch(self.device_id)
        return DeviceInfo(
            backend=self.backend_name,
            spec=self.spec,
            vendor=vendor,
            model=model or "unknown",
            memory_bytes=memory,
            runtime=runtime,
            extra=extra,
        )

    def session_options(self) -> Any:
        options = self.ort.SessionOptions()
        # Idle intra-op threads otherwise spin for a while after every run, taking cores from whatever is measured
        # next in the same process (seen here: a torch matmul 71% slower right after the detection suite on ORT).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def providers(self, shape_ranges: Mapping[str, ShapeRange] | None = None) -> list[Any]:
        """The provider list for a session: the provider under test, what its users put behind it, and the CPU
        provider last (for shape bookkeeping only, which :meth:`create_session` checks)."""
        if self.provider == _CPU:
            return [_CPU]
        options = dict(self.provider_options)
        if self.provider != _TENSORRT:
            return [(self.provider, options), _CPU]
        if self.cache_dir is not None:
            folder = self.cache_dir / "onnxruntime" / "tensorrt"
            folder.mkdir(parents=True, exist_ok=True)
            options.setdefault("trt_engine_cache_enable", "True")
            options.setdefault("trt_engine_cache_path", str(folder))
            options.setdefault("trt_timing_cache_enable", "True")
            options.setdefault("trt_timing_cache_path", str(folder))
        if shape_ranges:
            for key, pick in (("min", "min"), ("opt", "opt"), ("max", "max")):
                options[f"trt_profile_{key}_shapes"] = ",".join(
                    f"{name}:{'x'.join(str(d) for d in getattr(shape, pick))}" for name, shape in shape_ranges.items()
                )
        # TensorRT hands what it cannot build to the CUDA provider, as its users run it
        cuda = {"device_id": str(self.device_id)}
        return [(_TENSORRT, options), (_CUDA, cuda), _CPU]

    def create_session(
        self,
        model: str | os.PathLike[str] | bytes,
        options: Any | None = None,
        *,
        sample_feeds: dict[str, Any] | None = None,
        shape_ranges: Mapping[str, ShapeRange] | None = None,
    ) -> Any:
        """A session on this provider. For any provider but the CPU's, one profiled run on ``sample_feeds`` (give
        real-sized inputs for a model with symbolic dimensions; zeros with symbolic dimensions set to 1 otherwise)
        shows where each node ran: compute on the CPU raises :class:`OrtFallbackError` naming the nodes."""
        options = options or self.session_options()
        source = model if isinstance(model, bytes) else str(model)
        if self.provider == _CPU:
            return self.ort.InferenceSession(source, sess_options=options, providers=self.providers())
        profile_folder = profile_options(options)
        with profile_folder:
            session = self.ort.InferenceSession(source, sess_options=options, providers=self.providers(shape_ranges))
            options.enable_profiling = False  # the session has its copy; options the caller reuses stay unprofiled
            active = session.get_providers()
            if self.provider not in active:
                raise DeviceFailure(
                    f"ONNX Runtime {self.ort.__version__} dropped {self.provider} when creating the session (it runs "
                    f"on {', '.join(active)}): its libraries failed to load; see ONNX Runtime's warnings above"
                )
            feeds = sample_feeds if sample_feeds is not None else _zero_feeds(session)
            try:
                placement = profiled_placement(session, feeds)
            except Exception as error:  # onnxruntime raises its own Fail/InvalidArgument types
                raise DeviceFailure(f"{self.provider}: the first run of the model failed: {error}") from None
        fallen = compute_on_cpu(placement, graph_nodes(source))
        if fallen:
            raise OrtFallbackError(
                f"{self.provider} cannot run {len(fallen)} of {len(placement)} nodes, which fell back to the CPU: "
                f"{list_nodes(fallen)} (shape bookkeeping on the CPU is allowed; these are compute)"
            )
        return session

    def execution_precision(self, model: str | os.PathLike[str] | bytes, sample_feeds: dict[str, Any],
                            shape_ranges: Mapping[str, ShapeRange] | None = None) -> ExecutionPrecision:
        """What the model's compute really ran in on this provider: one profiled run of a fresh session on
        ``sample_feeds``, kernel by kernel, after ONNX Runtime's graph optimisation (a quantized model whose
        convolutions stay float kernels ran in float)."""
        options = self.session_options()
        source = model if isinstance(model, bytes) else str(model)
        with profile_options(options):
            session = self.ort.InferenceSession(source, sess_options=options, providers=self.providers(shape_ranges))
            return kernel_precision(profiled_placement(session, sample_feeds))

    def calibration_probe(self) -> Callable[[], None] | None:
        """A 256² fp32 matmul session, made once per device. TensorRT devices run it on the CUDA provider of the
        same GPU: one small engine build per probe would cost more than the probe measures."""
        if self._probe is not None:
            return self._probe
        try:
            model = matmul_model(_PROBE_SIZE, inputs=("a", "a"))
        except ImportError:
            return None
        import numpy as np

        if self.provider == _TENSORRT:
            probe_device = OrtDevice(self.spec, _CUDA, {"device_id": str(self.device_id)})
            session = probe_device.create_session(model)
        else:
            session = self.create_session(model)
        feeds = {"a": np.random.default_rng(0).standard_normal((_PROBE_SIZE, _PROBE_SIZE), dtype=np.float32)}

        def probe() -> None:
            session.run(None, feeds)

        self._probe = probe
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


def _gpu_from_torch(index: int) -> tuple[str, str, int | None]:
    """Name the GPU behind a CUDA/TensorRT provider through torch when it is installed; ORT cannot tell."""
    try:
        import torch
    except ImportError:
        return "", "", None
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        return "", "", None
    props = torch.cuda.get_device_properties(index)
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
        from pytest_accel.environment import cache_dir

        return OrtDevice(spec, provider, cache_dir=cache_dir())


__all__ = [
    "OrtBackend",
    "OrtDevice",
    "OrtFallbackError",
    "SHORT_PROVIDER_NAMES",
    "ShapeRange",
    "matmul_model",
    "normalise_key_part",
]
