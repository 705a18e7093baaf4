"""The detector in INT8: a static QDQ model made from the fp32 ONNX export with ONNX Runtime's quantizer, calibrated
on train-split images letterboxed as inference letterboxes them, with the Detect head's decode kept in float.

The decode (DFL, anchor and stride arithmetic, the final concatenation of boxes and class scores) has no learned
weights; quantized, its output would put box coordinates (0..imgsz) and class scores (0..1) under one scale, and
mAP falls to 0. It is found by name: ultralytics exports name every node after the module that made it
(``/model.22/cv2.0/cv2.0.0/conv/Conv``), and the head's own arithmetic sits directly in its module
(``/model.22/Concat_26``) or in its ``dfl`` sub-module, while its learned convolutions sit in the branch modules.

Where the quantize/dequantize (QDQ) pairs go depends on the runtime that compiles the model (:data:`QDQ_FORMS`).
ONNX Runtime's CPU provider fuses DequantizeLinear -> op -> QuantizeLinear groups into integer kernels
(QLinearConv, QLinearMul, ...), so it needs the pairs on every op's inputs and outputs; given pairs on the
convolutions' inputs only, it runs every convolution in float. OpenVINO takes the pairs on the inputs of compute
operations (the form its NNCF quantizer writes) and places the rest itself; given pairs everywhere, OpenVINO 2026.4
computed this detector's model differently from the QDQ semantics that ONNX Runtime follows (relative L2 error of
the head output 0.13 against 0.023, from one convolution + SiLU onward in the neck) and lost 3.2% mAP50-95.
Measured here, bundled detector, 64 calibration images: every-op form on ort:cpu mAP50-95 0.8336, 63 of 64
convolutions in int8; compute-inputs form on ov:CPU/f32 0.8354, 63 of 64; fp32 0.834.

Made once per fp32 model, image size, form, calibration settings and ONNX Runtime version, and cached; written to a
temporary file and renamed, so a killed run never leaves a partial model under the cached name.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

from pytest_accel.paths import write_atomically
from pytest_accel.workloads.cache import file_digest

#: bump when the recipe below changes what a cached model holds
RECIPE_VERSION = 1
QdqForm = Literal["every_op", "compute_inputs"]
#: "every_op": pairs around every op ONNX Runtime has an int8 kernel for; "compute_inputs": pairs on the inputs
#: (activations and weights) of convolutions and matmuls only
QDQ_FORMS: tuple[QdqForm, ...] = ("every_op", "compute_inputs")
_COMPUTE_OPS = ["Conv", "MatMul", "Gemm"]
#: the images a batch of calibration runs takes (the ranges do not depend on it; fewer runs are faster)
_CALIBRATION_BATCH = 8


@dataclass(frozen=True)
class CalibrationSettings:
    """How the INT8 model is calibrated: on ``images`` train-split images (a fixed, evenly spaced subset), with
    MinMax ranges. ``keep_in_float`` names op types left unquantized beyond the decode, to make "quantized" models
    whose compute runs in float. ``("Conv",)`` alone does not: ONNX Runtime's CPU provider quantizes the weights of
    a float convolution between quantized neighbours itself (56 of the detector's 64 convolutions then ran in int8);
    ``("Conv", "Sigmoid", "Mul")`` (the convolutions and their SiLU) does, on both runtimes.

    MinMax, measured on the bundled detector (64 images, 320 px, ort:cpu): mAP50-95 0.8336 against fp32's 0.834;
    Percentile (99.999) gave 0.8307 and took 20 s to calibrate instead of 7.
    """

    images: int = 64
    keep_in_float: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.images < 1:
            raise ValueError(f"CalibrationSettings.images={self.images} must be >= 1")

    @property
    def label(self) -> str:
        kept = "-float-" + "+".join(self.keep_in_float) if self.keep_in_float else ""
        return f"minmax{self.images}{kept}"


class HeadNotFound(ValueError):
    """The model's Detect head cannot be found by its node names (not an ultralytics export)."""


def decode_nodes(model: Any) -> list[str]:
    """Names of the nodes of the Detect head's decode in an ultralytics ONNX export (``model``: an ``onnx``
    ModelProto): the nodes directly in the module whose node makes the graph's output, and those of its ``dfl``
    sub-module. HeadNotFound when the names do not follow ultralytics' scheme."""
    graph = model.graph
    output = graph.output[0].name
    producer = next((node for node in graph.node if output in node.output), None)
    if producer is None or "/" not in producer.name.strip("/"):
        raise HeadNotFound(f"the node making output {output!r} is named {producer.name if producer else None!r}, "
                           "not after a module (/model.N/...): not an ultralytics export")
    head = producer.name.rsplit("/", 1)[0] + "/"
    decode = [
        node.name for node in graph.node
        if node.name.startswith(head) and ("/" not in node.name[len(head):] or node.name[len(head):].startswith("dfl/"))
    ]
    if not any(name.startswith(f"{head}dfl/") for name in decode):
        raise HeadNotFound(f"no DFL nodes ({head}dfl/...) beside the output node {producer.name!r}: not an "
                           "ultralytics Detect head")
    return decode


def calibration_subset(images: Sequence[Path], count: int) -> list[Path]:
    """``count`` images evenly spaced over the sorted list (all of them if there are fewer): fixed for a data set."""
    ordered = sorted(images)
    if count >= len(ordered):
        return ordered
    step = len(ordered) / count
    return [ordered[int(i * step)] for i in range(count)]


def int8_model_path(fp32_model: Path, imgsz: int, calibration_images: Sequence[Path], cache_dir: Path,
                    settings: CalibrationSettings, form: QdqForm) -> Path:
    """The cached INT8 QDQ model in ``form`` made from ``fp32_model``, calibrated on ``calibration_images`` (the
    subset, already chosen); made now if it is not cached. HeadNotFound for a model whose decode cannot be found."""
    import onnxruntime

    images_digest = hashlib.sha256()
    for image in calibration_images:
        images_digest.update(file_digest(image).encode())
    folder = cache_dir / "detection" / "int8" / (
        f"{file_digest(fp32_model)}-{imgsz}-{form.replace('_', '-')}-{settings.label}"
        f"-d{images_digest.hexdigest()[:10]}-ort{onnxruntime.__version__}-r{RECIPE_VERSION}"
    )
    target = folder / f"{fp32_model.stem}-int8.onnx"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(target, lambda path: quantize(fp32_model, path, imgsz, calibration_images, settings, form))
    return target


def quantize(fp32_model: Path, output: Path, imgsz: int, calibration_images: Sequence[Path],
             settings: CalibrationSettings, form: QdqForm) -> None:
    """Write the INT8 QDQ model (u8 activations, s8 per-channel weights) of ``fp32_model`` in ``form`` to
    ``output``."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(fp32_model))
    keep = set(decode_nodes(model))
    keep.update(node.name for node in model.graph.node if node.op_type in settings.keep_in_float)
    initializers = {initializer.name for initializer in model.graph.initializer}
    [input_name] = [value.name for value in model.graph.input if value.name not in initializers][:1]
    placement: dict[str, Any] = {}  # every_op: the quantizer's default, every op it knows
    if form == "compute_inputs":
        placement = {"op_types_to_quantize": _COMPUTE_OPS,
                     "extra_options": {"OpTypesToExcludeOutputQuantization": _COMPUTE_OPS}}
    with _without_preprocessing_advice():
        quantize_static(
            model, str(output), LetterboxedImages(input_name, calibration_images, imgsz),
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            per_channel=True, nodes_to_exclude=sorted(keep), calibrate_method=CalibrationMethod.MinMax, **placement,
        )


class _QuantizerAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname or record.levelno >= logging.ERROR


@contextlib.contextmanager
def _without_preprocessing_advice() -> Iterator[None]:
    """ONNX Runtime's quantizer advises its shape-inference pre-processing on the root logger at every call (the
    export is already shape-inferred and simplified). Its warnings are dropped; a root logger without handlers gets
    a null one meanwhile, else ``logging.warning`` would install a stderr handler for the rest of the process."""
    root = logging.getLogger()
    quiet, placeholder = _QuantizerAdvice(), logging.NullHandler()
    added = not root.handlers
    if added:
        root.addHandler(placeholder)
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)
        if added:
            root.removeHandler(placeholder)


class LetterboxedImages:
    """ONNX Runtime's calibration data reader over image files, pre-processed exactly as inference is."""

    def __init__(self, input_name: str, images: Sequence[Path], imgsz: int) -> None:
        self.input_name = input_name
        self.images = list(images)
        self.imgsz = imgsz
        self._batches: Iterator[dict[str, Any]] | None = None

    def _all_batches(self) -> Iterator[dict[str, Any]]:
        from pytest_accel.workloads.detection.images import load_bgr, preprocess

        for start in range(0, len(self.images), _CALIBRATION_BATCH):
            chunk = self.images[start : start + _CALIBRATION_BATCH]
            yield {self.input_name: preprocess([load_bgr(path) for path in chunk], self.imgsz).tensor}

    def get_next(self) -> dict[str, Any] | None:
        if self._batches is None:
            self._batches = self._all_batches()
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = None
