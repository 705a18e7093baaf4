"""Which detector runs: the bundled one, or any ultralytics weights file or exported ONNX model; ONNX export."""

from __future__ import annotations

import functools
import shutil
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from pytest_accel.errors import WorkloadUnsupported
from pytest_accel.paths import readable_file
from pytest_accel.workloads.cache import file_digest
from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics

if TYPE_CHECKING:
    from pytest_accel.devices import Device
    from pytest_accel.workloads.detection.quantize import CalibrationSettings, QdqForm

BUNDLED_WEIGHTS = Path(__file__).with_name("assets") / "shapes-yolov8n.pt"
MODEL_SUFFIXES = (".pt", ".onnx")
MODEL_KIND = "an ultralytics weights file or ONNX model"
#: the suites' opt-in to full unpickling, named in refusals unless a caller names its own (the console script's)
UNSAFE_LOAD_OPT_IN = "--yolo-allow-unsafe-load"


@dataclass(frozen=True)
class DetectorSource:
    """A model to run: ultralytics weights (for PyTorch devices, and exported for ONNX Runtime) or an ONNX file;
    its INT8 quantization is calibrated on the train split of ``calibration_data`` (a data set YAML)."""

    path: Path
    imgsz: int
    cache_dir: Path
    calibration_data: Path | None = None
    #: None: the default :class:`~pytest_accel.workloads.detection.quantize.CalibrationSettings`
    int8_calibration: CalibrationSettings | None = None
    #: weights are unpickled fully (running any code they hold) only when the user said they trust the file
    allow_unsafe_load: bool = False

    @property
    def is_onnx(self) -> bool:
        return self.path.suffix == ".onnx"

    def golden_device(self) -> Device:
        """Where the fp32 golden run and the reference run: the host CPU, through PyTorch for weights and through
        ONNX Runtime's CPU provider for an ONNX model; opened by the resolver every device goes through, as IEEE
        fp32."""
        from pytest_accel.devices import Backend, BackendRegistry
        from pytest_accel.devices.resolver import DeviceSettings, resolve_devices

        backend: Backend
        if self.is_onnx:
            from pytest_accel.devices.onnxruntime import OrtBackend

            backend, spec = OrtBackend(), "ort:cpu"
        else:
            from pytest_accel.devices.torch import TorchBackend

            backend, spec = TorchBackend(), "cpu"
        registry = BackendRegistry()
        registry.register(backend)
        [device] = resolve_devices(registry, (spec,), settings=DeviceSettings())
        return device

    @cached_property
    def digest(self) -> str:
        """Content hash of the model file, read once (it names the export cache and the reference)."""
        return file_digest(self.path)

    def torch_module(self) -> Any:
        """A fresh fused fp32 ``nn.Module`` on the CPU, in eval mode."""
        if self.is_onnx:
            raise WorkloadUnsupported(f"{self.path.name} is an ONNX model; PyTorch devices need ultralytics weights")
        import_ultralytics()
        from ultralytics import YOLO

        with weights_loading(self.path, safe=not self.allow_unsafe_load):
            module = YOLO(str(self.path)).model.float().fuse().eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        return module

    def onnx_path(self) -> Path:
        """The ONNX model: the file itself, or an export (dynamic batch) cached by weights digest and image size."""
        if self.is_onnx:
            return self.path
        import_ultralytics()
        from ultralytics import YOLO, __version__

        folder = self.cache_dir / "detection" / "onnx" / f"{self.digest}-{self.imgsz}-u{__version__}"
        exported = folder / f"{self.path.stem}.onnx"
        if exported.is_file():
            return exported
        folder.mkdir(parents=True, exist_ok=True)
        work = folder / f".export-{self.path.stem}.pt"  # ultralytics writes the export beside the weights
        shutil.copyfile(self.path, work)
        try:
            with warnings.catch_warnings():  # torch's notice about its legacy exporter, which ultralytics chose
                warnings.simplefilter("ignore", DeprecationWarning)
                with weights_loading(self.path, safe=not self.allow_unsafe_load):
                    model = YOLO(str(work))
                written = Path(model.export(format="onnx", imgsz=self.imgsz, dynamic=True, simplify=True,
                                            verbose=False))
            written.replace(exported)
        finally:
            work.unlink(missing_ok=True)
        return exported

    def int8_onnx_path(self, form: QdqForm) -> Path:
        """The INT8 QDQ model in ``form`` made from :meth:`onnx_path`, cached; WorkloadUnsupported where it cannot be
        made (no train split to calibrate on, no Detect head found by name). Looked up once per process: the cache
        key digests the fp32 model and the calibration images (30 ms here), which a first-inference timing of a
        model already made should not include."""
        return _int8_onnx_path(self, form)


@functools.lru_cache(maxsize=16)
def _int8_onnx_path(source: DetectorSource, form: QdqForm) -> Path:
    from pytest_accel.workloads.detection.quantize import (
        CalibrationSettings,
        HeadNotFound,
        calibration_subset,
        int8_model_path,
    )
    from pytest_accel.workloads.detection.splits import split_files

    if source.calibration_data is None:
        raise WorkloadUnsupported("int8 needs a data set whose train split calibrates the quantized model")
    try:
        _, train_images, _ = split_files(source.calibration_data, "train")
    except ValueError as error:
        raise WorkloadUnsupported(f"int8 calibrates on the train split: {error}") from None
    settings = source.int8_calibration or CalibrationSettings()
    try:
        return int8_model_path(source.onnx_path(), source.imgsz, calibration_subset(train_images, settings.images),
                               source.cache_dir, settings, form)
    except HeadNotFound as error:
        raise WorkloadUnsupported(f"{source.path.name}: int8 keeps the Detect head's decode in float, which it "
                                  f"cannot find: {error}") from None


