"""Every way a model enters refuses a crafted pickle (its code never runs) unless the user opts in, and refuses an
empty, damaged or non-detector model file up front with one line naming it; the cache folder is checked up front."""

from __future__ import annotations

import pathlib
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_accel import cli
from pytest_accel.environment import CACHE_ENV
from pytest_accel.suite_options import OPT_YOLO_ALLOW_UNSAFE, OPT_YOLO_MODEL
from pytest_accel.workloads.detection.model import BUNDLED_WEIGHTS, DetectorSource
from tests.fuzzing import FUZZ_SETTINGS
from tests.helpers import copy_suites
from tests.test_bad_inputs import SUITE_OPTIONS_CONFTEST

CLI_OPT_IN = cli.UNSAFE_LOAD_OPT_IN


class _Payload:
    """Unpickling this creates the marker file: the kind of code a crafted checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return pathlib.Path.touch, (self.marker,)


def crafted_weights(folder: Path) -> tuple[Path, Path]:
    """(a .pt whose unpickling creates a marker file, that marker's path)."""
    import torch

    marker = folder / "payload-ran"
    crafted = folder / "crafted.pt"
    torch.save({"model": _Payload(marker)}, crafted)
    return crafted, marker


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose conftest reads the suites' options, as the bundled suites' conftest does."""
    pytester.makeconftest(SUITE_OPTIONS_CONFTEST)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    return pytester


def _one_error_line(lines: list[str], prefix: str) -> str:
    text = "\n".join(lines)
    errors = [line for line in lines if line.startswith(prefix)]
    assert len(errors) == 1 and "Traceback" not in text, text
    return errors[0]


def _pytest_option(project: pytest.Pytester, model: Path, *extra: str) -> str:
    result = project.runpytest(f"{OPT_YOLO_MODEL}={model}", *extra)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    return _one_error_line(result.stderr.lines, "ERROR:")


def _console_script(model: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    status = cli.main(["detection-reference", f"--model={model}", f"--reference-dir={model.parent / 'refs'}", "-q",
                       *extra])
    assert status == 2
    return _one_error_line(capsys.readouterr().err.splitlines(), "pytest-accel:")


def _load(method: str) -> Callable[[Path], str]:
    """A load behind the start-up check (the suites' fixtures, the reference): as safe as the check itself."""
    def load(model: Path) -> str:
        source = DetectorSource(model, 320, model.parent / "cache")
        with pytest.raises(ValueError) as refused:
            getattr(source, method)()
        return str(refused.value)
    return load


ENTRY_POINTS = ["pytest --yolo-model", "pytest-accel detection-reference --model", "suites' PyTorch load",
                "suites' ONNX export"]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_refuses_a_crafted_pickle(entry: str, project: pytest.Pytester,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    crafted, marker = crafted_weights(project.path)
    if entry == "pytest --yolo-model":
        line, opt_in = _pytest_option(project, crafted), OPT_YOLO_ALLOW_UNSAFE
    elif entry == "pytest-accel detection-reference --model":
        line, opt_in = _console_script(crafted, capsys), CLI_OPT_IN
    else:
        line = _load("torch_module" if entry == "suites' PyTorch load" else "onnx_path")(crafted)
        opt_in = OPT_YOLO_ALLOW_UNSAFE
    assert str(crafted) in line and "refused" in line and opt_in in line, line
    assert not marker.exists(), "the payload ran"


def test_the_pytest_opt_in_is_honoured(project: pytest.Pytester) -> None:
    crafted, marker = crafted_weights(project.path)
    line = _pytest_option(project, crafted, OPT_YOLO_ALLOW_UNSAFE)
    assert marker.exists(), "the opt-in did not load the file fully"
    assert line == f"ERROR: {OPT_YOLO_MODEL}={crafted}: not an ultralytics checkpoint (no model in it)"


def test_the_console_script_opt_in_is_honoured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crafted, marker = crafted_weights(tmp_path)
    line = _console_script(crafted, capsys, CLI_OPT_IN)
    assert marker.exists(), "the opt-in did not load the file fully"
    assert line == f"pytest-accel: --model={crafted}: not an ultralytics checkpoint (no model in it)"


@pytest.mark.workload
def test_gate_check_stops_at_the_refusal(project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """Its runs are pytest processes: each refuses the file; the self-check stops at the first, saying why, instead
    of measuring nothing and printing an empty table."""
    crafted, marker = crafted_weights(project.path)
    status = cli.main(["gate-check", "--runs=6", f"--out={project.path / 'gate.json'}", "-q", "--",
                       "test_nothing.py", f"{OPT_YOLO_MODEL}={crafted}"])
    line = _one_error_line(capsys.readouterr().err.splitlines(), "pytest-accel:")
    assert status == 2
    assert line.startswith(f"pytest-accel: gate-check: pytest refused the arguments: {OPT_YOLO_MODEL}={crafted}: "
                           "refused"), line
    assert OPT_YOLO_ALLOW_UNSAFE in line
    assert not marker.exists(), "the payload ran"
    assert not (project.path / "gate.json").exists()


def _onnx_model(path: Path, input_type: int, shape: list[int | str]) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["output0"])], "g",
                              [helper.make_tensor_value_info("images", input_type, shape)],
                              [helper.make_tensor_value_info("output0", input_type, shape)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _bad_models(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what its one line says)."""
    import onnx

    truncated = folder / "cut.onnx"
    whole = _onnx_model(folder / "whole.onnx", onnx.TensorProto.FLOAT, ["batch", 3, "height", "width"]).read_bytes()
    truncated.write_bytes(whole[: len(whole) - 12])  # the opset import cut off: it still decodes
    return {
        "empty onnx": (folder / "empty.onnx", "empty file (0 bytes), not an ultralytics weights file or ONNX model"),
        "empty pt": (folder / "empty.pt", "empty file (0 bytes), not an ultralytics weights file or ONNX model"),
        "garbage onnx": (folder / "garbage.onnx", "not a loadable ONNX model ("),
        "truncated onnx": (truncated, "not a loadable ONNX model ("),
        "garbage pt": (folder / "garbage.pt", "not a loadable ultralytics checkpoint ("),
        "not an image input": (_onnx_model(folder / "tokens.onnx", onnx.TensorProto.INT64, [1, 77]),
                               "its input 'images' is int64 [1, 77]; a detector takes a float image batch "
                               "[batch, 3, height, width]"),
        "fixed other size": (_onnx_model(folder / "fixed.onnx", onnx.TensorProto.FLOAT, [1, 3, 640, 640]),
                             "its input 'images' is fixed at 640x640 pixels; run it with that image size (not 320)"),
    }


BAD_MODELS = ["empty onnx", "empty pt", "garbage onnx", "truncated onnx", "garbage pt", "not an image input",
              "fixed other size"]


def _write_empty_and_garbage(folder: Path) -> None:
    for name in ("empty.onnx", "empty.pt"):
        (folder / name).write_bytes(b"")
    for name in ("garbage.onnx", "garbage.pt"):
        (folder / name).write_bytes(b"\x01\x02 not a model \xff" * 64)


@pytest.mark.parametrize("bad", BAD_MODELS)
def test_a_bad_model_is_one_line_before_any_test(bad: str, project: pytest.Pytester,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _write_empty_and_garbage(project.path)
    model, expected = _bad_models(project.path)[bad]
    assert _pytest_option(project, model).startswith(f"ERROR: {OPT_YOLO_MODEL}={model}: {expected}")
    assert _console_script(model, capsys).startswith(f"pytest-accel: --model={model}: {expected}")


def test_a_dynamic_onnx_detector_passes(project: pytest.Pytester) -> None:
    import onnx

    model = _onnx_model(project.path / "dynamic.onnx", onnx.TensorProto.FLOAT, ["batch", 3, "height", "width"])
    project.runpytest(f"{OPT_YOLO_MODEL}={model}").assert_outcomes(passed=1)


@pytest.fixture
def unwritable_cache(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder no one can make, root included: its parent is a file."""
    pytester.path.joinpath("notes.txt").write_text("a file, not a folder")
    cache = pytester.path / "notes.txt" / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


def test_an_unwritable_cache_is_one_line_before_the_detection_suite(pytester: pytest.Pytester,
                                                                    unwritable_cache: Path) -> None:
    copy_suites(pytester.path, "test_detection.py")
    result = pytester.runpytest("suites", "--device=cpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    line = _one_error_line(result.stderr.lines, "ERROR:")
    assert line == (f"ERROR: cache folder {unwritable_cache}: not writable: Not a directory; generated data sets "
                    f"and converted models are kept there: set ${CACHE_ENV} to a writable folder")


def test_the_cache_is_not_checked_when_no_detection_test_runs(pytester: pytest.Pytester,
                                                              unwritable_cache: Path) -> None:
    copy_suites(pytester.path, "test_detection.py")
    result = pytester.runpytest("suites", "--device=cpu", "-k", "no_such_test")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("command", ["detection-reference", "build-detector"])
def test_an_unwritable_cache_is_one_line_in_the_console_script(unwritable_cache: Path, tmp_path: Path, command: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # build-detector: found by a black-box attack, a NotADirectoryError traceback when it made its data set
    args = [f"--model={BUNDLED_WEIGHTS}"] if command == "detection-reference" else [f"--out={tmp_path / 'd.pt'}"]
    status = cli.main([command, *args, f"--reference-dir={tmp_path}", "-q"])
    assert status == 2
    line = _one_error_line(capsys.readouterr().err.splitlines(), "pytest-accel:")
    assert line.startswith(f"pytest-accel: cache folder {unwritable_cache}: not writable"), line


def _small_checkpoint() -> bytes:
    """A small weights file safe loading accepts (a torch layer in ultralytics' checkpoint layout)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"model": torch.nn.Conv2d(3, 4, 3)}, buffer)
    return buffer.getvalue()


def _damaged(original: bytes, data: st.DataObject) -> bytes:
    """``original`` cut short, or with a few bytes overwritten, or replaced by arbitrary bytes."""
    how = data.draw(st.sampled_from(["cut", "overwrite", "arbitrary"]))
    if how == "arbitrary":
        return data.draw(st.binary(max_size=4096))
    if how == "cut":
        return original[: data.draw(st.integers(0, len(original) - 1))]
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    return bytes(damaged)


@pytest.fixture(scope="module")
def intact_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    import onnx

    folder = tmp_path_factory.mktemp("intact")
    onnx_model = _onnx_model(folder / "m.onnx", onnx.TensorProto.FLOAT, ["batch", 3, "height", "width"])
    return {".onnx": onnx_model.read_bytes(), ".pt": _small_checkpoint()}


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzzed_model_files_are_loaded_or_refused_in_one_line(suffix: str, intact_models: dict[str, bytes],
                                                              tmp_path_factory: pytest.TempPathFactory,
                                                              data: st.DataObject) -> None:
    """Whatever the bytes, the start-up check loads the file or raises one ValueError line naming it: no other
    exception, no hang, and never a refusal of the intact file."""
    from pytest_accel.workloads.detection.model import check_model_loads

    model = tmp_path_factory.mktemp("fuzz") / f"model{suffix}"
    content = _damaged(intact_models[suffix], data)
    model.write_bytes(content)
    try:
        check_model_loads(model, allow_unsafe=False, imgsz=320)
    except ValueError as error:
        text = str(error)
        assert text.startswith(f"{model}: ") and "\n" not in text, text
        assert content != intact_models[suffix], text
