"""Device names of vendors' PyTorch extensions (npu, rbln, hpu) where the extension is not installed: an absent
device whose reason names the extension, stopping the run or skipping under --accel-skip-unavailable; a name that no
backend and no known extension has is an unknown spec with a message of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_accel.cli import main
from pytest_accel.devices.torch_extensions import AUTOLOAD_VARIABLE, EXTENSIONS, is_installed, missing_reason
from pytest_accel.options import OPT_ACCEL_DEVICE, OPT_DEVICE, OPT_SKIP_UNAVAILABLE
from tests.test_device_resolver import OWN_DEVICE_OPTION

pytestmark = pytest.mark.skipif(any(is_installed(extension) for extension in EXTENSIONS.values()),
                                reason="a vendor's PyTorch extension is installed here")

DEVICE_TEST = "def test_uses_device(device):\n    pass\n"

NPU_REASON = ("npu is the PyTorch device of Huawei Ascend NPUs, added by the extension torch_npu (pip install "
              "torch-npu; it needs Huawei's CANN toolkit), which is not installed here; installing it is enough: "
              "PyTorch loads installed device extensions itself, by their torch.backends entry point; available: cpu")


def test_npu_without_its_extension_stops_the_run_naming_the_extension(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DEVICE_TEST)
    result = pytester.runpytest(f"{OPT_DEVICE}=npu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (f"ERROR: {OPT_DEVICE}=npu is not available: {NPU_REASON}; pass "
                                      f"{OPT_SKIP_UNAVAILABLE} to skip its tests instead")
    assert "not a device any registered backend knows" not in result.stderr.str()


def test_npu_without_its_extension_is_skipped_with_the_reason_when_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DEVICE_TEST)
    result = pytester.runpytest("-rs", f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=npu", OPT_SKIP_UNAVAILABLE)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1)
    assert f"accel device npu: unavailable, its tests skip ({NPU_REASON})" in result.stdout.lines
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] test_*.py:1: npu is not available: {NPU_REASON}"])


def test_the_error_names_accel_device_where_a_conftest_owns_device(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OWN_DEVICE_OPTION)
    pytester.makepyfile(DEVICE_TEST)
    result = pytester.runpytest(f"{OPT_ACCEL_DEVICE}=rbln:1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {OPT_ACCEL_DEVICE}=rbln:1 is not available: rbln is the PyTorch device of "
                                 "Rebellions NPUs, added by the extension torch_rbln (pip install torch-rbln; its "
                                 "runtime rebel-compiler comes from Rebellions' own package index), which is not "
                                 f"installed here; *; pass {OPT_SKIP_UNAVAILABLE} to skip its tests instead"])


@pytest.mark.parametrize("skip_unavailable", [False, True])
def test_a_name_no_backend_or_extension_knows_is_an_unknown_spec(pytester: pytest.Pytester,
                                                                 skip_unavailable: bool) -> None:
    pytester.makepyfile(DEVICE_TEST)
    result = pytester.runpytest(f"{OPT_DEVICE}=bogus", *([OPT_SKIP_UNAVAILABLE] if skip_unavailable else []))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {OPT_DEVICE}='bogus' is not a device any registered backend knows; "
                                 "registered: torch: cpu, cuda, cuda:N, mps, xpu, xpu:N, the vendor-extension devices "
                                 "hpu, npu and rbln (also :N), or the device name another installed PyTorch extension "
                                 "registers; onnxruntime: ort:<provider> *; or 'auto' for every available device"])
    assert "PrivateUse1" not in result.stderr.str() and "not installed" not in result.stderr.str()


def test_the_console_script_shows_extension_devices_as_unavailable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--device", "npu", "--device", "hpu:1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"npu: unavailable ({NPU_REASON})"
    assert lines[1].startswith("hpu:1: unavailable (hpu is the PyTorch device of Intel Gaudi accelerators, added by "
                               "the extension habana_frameworks.torch (the PyTorch packages of the Intel Gaudi "
                               "software suite), which is not installed here; installing it is enough")


#: a stand-in for torch_npu, installed the way the real one is: a package with a `torch.backends` entry point that
#: registers `npu` under PrivateUse1 when PyTorch loads it (no NPU behind it)
FAKE_EXTENSION = {
    "torch_npu/__init__.py": """
        import types

        import torch


        def _autoload():
            torch.utils.rename_privateuse1_backend("npu")
            torch._register_device_module("npu", types.SimpleNamespace(is_available=lambda: False))
        """,
    "torch_npu-2.5.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: torch-npu\nVersion: 2.5.0\n",
    "torch_npu-2.5.0.dist-info/entry_points.txt": "[torch.backends]\ntorch_npu = torch_npu:_autoload\n",
}

OPEN_NPU = """
from pytest_accel.devices import DeviceUnavailable
from pytest_accel.devices.torch import TorchBackend

