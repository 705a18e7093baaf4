"""Options and shared fixtures of the conformance suites. Workloads get plain values from here, never options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_accel.timing import is_cpu_class

OPT_YOLO_MODEL = "--yolo-model"
OPT_YOLO_DATA = "--yolo-data"
OPT_YOLO_IMGSZ = "--yolo-imgsz"
OPT_YOLO_BATCH_SIZES = "--yolo-batch-sizes"
OPT_YOLO_DTYPES = "--yolo-dtypes"
DETECTION_DTYPES = ("fp32", "fp16", "bf16")
OPT_GESTURE_DATA = "--gesture-data"
OPT_GESTURE_IMAGES = "--gesture-images"
OPT_GESTURE_LANDMARKER = "--gesture-landmarker"
OPT_GESTURE_DTYPES = "--gesture-dtypes"
GESTURE_DTYPES = ("fp32", "bf16", "fp16")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("accel-suites", "pytest-accel suites")
    group.addoption(
        OPT_YOLO_MODEL, default=None, metavar="PATH",
        help="detector to run: an ultralytics weights file (.pt) or an exported ONNX model (.onnx). "
        "Default: the bundled YOLOv8n trained on the generated shapes data set.",
    )
    group.addoption(
        OPT_YOLO_DATA, default=None, metavar="YAML",
        help="ultralytics data set YAML whose val split is scored. Default: the generated shapes data set "
        "(made on first use in the cache, $PYTEST_ACCEL_CACHE or ~/.cache/pytest-accel).",
    )
    group.addoption(OPT_YOLO_IMGSZ, default="320", metavar="N", help="inference image size. Default: 320.")
    group.addoption(
        OPT_YOLO_BATCH_SIZES, default=None, metavar="LIST",
        help="comma-separated batch sizes for throughput (at least one). Default: 1,2,4 on CPUs, 1,8,32 on "
        "accelerators.",
    )
    group.addoption(
        OPT_YOLO_DTYPES, default=",".join(DETECTION_DTYPES), metavar="LIST",
        help="comma-separated dtypes for the PyTorch devices (fp32, fp16, bf16); ONNX Runtime runs fp32. "
        "Default: fp32,fp16,bf16.",
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
        OPT_GESTURE_DTYPES, default="fp32,bf16", metavar="LIST",
        help="comma-separated training precisions: fp32, and bf16/fp16 autocast where the device supports them. "
        "Default: fp32,bf16.",
    )


@dataclass(frozen=True)
class GestureOptions:
    data: Path | None
    images: Path | None
    landmarker: Path | None
    dtypes: tuple[str, ...]


def read_gesture_options(config: pytest.Config) -> GestureOptions:
    data, images, landmarker = (config.getoption(o) for o in (OPT_GESTURE_DATA, OPT_GESTURE_IMAGES,
                                                              OPT_GESTURE_LANDMARKER))
    if data and images:
        raise pytest.UsageError(f"{OPT_GESTURE_DATA} and {OPT_GESTURE_IMAGES} both name the data; give one")
    if images and not landmarker:
        raise pytest.UsageError(f"{OPT_GESTURE_IMAGES}={images} needs {OPT_GESTURE_LANDMARKER}=PATH to MediaPipe's "
                                "hand_landmarker.task")
    if images and not Path(images).is_dir():
        raise pytest.UsageError(f"{OPT_GESTURE_IMAGES}={images}: no such folder")
    text = config.getoption(OPT_GESTURE_DTYPES)
    dtypes = tuple(part.strip() for part in text.split(",") if part.strip())
    if not dtypes or any(d not in GESTURE_DTYPES for d in dtypes):
        raise pytest.UsageError(f"{OPT_GESTURE_DTYPES}={text!r}: allowed: {', '.join(GESTURE_DTYPES)}")
    return GestureOptions(
        data=_readable(OPT_GESTURE_DATA, data, (".csv",), "a landmark CSV") if data else None,
        images=Path(images).absolute() if images else None,
        landmarker=_readable(OPT_GESTURE_LANDMARKER, landmarker, (".task",), "a MediaPipe .task model file")
        if landmarker else None,
        dtypes=dtypes,
    )


@dataclass(frozen=True)
class DetectionOptions:
    model: Path | None
    data: Path | None
    imgsz: int
    batch_sizes: tuple[int, ...] | None
    dtypes: tuple[str, ...]


def _int_list(option: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise pytest.UsageError(f"{option}={text!r}: expected comma-separated positive integers, e.g. 1,4,8") from None
    if not values or any(v < 1 for v in values):
        raise pytest.UsageError(f"{option}={text!r}: expected comma-separated positive integers, e.g. 1,4,8")
    return values


def _readable(option: str, text: str, suffixes: tuple[str, ...], kind: str) -> Path:
    given = Path(text).expanduser()
    path = given.absolute()
    if given.suffix.lower() not in suffixes:
        raise pytest.UsageError(f"{option}={text}: expected {kind} ({', '.join(suffixes)})")
    if not path.is_file():
        raise pytest.UsageError(f"{option}={text}: no such file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as error:
        raise pytest.UsageError(f"{option}={text}: cannot be read ({error.strerror})") from None
    return path


def read_detection_options(config: pytest.Config) -> DetectionOptions:
    model = config.getoption(OPT_YOLO_MODEL)
    data = config.getoption(OPT_YOLO_DATA)
    imgsz_text = config.getoption(OPT_YOLO_IMGSZ)
    try:
        imgsz = int(imgsz_text)
    except ValueError:
        imgsz = -1
    if imgsz < 32 or imgsz > 4096 or imgsz % 32:
        raise pytest.UsageError(f"{OPT_YOLO_IMGSZ}={imgsz_text!r}: expected a multiple of 32 between 32 and 4096")
    dtypes = tuple(part.strip() for part in config.getoption(OPT_YOLO_DTYPES).split(",") if part.strip())
    unknown = [d for d in dtypes if d not in DETECTION_DTYPES]
    if unknown or not dtypes:
        raise pytest.UsageError(
            f"{OPT_YOLO_DTYPES}={config.getoption(OPT_YOLO_DTYPES)!r}: allowed: {', '.join(DETECTION_DTYPES)}"
        )
    batch_text = config.getoption(OPT_YOLO_BATCH_SIZES)
    return DetectionOptions(
        model=_readable(OPT_YOLO_MODEL, model, (".pt", ".onnx"), "an ultralytics weights file or ONNX model")
        if model else None,
        data=_readable(OPT_YOLO_DATA, data, (".yaml", ".yml"), "an ultralytics data set YAML") if data else None,
        imgsz=imgsz,
        batch_sizes=_int_list(OPT_YOLO_BATCH_SIZES, batch_text) if batch_text else None,
        dtypes=dtypes,
    )


_OPTIONS_KEY = pytest.StashKey[DetectionOptions]()
_GESTURE_KEY = pytest.StashKey[GestureOptions]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_OPTIONS_KEY] = read_detection_options(config)
    config.stash[_GESTURE_KEY] = read_gesture_options(config)


@pytest.fixture(scope="session")
def gesture_options(pytestconfig: pytest.Config) -> GestureOptions:
    return pytestconfig.stash[_GESTURE_KEY]


@pytest.fixture(scope="session")
def detection_options(pytestconfig: pytest.Config) -> DetectionOptions:
    return pytestconfig.stash[_OPTIONS_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    options = metafunc.config.stash[_OPTIONS_KEY]
    if "detection_dtype" in metafunc.fixturenames:
        metafunc.parametrize("detection_dtype", options.dtypes, scope="session")
    if "gesture_dtype" in metafunc.fixturenames:
        metafunc.parametrize("gesture_dtype", metafunc.config.stash[_GESTURE_KEY].dtypes, scope="session")


def default_batch_sizes(device: Any) -> tuple[int, ...]:
    return (1, 2, 4) if is_cpu_class(device) else (1, 8, 32)
