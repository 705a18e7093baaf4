"""Run the detector's forward pass on a device: PyTorch (fp32/fp16/bf16), ONNX Runtime, a device's own ONNX
compiler (OpenVINO, a vendor SDK): the fp32 export, or its INT8 quantization (int8), or a device that compiles the
PyTorch module ahead of time (LiteRT, ExecuTorch).

A runner splits one inference into ``to_device`` (host batch in), ``forward`` (device-resident output, not
synchronised) and ``to_host`` (float32 numpy out), so model-only and end-to-end timings cut at the same places on
every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pytest_accel.devices import Device, ExecutionPrecision, OnnxModelRuntime, OrtRuntime, TorchRuntime
from pytest_accel.devices.compiled import CompiledModel, Delegation, TorchModelCompiler
from pytest_accel.devices.onnxruntime import OrtDevice, ShapeRange
from pytest_accel.devices.ort_placement import graph_input_names
from pytest_accel.errors import WorkloadUnsupported
from pytest_accel.workloads.detection.model import DetectorSource
from pytest_accel.workloads.detection.quantize import QdqForm
from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics

TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
#: what ONNX devices run: the fp32 export, and its INT8 QDQ quantization
ONNX_DTYPES = ("fp32", "int8")


def onnx_model_path(source: DetectorSource, dtype: str, spec: str, runtime: str, int8_form: QdqForm) -> Path:
    """The ONNX model an ONNX device runs in ``dtype`` (int8: quantized in the form its runtime compiles to integer
    kernels); WorkloadUnsupported for a dtype only PyTorch devices run."""
    if dtype not in ONNX_DTYPES:
        raise WorkloadUnsupported(f"{spec} runs the fp32 ONNX export and its int8 quantization through {runtime}; "
                                  f"{dtype} is a PyTorch-device dtype here")
    return source.int8_onnx_path(int8_form) if dtype == "int8" else source.onnx_path()


class DetectorRunner(Protocol):
    device: Device
    dtype: str

    def to_device(self, batch: np.ndarray) -> Any: ...

    def forward(self, prepared: Any) -> Any: ...

    def to_host(self, output: Any) -> np.ndarray: ...

    def output_for_nms(self, output: Any) -> Any: ...


class TorchRunner:
    def __init__(self, device: Device, source: DetectorSource, dtype: str) -> None:
        import torch

        if not isinstance(device, TorchRuntime):
            raise WorkloadUnsupported(f"{device.spec} does not run PyTorch modules")
        self.torch = torch
        self.device: Device = device
        self.torch_device = device.torch_device
        self.dtype = dtype
        self.torch_dtype = getattr(torch, TORCH_DTYPES[dtype])
        module = source.torch_module().to(self.torch_device, self.torch_dtype)
        if dtype != "fp32":
            _decode_in_fp32(module)
        self.module = device.prepare_module(module)

    def to_device(self, batch: np.ndarray) -> Any:
        return self.torch.from_numpy(batch).to(self.torch_device, self.torch_dtype)

    def forward(self, prepared: Any) -> Any:
        # a device may refuse inference tensors (torch_xla's functionalised tensors need version counters)
        no_grad = self.torch.inference_mode if getattr(self.device, "inference_mode", True) else self.torch.no_grad
        with no_grad():
            output = self.module(prepared)
        return output[0] if isinstance(output, (tuple, list)) else output

    def output_for_nms(self, output: Any) -> Any:
        """On the device, except where every new data-dependent shape (NMS keeps a different number of boxes each
        call) is a compilation: there NMS runs on the host, as such devices are deployed."""
        return output.float() if getattr(self.device, "data_dependent_shapes", True) else output.float().cpu()

    def to_host(self, output: Any) -> np.ndarray:
        return output.float().cpu().numpy()


@dataclass
class BoundBatch:
    """A batch already on the provider's device, bound with its output (ONNX Runtime I/O binding)."""

    binding: Any
    value: Any  # the input OrtValue, kept alive as long as the binding uses it