try:
    TorchBackend().open("npu")
except DeviceUnavailable as error:
    print(error.reason)
"""


@pytest.mark.workload  # a fresh interpreter imports torch with an installed entry point
@pytest.mark.parametrize(
    ("autoload", "reason"),
    [
        ("1", "torch.npu.is_available() is False; available: cpu"),
        ("0", f"torch_npu is installed but has not registered npu with PyTorch: {AUTOLOAD_VARIABLE}=0 stops PyTorch "
              "loading installed extensions; unset it or import torch_npu in a conftest.py; available: cpu"),
    ],
)
def test_installing_the_extension_is_enough(tmp_path: Path, autoload: str, reason: str) -> None:
    for name, text in FAKE_EXTENSION.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    repository = Path(__file__).resolve().parent.parent
    path = os.pathsep.join([str(tmp_path), str(repository), os.environ.get("PYTHONPATH", "")])
    environ = {**os.environ, "PYTHONPATH": path, AUTOLOAD_VARIABLE: autoload}
    done = subprocess.run([sys.executable, "-c", OPEN_NPU], capture_output=True, text=True, env=environ, check=True)
    assert done.stdout.strip() == reason


NPU = EXTENSIONS["npu"]
NOT_INSTALLED = ("npu is the PyTorch device of Huawei Ascend NPUs, added by the extension torch_npu (pip install "
                 "torch-npu; it needs Huawei's CANN toolkit), which is not installed here; ")


@pytest.mark.parametrize(
    ("installed", "version", "autoload", "privateuse1", "reason"),
    [
        (False, "2.14.1+cpu", "1", None, NOT_INSTALLED + "installing it is enough: PyTorch loads installed device "
         "extensions itself, by their torch.backends entry point"),
        (False, "2.4.1", "1", None, NOT_INSTALLED + "this PyTorch (2.4.1) predates extension autoload (2.5): install "
         "it and import torch_npu in a conftest.py"),
        (False, "2.9.0", "0", None, NOT_INSTALLED + f"{AUTOLOAD_VARIABLE}=0 is set, which stops PyTorch loading "
         "installed extensions: install it and unset that, or import torch_npu in a conftest.py"),
        (True, "2.4.1", "1", None, "torch_npu is installed but has not registered npu with PyTorch: this PyTorch "
         "(2.4.1) predates extension autoload (2.5); import torch_npu in a conftest.py"),
        (True, "2.9.0", "1", "acmenpu", "torch_npu is installed but has not registered npu with PyTorch: PyTorch's "
         "PrivateUse1 device, one per process, is already 'acmenpu' (another extension's)"),
        (True, "2.9.0", "1", None, "torch_npu is installed but has not registered npu with PyTorch: this version of "
         "it has no torch.backends entry point for PyTorch to load it by; import torch_npu in a conftest.py"),
    ],
)
def test_the_reason_says_what_makes_the_device_appear(installed: bool, version: str, autoload: str,
                                                      privateuse1: str | None, reason: str) -> None:
    assert missing_reason(NPU, installed=installed, torch_version=version, environ={AUTOLOAD_VARIABLE: autoload},
                          privateuse1_name=privateuse1) == reason


def test_hpu_is_pytorchs_own_device_type_so_no_privateuse1_clash() -> None:
    text = missing_reason(EXTENSIONS["hpu"], installed=True, torch_version="2.9.0", environ={},
                          privateuse1_name="npu")
    assert text.endswith("this version of it has no torch.backends entry point for PyTorch to load it by; import "
                         "habana_frameworks.torch in a conftest.py")
