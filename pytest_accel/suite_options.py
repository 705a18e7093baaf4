"""Options of the bundled conformance suites (detection, gesture): names, registration and validation.

The suites' conftest registers them with :func:`add_suite_options` and reads them once with
:func:`read_detection_options` / :func:`read_gesture_options`; tests get the frozen dataclasses through fixtures.
Workloads never see options, only the plain values taken from these objects.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_accel.errors import WorkloadUnsupported
from pytest_accel.paths import readable_file

if TYPE_CHECKING:
    from pytest_accel.devices import Device

OPT_YOLO_MODEL = "--yolo-model"
OPT_YOLO_DATA = "--yolo-data"
OPT_YOLO_IMGSZ = "--yolo-imgsz"
OPT_YOLO_BATCH_SIZES = "--yolo-batch-sizes"
OPT_YOLO_DTYPES = "--yolo-dtypes"
DEFAULT_IMGSZ = 320
OPT_YOLO_ALLOW_UNSAFE = "--yolo-allow-unsafe-load"
DETECTION_DTYPES = ("fp32", "fp16", "bf16", "int8")
#: int8 is asked for: its first run on a device quantizes the model (calibration, some seconds)
DEFAULT_DETECTION_DTYPES = ("fp32", "fp16", "bf16")
OPT_GESTURE_DATA = "--gesture-data"
OPT_GESTURE_IMAGES = "--gesture-images"
OPT_GESTURE_LANDMARKER = "--gesture-landmarker"
OPT_GESTURE_DTYPES = "--gesture-dtypes"
GESTURE_DTYPES = ("fp32", "bf16", "fp16")
DEFAULT_GESTURE_DTYPES = ("fp32", "bf16")
#: throughput batch sizes when --yolo-batch-sizes is not given
HOST_CPU_BATCH_SIZES = (1, 2, 4)
ACCELERATOR_BATCH_SIZES = (1, 8, 32)
#: the largest throughput batch: 1024 images of 320 px already take 1.2 GB of input
MAX_BATCH_SIZE = 1024


def add_suite_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("accel-suites", "pytest-accel suites")
    group.addoption(
        OPT_YOLO_MODEL, default=None, metavar="PATH",
        help="detector to run: an ultralytics weights file (.pt) or an exported ONNX model (.onnx). "
        "Default: the bundled YOLOv8n trained on the generated shapes data set. Weights are loaded with "
        f"ultralytics' safe loading (no code in the file runs); see {OPT_YOLO_ALLOW_UNSAFE}.",
    )
    group.addoption(
        OPT_YOLO_ALLOW_UNSAFE, action="store_true", default=False,
        help=f"load {OPT_YOLO_MODEL} weights that safe loading refuses, with full unpickling: the file can then run "
        "any code on this machine. Only for files you trust. Default: off.",
    )
    group.addoption(
        OPT_YOLO_DATA, default=None, metavar="YAML",
        help="ultralytics data set YAML whose val split is scored. Default: the generated shapes data set "
        "(made on first use in the cache, $PYTEST_ACCEL_CACHE or ~/.cache/pytest-accel).",
    )
    group.addoption(OPT_YOLO_IMGSZ, default=str(DEFAULT_IMGSZ), metavar="N",
                    help=f"inference image size. Default: {DEFAULT_IMGSZ}.")
    group.addoption(
        OPT_YOLO_BATCH_SIZES, default=None, metavar="LIST",
        help=f"comma-separated batch sizes for throughput (at least one, each once, 1 to {MAX_BATCH_SIZE}). Default: "
        f"{_join(HOST_CPU_BATCH_SIZES)} on CPUs, {_join(ACCELERATOR_BATCH_SIZES)} on accelerators.",
    )
    group.addoption(
        OPT_YOLO_DTYPES, default=None, metavar="LIST",
        help="comma-separated dtypes: fp32, fp16, bf16 (PyTorch devices) and int8 (ONNX Runtime and OpenVINO devices: "
        "a static INT8 quantization of the fp32 export, calibrated on train-split images, made once and cached); "
        "ONNX devices run fp32 and int8. Default: " + ",".join(DEFAULT_DETECTION_DTYPES) + ", less what a device only "
        "emulates (fp16 on a CPU without AVX512-FP16 or AMX-FP16: its tests skip saying so).",
    )
    group.addoption(
        OPT_GESTURE_DATA, default=None, metavar="CSV",
        help="landmark CSV (label + 42 x,y or 63 x,y,z values per row) to train the gesture classifier on, split "
        "75/25 with a fixed seed. Default: generated landmarks.",
    )
    group.addoption(
        OPT_GESTURE_IMAGES, default=None, metavar="DIR",
        help=f"image folder (one sub-folder per label) to extract landmarks from with MediaPipe; needs "
        f"{OPT_GESTURE_LANDMARKER}. Default: none.",
    )
    group.addoption(
        OPT_GESTURE_LANDMARKER, default=None, metavar="TASK",
        help="MediaPipe hand_landmarker.task model file for --gesture-images. Default: none.",
    )
    group.addoption(
        OPT_GESTURE_DTYPES, default=None, metavar="LIST",
        help="comma-separated training precisions: fp32, and bf16/fp16 autocast where the device supports them. "
        "Default: " + ",".join(DEFAULT_GESTURE_DTYPES) + ", less what a device only emulates.",
    )


def _join(values: tuple[int, ...]) -> str:
    return ",".join(map(str, values))


def _given(config: pytest.Config, option: str) -> str | None:
    """The option's text, None where it was not given; an empty value (``--yolo-model=$UNSET``) is a usage error,
    not the default it would silently fall back to."""
    text = config.getoption(option)
    if text is not None and not str(text).strip():
        raise pytest.UsageError(f"{option}={text!r}: empty; give a value, or leave the option out for its default")
    return None if text is None else str(text)


def _file_option(option: str, text: str, suffixes: tuple[str, ...], kind: str) -> Path:
    try:
        return readable_file(text, suffixes, kind)
    except ValueError as error:
        raise pytest.UsageError(f"{option}={error}") from None


def _dtypes_or_default(config: pytest.Config, option: str, allowed: tuple[str, ...],
                       default: tuple[str, ...]) -> tuple[str, ...]:
    text = config.getoption(option)
    return default if text is None else _dtypes(option, text, allowed)


def skip_emulated_by_default(device: Device, dtype: str, dtypes_given: bool, option: str) -> None:
    """A default dtype that ``device`` only emulates skips with the evidence (WorkloadUnsupported); one the user
    listed runs."""
    why = device.emulated_dtypes.get(dtype)
    if why is not None and not dtypes_given:
        raise WorkloadUnsupported(f"{dtype} on {device.spec} is emulated ({why}): not run by default; "
                                  f"{option}={dtype} runs it")


def _dtypes(option: str, text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    dtypes = tuple(part.strip() for part in text.split(",") if part.strip())
    if not dtypes or any(d not in allowed for d in dtypes):
        raise pytest.UsageError(f"{option}={text!r}: allowed: {', '.join(allowed)}")
    _refuse_repeats(option, text, dtypes)
    return dtypes


def _refuse_repeats(option: str, text: str, values: tuple[object, ...]) -> None:
    """A value given twice would run its tests twice, under renamed baselines (``fp32_0``, ``fp32_1``)."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise pytest.UsageError(f"{option}={text!r}: {', '.join(repeated)} given more than once; give each once")