class OrtRunner:
    """The ONNX model (fp32 or int8) in a session of the device's provider. For providers with a memory of their own,
    model-only runs bind device-resident inputs and outputs (so ``ort:cuda`` times what ``cuda`` times, no host
    copies); ``to_host`` and the end-to-end path make the copies."""

    def __init__(self, device: Device, source: DetectorSource, dtype: str, max_batch: int = 1) -> None:
        if not isinstance(device, OrtRuntime):
            raise WorkloadUnsupported(f"{device.spec} does not run ONNX Runtime sessions")
        import onnxruntime

        self.ort = onnxruntime
        self.device: Device = device
        self.dtype = dtype
        self.model_path = onnx_model_path(source, dtype, device.spec, "ONNX Runtime", "every_op")
        self.imgsz = source.imgsz
        [self.input_name] = graph_input_names(str(self.model_path))[:1]
        self.sample = np.zeros((1, 3, source.imgsz, source.imgsz), dtype=np.float32)
        self.shapes = None
        if isinstance(device, OrtDevice):
            largest = (max(max_batch, 1), *self.sample.shape[1:])
            self.shapes = {self.input_name: ShapeRange(self.sample.shape, self.sample.shape, largest)}
        self.session = device.create_session(
            self.model_path, sample_feeds={self.input_name: self.sample}, shape_ranges=self.shapes
        )
        self._execution: ExecutionPrecision | None = None
        self.output_name = self.session.get_outputs()[0].name
        self.io_device = device.io_device_type if isinstance(device, OrtDevice) else None
        self.device_id = device.device_id if isinstance(device, OrtDevice) else 0

    def to_device(self, batch: np.ndarray) -> Any:
        array = np.ascontiguousarray(batch, dtype=np.float32)
        if self.io_device is None:
            return {self.input_name: array}
        value = self.ort.OrtValue.ortvalue_from_numpy(array, self.io_device, self.device_id)
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, value)
        binding.bind_output(self.output_name, self.io_device, self.device_id)
        return BoundBatch(binding, value)

    def forward(self, prepared: Any) -> Any:
        if isinstance(prepared, BoundBatch):
            self.session.run_with_iobinding(prepared.binding)
            return prepared.binding.get_outputs()[0]
        return self.session.run(None, prepared)[0]

    def output_for_nms(self, output: Any) -> Any:
        import torch

        return torch.from_numpy(self.to_host(output))

    def to_host(self, output: Any) -> np.ndarray:
        if isinstance(output, self.ort.OrtValue):
            output = output.numpy()
        return np.asarray(output, dtype=np.float32)

    def execution_precision(self) -> ExecutionPrecision | None:
        """What the kernels of a profiled run computed in (read once; None for devices of other backends)."""
        if self._execution is None and isinstance(self.device, OrtDevice):
            self._execution = self.device.execution_precision(self.model_path, {self.input_name: self.sample},
                                                              self.shapes)
        return self._execution


class CompiledOnnxRunner:
    """The ONNX model (fp32 or int8) compiled by the device's own SDK (:class:`OnnxModelRuntime`), run on host
    arrays. Such SDKs may lower its precision (OpenVINO runs it in bf16 on CPUs that have it) or keep a quantized
    model's operations in float: :meth:`execution_precision` says what really ran."""

    def __init__(self, device: Device, source: DetectorSource, dtype: str, max_batch: int = 1) -> None:
        if not isinstance(device, OnnxModelRuntime):
            raise WorkloadUnsupported(f"{device.spec} does not compile ONNX models")
        self.device: Device = device
        self.dtype = dtype
        # the form OpenVINO's own quantizer (NNCF) writes: a compiler places the rest of the quantization itself
        model_path = onnx_model_path(source, dtype, device.spec, f"its {device.runtime or 'ONNX'} compiler",
                                     "compute_inputs")
        [self.input_name] = graph_input_names(str(model_path))[:1]
        sample = np.zeros((1, 3, source.imgsz, source.imgsz), dtype=np.float32)
        self.compiled = device.compile_onnx(model_path, sample_feeds={self.input_name: sample}, max_batch=max_batch)

    def to_device(self, batch: np.ndarray) -> Any:
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    def forward(self, prepared: Any) -> Any:
        return self.compiled.run(prepared)[0]

    def output_for_nms(self, output: Any) -> Any:
        import torch

        return torch.from_numpy(self.to_host(output))

    def to_host(self, output: Any) -> np.ndarray:
        return np.asarray(output, dtype=np.float32)

    def execution_precision(self) -> ExecutionPrecision | None:
        return self.compiled.execution_precision()


