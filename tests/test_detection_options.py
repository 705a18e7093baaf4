"""The detection suite's options: a clear one-line error for a missing or unreadable model or data file."""

from __future__ import annotations

import pytest

from tests.helpers import copy_suites


@pytest.fixture
def suites(pytester: pytest.Pytester) -> pytest.Pytester:
    copy_suites(pytester.path, "test_detection.py", "test_gesture.py")
    pytester.path.joinpath("notes.txt").write_text("not a model")
    return pytester


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--yolo-model=missing.pt"], "ERROR: --yolo-model=missing.pt: no such file"),
        (["--yolo-model=notes.txt"], "ERROR: --yolo-model=notes.txt: expected an ultralytics weights file or ONNX "
                                     "model (.pt, .onnx)"),
        (["--yolo-model=."], "ERROR: --yolo-model=.: expected an ultralytics weights file or ONNX model (.pt, .onnx)"),
        (["--yolo-data=missing.yaml"], "ERROR: --yolo-data=missing.yaml: no such file"),
        (["--yolo-data=notes.txt"],
         "ERROR: --yolo-data=notes.txt: expected an ultralytics data set YAML (.yaml, .yml)"),
        (["--yolo-imgsz=300"], "ERROR: --yolo-imgsz='300': expected a multiple of 32 between 32 and 4096"),
        (["--yolo-imgsz=big"], "ERROR: --yolo-imgsz='big': expected a multiple of 32 between 32 and 4096"),
        (["--yolo-dtypes=fp32,int4"], "ERROR: --yolo-dtypes='fp32,int4': allowed: fp32, fp16, bf16, int8"),
        (["--yolo-batch-sizes=1,0"], "ERROR: --yolo-batch-sizes='1,0': 0 is out of range; allowed: 1 to 1024"),
        (["--yolo-batch-sizes=x"], "ERROR: --yolo-batch-sizes='x': expected comma-separated whole numbers from 1 to "
                                   "1024*"),
        # found by a black-box attack: accepted, then the run tried to allocate 99999999 images
        (["--yolo-batch-sizes=1,99999999"],
         "ERROR: --yolo-batch-sizes='1,99999999': 99999999 is out of range; allowed: 1 to 1024"),
        # found by a black-box attack: each ran twice, under renamed baselines (fp32_0, fp32_1)
        (["--yolo-dtypes=fp32,fp32"], "ERROR: --yolo-dtypes='fp32,fp32': fp32 given more than once; give each once"),
        (["--yolo-batch-sizes=4,2,4"], "ERROR: --yolo-batch-sizes='4,2,4': 4 given more than once; give each once"),
        (["--gesture-dtypes=bf16,fp32,bf16"],
         "ERROR: --gesture-dtypes='bf16,fp32,bf16': bf16 given more than once; give each once"),
        # found by a black-box attack: an empty value (--yolo-model=$UNSET) silently ran the default instead
        *[([f"{option}="], f"ERROR: {option}='': empty; give a value, or leave the option out for its default")
          for option in ("--yolo-model", "--yolo-data", "--yolo-batch-sizes", "--gesture-data", "--gesture-images",
                         "--gesture-landmarker")],
    ],
)
def test_bad_detection_options(suites: pytest.Pytester, args: list[str], message: str) -> None:
    result = suites.runpytest("suites", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_unreadable_model_file(suites: pytest.Pytester) -> None:
    # /proc/self/mem is a regular file whose first byte cannot be read, by root either
    (suites.path / "mem.pt").symlink_to("/proc/self/mem")
    result = suites.runpytest("suites", "--yolo-model=mem.pt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --yolo-model=mem.pt: cannot be read (Input/output error)"])