def _int_list(option: str, text: str, high: int) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values:
        raise pytest.UsageError(f"{option}={text!r}: expected comma-separated whole numbers from 1 to {high}, e.g. "
                                "1,4,8")
    out_of_range = [v for v in values if not 1 <= v <= high]
    if out_of_range:
        raise pytest.UsageError(f"{option}={text!r}: {out_of_range[0]} is out of range; allowed: 1 to {high}")
    _refuse_repeats(option, text, values)
    return values


@dataclass(frozen=True)
class GestureOptions:
    data: Path | None
    images: Path | None
    landmarker: Path | None
    dtypes: tuple[str, ...]
    #: the user listed the dtypes: emulated ones run too (see :func:`skip_emulated_by_default`)
    dtypes_given: bool = False

    @property
    def default_data(self) -> bool:
        return self.data is None and self.images is None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a module entry set to None
        return False


def read_gesture_options(config: pytest.Config) -> GestureOptions:
    data, images, landmarker = (_given(config, o) for o in (OPT_GESTURE_DATA, OPT_GESTURE_IMAGES,
                                                            OPT_GESTURE_LANDMARKER))
    if data and images:
        raise pytest.UsageError(f"{OPT_GESTURE_DATA} and {OPT_GESTURE_IMAGES} both name the data; give one")
    if images and not landmarker:
        raise pytest.UsageError(f"{OPT_GESTURE_IMAGES}={images} needs {OPT_GESTURE_LANDMARKER}=PATH to MediaPipe's "
                                "hand_landmarker.task")
    if images and not Path(images).is_dir():
        raise pytest.UsageError(f"{OPT_GESTURE_IMAGES}={images}: no such folder")
    landmarker_path = _file_option(OPT_GESTURE_LANDMARKER, landmarker, (".task",), "a MediaPipe .task model file") \
        if landmarker else None
    # the inputs first, then the library: a wrong path reads the same whether MediaPipe is installed or not
    if images and not _installed("mediapipe"):
        raise pytest.UsageError(f"{OPT_GESTURE_IMAGES} reads hand landmarks with MediaPipe, which is not installed: "
                                "pip install 'pytest-accel[mediapipe]' (kept out of the `all` extra: it brings "
                                "opencv-contrib-python beside ultralytics' opencv-python)")
    data_path = _file_option(OPT_GESTURE_DATA, data, (".csv",), "a landmark CSV") if data else None
    if data_path is not None:
        from pytest_accel.workloads.gesture.data import load_csv

        try:
            load_csv(data_path)  # parsed once here: a bad file is one line naming it, not an error per test
        except ValueError as error:
            raise pytest.UsageError(f"{OPT_GESTURE_DATA}: {error}") from None
    return GestureOptions(
        data=data_path,
        images=Path(images).absolute() if images else None,
        landmarker=landmarker_path,
        dtypes=_dtypes_or_default(config, OPT_GESTURE_DTYPES, GESTURE_DTYPES, DEFAULT_GESTURE_DTYPES),
        dtypes_given=config.getoption(OPT_GESTURE_DTYPES) is not None,
    )


