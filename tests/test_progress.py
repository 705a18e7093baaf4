"""Long preparation tells its progress: a line per phase and about one a second, on the console script's stderr
(none under -q), and inside a pytest run through the terminal reporter, never into a test's captured output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_accel.cli import main
from pytest_accel.progress import LineProgress
from pytest_accel.workloads.detection.dataset import DatasetSpec, ensure_dataset


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_are_rate_limited_within_a_phase_but_keep_its_first_and_last() -> None:
    clock = FakeClock()
    lines: list[str] = []
    progress = LineProgress(lines.append, interval=1.0, clock=clock)
    for done in range(11):
        progress.update("building", done, 10, "images")
        clock.now += 0.3
    progress.update("training", 0, 2, "epochs")
    clock.now += 5
    progress.update("training", 1, 2, "epochs", "fitness 0.5")
    assert lines == [
        "building: 0/10 images (0.0 s)",
        "building: 4/10 images (1.2 s)",
        "building: 8/10 images (2.4 s)",
        "building: 10/10 images (3.0 s)",
        "training: 0/2 epochs (0.0 s)",
        "training: 1/2 epochs (5.0 s); fitness 0.5",
    ]


CONFTEST = """
import pytest
from pytest_accel.workloads.detection.dataset import DatasetSpec, ensure_dataset

@pytest.fixture(scope="session")
def data_yaml(accel_progress, tmp_path_factory):
    print("fixture output")
    return ensure_dataset(tmp_path_factory.mktemp("cache"), DatasetSpec(train_images=4, val_images=2),
                          progress=accel_progress)
"""
FAILING_TEST = """
def test_uses_the_data(data_yaml):
    print("test output")
    assert not data_yaml.is_file()
"""
PROGRESS_LINE = re.compile(r"^building detection data set: (\d+)/6 images \(\d+\.\d s\)$")


def _progress_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if PROGRESS_LINE.match(line)]


@pytest.mark.workload
def test_in_a_run_progress_reaches_the_terminal_not_the_captured_output(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_data=FAILING_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    shown = _progress_lines(output)
    assert shown[0].startswith("building detection data set: 0/6 images")
    assert shown[-1].startswith("building detection data set: 6/6 images")
    captured = output.split("Captured stdout setup")[1].split("short test summary")[0]
    assert "fixture output" in captured and "test output" in captured  # capture still works around it
    assert "building detection data set" not in captured
    assert "Captured stderr" not in output

    quiet = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--basetemp", str(pytester.path / "q"))
    assert quiet.ret == pytest.ExitCode.TESTS_FAILED
    assert "building detection data set" not in quiet.stdout.str() + quiet.stderr.str()
    assert "fixture output" in quiet.stdout.str()


@pytest.mark.workload
def test_the_console_script_tells_progress_on_stderr_and_is_quiet_under_q(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ensure_dataset(tmp_path / "cache", DatasetSpec(train_images=1, val_images=3))
    args = ["detection-reference", "--data", str(data), "--reference-dir", str(tmp_path / "refs")]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "fp32 reference: mAP50-95" in out and "scoring" not in out
    lines = err.splitlines()
    assert re.fullmatch(r"scoring detections \(mAP\): 0/3 images \(\d+\.\d s\)", lines[0])
    assert re.fullmatch(r"scoring detections \(mAP\): 3/3 images \(\d+\.\d s\)", lines[-1])

    assert main([*args, "--force", "-q"]) == 0
    out, err = capsys.readouterr()
    assert "fp32 reference: mAP50-95" in out
    assert err == ""


@pytest.mark.workload
def test_training_the_detector_tells_epochs_and_is_quiet_when_not_verbose(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    from ultralytics.utils import LOGGER

    from pytest_accel.workloads.detection.train import TrainSettings, train_detector

    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    level = LOGGER.level
    settings = TrainSettings(epochs=1, imgsz=64, batch=4, workers=0, verbose=False)
    spec = DatasetSpec(train_images=4, val_images=2, imgsz=64, min_size=10, max_size=40)
    # a relative cache folder, as PYTEST_ACCEL_CACHE=cache gives: the training run must stay inside it
    result = train_detector(tmp_path / "out.pt", Path("cache"), settings, spec, LineProgress(lines.append))
    assert result.weights.is_file()
    assert not (tmp_path / "runs").exists() and any((tmp_path / "cache" / "detection" / "training-runs").iterdir())
    assert [line.split(" (")[0] for line in lines] == [
        "building detection data set: 0/6 images", "building detection data set: 6/6 images",
        "training detector: 0/1 epochs", "training detector: 1/1 epochs",  # not 2/1 for the final validation
    ]
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # ultralytics' settings, epoch tables and caching bars stayed quiet
    assert LOGGER.level == level
