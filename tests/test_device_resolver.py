"""One resolver opens every device: a pytest run's, ``pytest-accel devices``' and the golden device; the same
messages and the same settings from each, and messages that name the option the user gave."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_accel.cli import main
from pytest_accel.devices import BackendRegistry, Device, DeviceSpecError, DeviceUnavailable
from pytest_accel.devices.resolver import CUBLAS_WORKSPACE, DeviceSettings, resolve_devices
from pytest_accel.devices.torch import TorchBackend
from pytest_accel.options import (
    OPT_ACCEL_DEVICE,
    OPT_ALLOW_TF32,
    OPT_DETERMINISTIC,
    OPT_DEVICE,
    OPT_INJECT_SLOWDOWN,
    OPT_SKIP_UNAVAILABLE,
)

OWN_DEVICE_OPTION = """
def pytest_addoption(parser):
    parser.addoption("--device", default=None, help="the project's own board")
"""

#: a backend whose device writes every setting it is given to the file named by ACCEL_RECORD
RECORDING_BACKEND = """
import os

from pytest_accel.devices import Backend, Device, DeviceInfo


def _record(line):
    with open(os.environ["ACCEL_RECORD"], "a") as out:
        out.write(line + "\\n")


class RecordingDevice(Device):
    runtime = "python"

    def describe(self):
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="acme", model="recorder")

    def set_fp32_math(self, allow_tf32):
        _record(f"set_fp32_math({allow_tf32})")

    def set_deterministic(self, deterministic):
        _record(f"set_deterministic({deterministic})")


class RecordingBackend(Backend):
    name = "recorder"
    grammar = "rec"

    def parse(self, spec):
        return spec if spec == "rec" else None

    def discover(self):
        return ["rec"]

    def open(self, spec):
        return RecordingDevice(spec, self.name)
"""


@pytest.fixture
def recording_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The recording backend installed through the entry point (what both a run and the console script read);
    returns the file its device records into."""
    site = tmp_path / "site"
    dist = site / "acme_recorder-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "acme_recorder.py").write_text(RECORDING_BACKEND)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-recorder\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pytest_accel.backends]\nrecorder = acme_recorder:RecordingBackend\n")
    monkeypatch.syspath_prepend(str(site))
    record = tmp_path / "record.txt"
    monkeypatch.setenv("ACCEL_RECORD", str(record))
    # whatever a run sets here is undone afterwards, absent or not before
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "placeholder")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    return record


def _recorded(record: Path) -> list[str]:
    lines = record.read_text().splitlines() if record.is_file() else []
    record.unlink(missing_ok=True)
    return lines


@pytest.mark.parametrize(
    ("cli_flags", "pytest_flags", "expected"),
    [
        ([], [], ["set_fp32_math(False)"]),
        (["--allow-tf32"], [OPT_ALLOW_TF32], ["set_fp32_math(True)"]),
        (["--deterministic"], [OPT_DETERMINISTIC], ["set_fp32_math(False)", "set_deterministic(True)"]),
    ],
)
def test_the_console_script_configures_devices_as_a_run_does(
    pytester: pytest.Pytester, recording_backend: Path, capsys: pytest.CaptureFixture[str], cli_flags: list[str],
    pytest_flags: list[str], expected: list[str],
) -> None:
    assert main(["devices", "--device", "rec", *cli_flags]) == 0
    assert capsys.readouterr().out.startswith("rec -> rec-acme-recorder  (acme recorder)")
    from_cli = _recorded(recording_backend)
    cublas_from_cli = os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)

    pytester.makepyfile("def test_plain(device):\n    pass\n")
    pytester.runpytest(f"{OPT_DEVICE}=rec", *pytest_flags).assert_outcomes(passed=1)
    from_run = _recorded(recording_backend)
    cublas_from_run = os.environ.get("CUBLAS_WORKSPACE_CONFIG")

    assert from_cli == from_run == expected
    assert cublas_from_cli == cublas_from_run == (CUBLAS_WORKSPACE if "--deterministic" in cli_flags else None)