class CompiledTorchRunner:
    """The fp32 PyTorch detector compiled ahead of time by the device's SDK (:class:`TorchModelCompiler`), its first
    output (the one the ONNX export has) run on host arrays. A model compiled for a fixed batch is given larger
    batches in pieces of that size (for accuracy and parity); the throughput test skips batches it was not compiled
    for (see :attr:`static_batch`)."""

    def __init__(self, device: Device, source: DetectorSource, dtype: str, max_batch: int = 1) -> None:
        if not isinstance(device, TorchModelCompiler):
            raise WorkloadUnsupported(f"{device.spec} does not compile PyTorch modules")
        if dtype != "fp32":
            raise WorkloadUnsupported(f"{device.spec} compiles the fp32 PyTorch detector (its SDK picks the "
                                      f"precision it runs in, read back as the execution precision); {dtype} is "
                                      "not one of its dtypes")
        import torch

        self.device: Device = device
        self.dtype = dtype

        class FirstOutput(torch.nn.Module):
            def __init__(self, detector: Any) -> None:
                super().__init__()
                self.detector = detector

            def forward(self, images: Any) -> Any:
                output = self.detector(images)
                return output[0] if isinstance(output, (tuple, list)) else output

        example = (torch.zeros((1, 3, source.imgsz, source.imgsz), dtype=torch.float32),)
        self.compiled: CompiledModel = device.compile_torch(
            FirstOutput(source.torch_module()).eval(), example, cache_key=f"{source.digest}-{source.imgsz}",
            cache_dir=source.cache_dir / "detection" / "compiled", max_batch=max_batch)

    @property
    def static_batch(self) -> int | None:
        return self.compiled.static_batch

    def to_device(self, batch: np.ndarray) -> Any:
        return np.ascontiguousarray(batch, dtype=np.float32)

    def forward(self, prepared: Any) -> Any:
        step = self.compiled.static_batch
        if step is None or len(prepared) == step:
            return self.compiled.run([prepared])[0]
        if len(prepared) % step:
            raise WorkloadUnsupported(f"{self.device.spec}'s model was compiled for batch {step}; a batch of "
                                      f"{len(prepared)} does not split into it")
        return np.concatenate([self.compiled.run([prepared[i:i + step]])[0] for i in range(0, len(prepared), step)])

    def output_for_nms(self, output: Any) -> Any:
        import torch

        return torch.from_numpy(self.to_host(output))

    def to_host(self, output: Any) -> np.ndarray:
        return np.asarray(output, dtype=np.float32)

    def execution_precision(self) -> ExecutionPrecision | None:
        return self.compiled.execution_precision()

    def delegation(self) -> Delegation | None:
        return self.compiled.delegation()


def _decode_in_fp32(module: Any) -> None:
    """Keep the Detect head's box decode (DFL, anchors, strides: no learned weights) in fp32.

    Every learned layer still runs in the reduced dtype. In bf16, values from 256 to 512 are 2 px apart, so a decode
    in bf16 alone moves a 20 px box below IoU 0.9 at 320 px input; deployments keep this arithmetic in fp32.
    """
    detect = module.model[-1]
    if not (hasattr(detect, "_inference") and hasattr(detect, "dfl")):
        return
    detect.dfl.float()
    reduced_precision_inference = detect._inference

    def fp32_inference(heads: dict[str, Any]) -> Any:
        if not isinstance(heads, dict):  # ultralytics 8.3 passed a list; pyproject asks for 8.4
            raise TypeError(f"ultralytics {import_ultralytics().__version__}: Detect._inference takes a "
                            f"{type(heads).__name__}, pytest-accel needs ultralytics>=8.4 (a dict of head outputs)")
        return reduced_precision_inference(
            {k: [t.float() for t in v] if isinstance(v, list) else v.float() for k, v in heads.items()}
        )

    detect._inference = fp32_inference


def make_runner(device: Device, source: DetectorSource, dtype: str, max_batch: int = 1) -> DetectorRunner:
    """The runner for this device's runtime; WorkloadUnsupported (a skip) where the combination cannot run.
    ``max_batch`` is the largest batch it will be given (engines built ahead of time are built for it)."""
    if dtype not in (*TORCH_DTYPES, *ONNX_DTYPES):
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(dict.fromkeys((*TORCH_DTYPES, *ONNX_DTYPES)))}")
    if isinstance(device, TorchRuntime):
        if dtype not in TORCH_DTYPES:
            raise WorkloadUnsupported(f"{device.spec} runs PyTorch modules in {', '.join(TORCH_DTYPES)}; {dtype} is "
                                      "a quantized ONNX model, run on ONNX Runtime and OpenVINO devices (ort:..., "
                                      "ov:...)")
        if dtype not in device.supported_dtypes:
            supported = ", ".join(device.supported_dtypes)
            raise WorkloadUnsupported(f"{device.spec} does not support {dtype} (supports {supported})")
        return TorchRunner(device, source, dtype)
    if isinstance(device, OrtRuntime):
        return OrtRunner(device, source, dtype, max_batch)
    if isinstance(device, OnnxModelRuntime):
        return CompiledOnnxRunner(device, source, dtype, max_batch)
    if isinstance(device, TorchModelCompiler):
        return CompiledTorchRunner(device, source, dtype, max_batch)
    raise WorkloadUnsupported(f"no detection runner for runtime {device.runtime!r} of {device.spec}")