def check_model_path(path: Path) -> Path:
    """A readable .pt or .onnx file, or ValueError naming the problem."""
    return readable_file(path, MODEL_SUFFIXES, MODEL_KIND)


def check_model_loads(path: Path, allow_unsafe: bool, opt_in: str = UNSAFE_LOAD_OPT_IN,
                      imgsz: int | None = None) -> None:
    """Load the model file once, before anything else reads it, so that a bad one is one error naming it.

    Weights are unpickled with ultralytics' safe loading (``torch.load(weights_only=True)`` against its allow-list
    of model classes, the ``ULTRALYTICS_SAFE_LOAD`` mode): a file that loads so references nothing else. A file that
    needs full unpickling, which runs any code the file holds, is refused unless ``allow_unsafe`` (the user trusts it,
    with the option ``opt_in``, named in the refusal). An ONNX model must pass ONNX's checker and take one float
    image batch (of ``imgsz`` where its size is fixed). ValueError says why a file is refused.
    """
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not {MODEL_KIND}")
    if path.suffix == ".onnx":
        _check_onnx(path, imgsz)
        return
    import_ultralytics()
    import torch
    from ultralytics.nn.tasks import torch_safe_load

    safe = not allow_unsafe
    if safe:
        _require_safe_loading(path, opt_in)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            checkpoint, _ = torch_safe_load(str(path), safe_only=safe)
    except Exception as error:  # noqa: BLE001 - torch and ultralytics raise many types for one cause
        text = _first_line(error)
        if safe and "Unsupported operand" in str(error.__cause__):  # bytes torch's unpickler cannot read at all
            text = "not a pickle torch can read"
        elif safe and "outside the supported" in text:
            raise ValueError(_refusal(path, opt_in)) from None
        raise ValueError(f"{path}: not a loadable ultralytics checkpoint (truncated or damaged? {text})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("ema") or checkpoint.get("model"),
                                                          torch.nn.Module):
        raise ValueError(f"{path}: not an ultralytics checkpoint (no model in it)")


def _require_safe_loading(path: Path, opt_in: str) -> None:
    """ultralytics quietly falls back to full unpickling where torch cannot load weights only (before 2.6)."""
    import torch

    if not hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):
        raise ValueError(f"{path}: torch {torch.__version__} cannot load weights safely (2.6 or later can); pass "
                         f"{opt_in} only if you trust the file")


#: ultralytics' safe-loading switch is one flag for the whole process: loads take turns setting it
_WEIGHTS_LOADING = threading.Lock()


@contextmanager
def weights_loading(path: Path, safe: bool) -> Iterator[None]:
    """Every ``YOLO(weights)`` load inside runs with ultralytics' safe loading on (``safe``) or off.

    ``YOLO(path)`` has no per-call switch: it reads the module flag that ``ULTRALYTICS_SAFE_LOAD`` sets at import
    (off by default, which unpickles fully), so the flag is set for the duration of the load. A load after
    :func:`check_model_loads` is then as safe as the check, even if the file changed in between.
    """
    from ultralytics.nn import tasks

    if safe:
        _require_safe_loading(path, UNSAFE_LOAD_OPT_IN)
        if not hasattr(tasks, "SAFE_LOAD"):
            raise ValueError(f"{path}: this ultralytics has no safe-loading switch (SAFE_LOAD) pytest-accel can "
                             f"set; pass {UNSAFE_LOAD_OPT_IN} only if you trust the file")
    with _WEIGHTS_LOADING:
        saved = getattr(tasks, "SAFE_LOAD", False)
        tasks.SAFE_LOAD = safe
        try:
            yield
        except TypeError as error:
            if safe and "outside the supported" in str(error):
                raise ValueError(_refusal(path, UNSAFE_LOAD_OPT_IN)) from None
            raise
        finally:
            tasks.SAFE_LOAD = saved


def _refusal(path: Path, opt_in: str) -> str:
    return (f"{path}: refused: it references types outside ultralytics' model classes, and loading it would run "
            f"whatever code it holds; pass {opt_in} only if you trust the file")


def _check_onnx(path: Path, imgsz: int | None) -> None:
    try:
        import onnx
    except ImportError:
        return  # the ONNX Runtime devices report the missing package themselves
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(str(path))  # by path: external data is found beside the file
    except Exception as error:  # noqa: BLE001 - protobuf's decode errors and the checker's have no common type
        raise ValueError(f"{path}: not a loadable ONNX model ({_first_line(error)})") from None
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if not inputs or not model.graph.output:
        raise ValueError(f"{path}: not a detector: the ONNX graph has {len(inputs)} input(s) and "
                         f"{len(model.graph.output)} output(s)")
    tensor = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in tensor.shape.dim]
    three_channels = len(dims) == 4 and (dims[1] == 3 or isinstance(dims[1], str))
    if tensor.elem_type != onnx.TensorProto.FLOAT or not three_channels:
        kind = {number: name.lower() for name, number in onnx.TensorProto.DataType.items()}.get(
            tensor.elem_type, f"type {tensor.elem_type}")
        raise ValueError(f"{path}: its input {inputs[0].name!r} is {kind} {dims}; a detector takes a float image "
                         "batch [batch, 3, height, width]")
    fixed = [d for d in dims[2:] if isinstance(d, int)]
    if imgsz is not None and any(d != imgsz for d in fixed):
        raise ValueError(f"{path}: its input {inputs[0].name!r} is fixed at {dims[2]}x{dims[3]} pixels; run it with "
                         f"that image size (not {imgsz}) or export it with a dynamic size")


def _first_line(error: BaseException) -> str:
    text = str(error).replace("ERROR ❌️ ", "").strip()
    return (text.splitlines() or [type(error).__name__])[0][:200]