@dataclass(frozen=True)
class DetectionOptions:
    model: Path | None
    data: Path | None
    imgsz: int
    batch_sizes: tuple[int, ...] | None
    dtypes: tuple[str, ...]
    #: the user trusts the weights file: it may be unpickled fully (OPT_YOLO_ALLOW_UNSAFE)
    allow_unsafe_load: bool = False
    #: the user listed the dtypes: emulated ones run too (see :func:`skip_emulated_by_default`)
    dtypes_given: bool = False

    @property
    def bundled_defaults(self) -> bool:
        """The bundled detector on the generated data at the default size: its reference ships with the suites."""
        return self.model is None and self.data is None and self.imgsz == DEFAULT_IMGSZ

    def batch_sizes_for(self, device: Device) -> tuple[int, ...]:
        """The throughput batch sizes: as given, else small ones on the host CPU and larger on accelerators."""
        if self.batch_sizes:
            return self.batch_sizes
        return HOST_CPU_BATCH_SIZES if device.is_host_cpu else ACCELERATOR_BATCH_SIZES


def cache_needed(options: DetectionOptions) -> bool:
    """Whether the detection suite writes to the cache: the generated data set, the ONNX export of weights and the
    INT8 models are made there; a given data set with a given fp32 ONNX model needs none of them."""
    onnx_model = options.model is not None and options.model.suffix == ".onnx"
    return options.data is None or not onnx_model or "int8" in options.dtypes


def check_cache_writable(options: DetectionOptions) -> None:
    """A usage error, before any test runs, where the detection suite's cache cannot be written."""
    from pytest_accel.option_readers import unwritable_folder
    from pytest_accel.workloads.cache import default_cache_dir, unwritable_cache_message

    if not cache_needed(options):
        return
    folder = default_cache_dir()
    reason = unwritable_folder(folder)
    if reason is not None:
        raise pytest.UsageError(unwritable_cache_message(folder, reason))


def read_detection_options(config: pytest.Config) -> DetectionOptions:
    from pytest_accel.workloads.detection.model import MODEL_KIND, MODEL_SUFFIXES

    model = _given(config, OPT_YOLO_MODEL)
    data = _given(config, OPT_YOLO_DATA)
    imgsz_text = config.getoption(OPT_YOLO_IMGSZ)
    try:
        imgsz = int(imgsz_text)
    except ValueError:
        imgsz = -1
    if imgsz < 32 or imgsz > 4096 or imgsz % 32:
        raise pytest.UsageError(f"{OPT_YOLO_IMGSZ}={imgsz_text!r}: expected a multiple of 32 between 32 and 4096")
    batch_text = _given(config, OPT_YOLO_BATCH_SIZES)
    allow_unsafe = bool(config.getoption(OPT_YOLO_ALLOW_UNSAFE))
    model_path = _file_option(OPT_YOLO_MODEL, model, MODEL_SUFFIXES, MODEL_KIND) if model else None
    data_path = _file_option(OPT_YOLO_DATA, data, (".yaml", ".yml"), "an ultralytics data set YAML") if data else None
    # loaded and parsed once here, so that a bad file is one line naming it, not an error in every test
    if model_path is not None:
        from pytest_accel.workloads.detection.model import check_model_loads

        try:
            check_model_loads(model_path, allow_unsafe, OPT_YOLO_ALLOW_UNSAFE, imgsz)
        except (ValueError, RuntimeError) as error:
            raise pytest.UsageError(f"{OPT_YOLO_MODEL}={error}") from None
    if data_path is not None:
        from pytest_accel.workloads.detection.splits import check_split

        try:
            check_split(data_path)
        except (ValueError, RuntimeError) as error:
            raise pytest.UsageError(f"{OPT_YOLO_DATA}: {error}") from None
    return DetectionOptions(
        model=model_path,
        data=data_path,
        imgsz=imgsz,
        batch_sizes=_int_list(OPT_YOLO_BATCH_SIZES, batch_text, MAX_BATCH_SIZE) if batch_text else None,
        dtypes=_dtypes_or_default(config, OPT_YOLO_DTYPES, DETECTION_DTYPES, DEFAULT_DETECTION_DTYPES),
        allow_unsafe_load=allow_unsafe,
        dtypes_given=config.getoption(OPT_YOLO_DTYPES) is not None,
    )