def test_an_unknown_spec_reads_the_same_from_the_console_script_and_a_run(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["devices", "--device", "tpu9"]) == 2
    cli_message = capsys.readouterr().err.strip().removeprefix("pytest-accel: ")
    assert cli_message.startswith("--device='tpu9' is not a device any registered backend knows; registered: torch:")
    result = pytester.runpytest(f"{OPT_DEVICE}=tpu9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: {cli_message}" in result.stderr.lines


def test_device_errors_name_accel_device_where_a_conftest_owns_device(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OWN_DEVICE_OPTION)
    pytester.makepyfile("def test_plain(device):\n    pass\n")
    result = pytester.runpytest(f"{OPT_ACCEL_DEVICE}=bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {OPT_ACCEL_DEVICE}='bogus' is not a device any registered backend knows; "
                                 "registered: torch: *"])
    assert "--device=" not in result.stderr.str()


def test_a_spec_whose_backend_cannot_tell_names_the_option_given() -> None:
    class Stubborn(TorchBackend):
        def parse(self, spec: str) -> str | None:
            raise DeviceUnavailable(spec, "its runtime is not installed")

    registry = BackendRegistry()
    registry.register(Stubborn())
    with pytest.raises(DeviceSpecError, match=r"^--accel-device=npu: its runtime is not installed$"):
        resolve_devices(registry, ("npu",), option=OPT_ACCEL_DEVICE)


def test_the_resolver_opens_each_spec_once_and_stands_in_for_absent_devices() -> None:
    registry = BackendRegistry()
    registry.register(TorchBackend())
    with pytest.raises(DeviceUnavailable, match="device 'cuda:7' is not available"):
        resolve_devices(registry, ("cpu", "cuda:7"))
    devices = resolve_devices(registry, ("cpu", "cpu", "cuda:7"), skip_unavailable=True, settings=DeviceSettings())
    assert [(d.spec, d.available) for d in devices] == [("cpu", True), ("cuda:7", False)]


def test_the_golden_device_comes_from_the_resolver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pytest_accel.devices import resolver
    from pytest_accel.workloads.detection.model import BUNDLED_WEIGHTS, DetectorSource

    calls: list[tuple[str, ...]] = []
    real = resolver.resolve_devices

    def spy(registry: BackendRegistry, specs: tuple[str, ...], **kwargs: Any) -> list[Device]:
        calls.append(tuple(specs))
        return real(registry, specs, **kwargs)

    monkeypatch.setattr(resolver, "resolve_devices", spy)
    golden = DetectorSource(BUNDLED_WEIGHTS, 320, tmp_path).golden_device()
    onnx_golden = DetectorSource(tmp_path / "model.onnx", 320, tmp_path).golden_device()
    assert (golden.spec, onnx_golden.spec) == ("cpu", "ort:cpu") and calls == [("cpu",), ("ort:cpu",)]


CONFIGURE_HOOKS = """
def pytest_accel_configure_device(config, device):
    device.configured_by_conftest = True

def pytest_accel_update_device_info(config, device, facts):
    facts["configured_first"] = str(getattr(device, "configured_by_conftest", False))
"""


def test_configure_device_runs_once_per_device_before_the_device_info(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFIGURE_HOOKS)
    pytester.makepyfile(
        """
        def test_configured(device, request):
            assert device.info.extra["configured_first"] == "True"
            assert not request.config.pluginmanager.has_plugin("accel-inject-slowdown")
        """
    )
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu", f"{OPT_DEVICE}=cuda",
                                OPT_SKIP_UNAVAILABLE)
    result.assert_outcomes(passed=2, skipped=1)


def test_the_injected_slowdown_is_a_plugin_on_the_configure_hook(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        textwrap.dedent(
            """
            from pytest_accel.gatecheck import SlowdownInjector

            def test_slowed(device, request):
                injector = request.config.pluginmanager.get_plugin("accel-inject-slowdown")
                assert isinstance(injector, SlowdownInjector) and injector.fraction == 0.25
                assert "prepare_module" in vars(device)  # slowed on this instance only
            """
        )
    )
    pytester.runpytest(f"{OPT_DEVICE}=cpu", f"{OPT_INJECT_SLOWDOWN}=0.25").assert_outcomes(passed=1)
