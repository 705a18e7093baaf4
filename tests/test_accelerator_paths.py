"""PyTorch accelerator paths that no GPU here can run, shown with an honest fake: a PrivateUse1 device module
registered under a name of its own (what an out-of-tree backend such as torch_npu does), whose functions act on the
*current* device unless given one, as vendors' modules do. Plus TF32 bounds and the determinism option.

PyTorch allows one PrivateUse1 name per process, so the fake runs in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pytest_accel.devices.torch import TorchBackend, TorchDevice, _apple_chip, set_tf32, tf32_flags, tf32_math
from pytest_accel.options import OPT_DETERMINISTIC, OPT_REPORT
from tests.helpers import load_json

FAKE_NPU = textwrap.dedent(
    """
    import contextlib, json, sys, types
    import torch

    calls, current = [], {"index": 0}
    memory = {0: {"allocated": 0, "peak": 0}, 1: {"allocated": 0, "peak": 0}}

    @contextlib.contextmanager
    def device(index):
        previous, current["index"] = current["index"], index
        try:
            yield
        finally:
            current["index"] = previous

    def synchronize():                       # acts on the current device only
        calls.append(current["index"])

    def reset_peak_memory_stats(device=None):
        slot = memory[device.index]
        slot["peak"] = slot["allocated"]       # the peak restarts at what is still allocated

    def memory_allocated(device=None):
        return memory[device.index]["allocated"]

    def max_memory_allocated(device=None):
        return memory[device.index]["peak"]

    def is_bf16_supported(including_emulation=True):
        return current["index"] == 0 or including_emulation   # device 1 only emulates bf16

    module = types.SimpleNamespace(
        is_available=lambda: True, device_count=lambda: 2, current_device=lambda: current["index"], device=device,
        synchronize=synchronize, reset_peak_memory_stats=reset_peak_memory_stats, memory_allocated=memory_allocated,
        max_memory_allocated=max_memory_allocated, is_bf16_supported=is_bf16_supported,
        get_device_name=lambda index=0: "Fake NPU 910",
    )
    torch.utils.rename_privateuse1_backend("fakenpu")
    torch._register_device_module("fakenpu", module)

    from pytest_accel.devices.torch import TorchBackend

    npu1 = TorchBackend().open("fakenpu:1")
    npu0 = TorchBackend().open("fakenpu:0")
    npu1.synchronize()
    memory[1]["allocated"] = 500            # an earlier test's model is still loaded
    npu1.reset_peak_memory()
    memory[1]["peak"] = 700                 # this window allocated 200 more at its peak
    print(json.dumps({
        "sync_devices": calls,
        "peak": npu1.peak_memory_bytes(),
        "dtypes_1": list(npu1.supported_dtypes),
        "dtypes_0": list(npu0.supported_dtypes),
        "key": npu1.key,
        "current_after": current["index"],
    }))
    """
)


@pytest.fixture(scope="module")
def fake_npu() -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", FAKE_NPU], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.workload  # a fresh interpreter with a fake PrivateUse1 module (about 3 s)
def test_synchronize_waits_for_the_device_under_test(fake_npu: dict[str, object]) -> None:
    assert fake_npu["sync_devices"] == [1], "npu:1 must be synchronised, not the current device 0"
    assert fake_npu["current_after"] == 0


@pytest.mark.workload  # a fresh interpreter with a fake PrivateUse1 module (about 3 s)
def test_peak_memory_is_the_windows_own(fake_npu: dict[str, object]) -> None:
    assert fake_npu["peak"] == 200, "the 500 still allocated at the reset belong to earlier tests"


@pytest.mark.workload  # a fresh interpreter with a fake PrivateUse1 module (about 3 s)
def test_bf16_is_judged_on_the_device_itself_and_natively(fake_npu: dict[str, object]) -> None:
    assert fake_npu["dtypes_0"] == ["fp32", "fp16", "bf16"]
    assert fake_npu["dtypes_1"] == ["fp32", "fp16"], "emulated bf16 is not support"


@pytest.mark.workload  # a fresh interpreter with a fake PrivateUse1 module (about 3 s)
def test_accelerator_keys_name_the_host_cpu(fake_npu: dict[str, object]) -> None:
    host_key = TorchBackend().open("cpu").key  # cpu-<host model>-<cores>c
    host_model = host_key.removeprefix("cpu-").rsplit("-", 1)[0]
    assert fake_npu["key"] == f"fakenpu-fakenpu-fake-npu-910-on-{host_model}"
    assert "-on-" not in host_key


def test_mps_reports_no_peak_and_names_the_chip(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TorchDevice("mps").peak_memory_bytes() is None, "driver_allocated_memory is not a peak"

    class Done:
        stdout = "Apple M2 Pro\n"

    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: Done())
    assert _apple_chip() == ("Apple", "M2 Pro")


@pytest.mark.parametrize(
    ("flags", "capability", "env", "expected"),
    [
        ({"matmul": False, "conv": False}, (9, 0), {}, "ieee"),
        ({"matmul": False, "conv": True}, (9, 0), {}, "tf32"),  # PyTorch's default: TF32 cuDNN convolutions
        ({"matmul": True, "conv": True}, (7, 0), {}, "ieee"),  # Volta has no TF32
        ({"matmul": True, "conv": True}, (8, 0), {"NVIDIA_TF32_OVERRIDE": "0"}, "ieee"),
        ({"matmul": False, "conv": False}, (8, 6), {"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "1"}, "tf32"),
    ],
)
def test_tf32_math(flags: dict[str, bool], capability: tuple[int, int], env: dict[str, str], expected: str) -> None:
    math, reason = tf32_math(flags, capability, env)
    assert math == expected and reason


def test_tf32_flags_are_set_and_read_through_one_api() -> None:
    import torch

    backends = torch.backends
    if not hasattr(backends.cuda.matmul, "fp32_precision"):
        pytest.skip("this PyTorch has only the legacy allow_tf32 flags")
    levels = (backends.cuda.matmul, backends.cudnn.conv, backends.cudnn.rnn)
    before = [level.fp32_precision for level in levels]
    try:
        set_tf32(torch, False)
        assert tf32_flags(torch) == {"matmul": False, "conv": False}
        set_tf32(torch, True)
        assert tf32_flags(torch) == {"matmul": True, "conv": True}
    finally:
        for level, value in zip(levels, before, strict=True):
            level.fp32_precision = value


def tf32_round(x: np.ndarray) -> np.ndarray:
    """Round fp32 to TF32's 10 mantissa bits (nearest), as tensor cores read their inputs."""
    bits = x.astype(np.float32).view(np.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(np.float32)


def test_tf32_bounds_hold_tf32_and_only_tf32() -> None:
    """The matmul suite's bounds: TF32 emulated on the CPU breaks the fp32 bound and keeps the TF32 one."""
    import importlib.util

    from pytest_accel.workloads.matmul import inputs, reference_product

    # loaded under a name of its own: importing the `suites` package here would clash with pytester's copies of it
    spec = importlib.util.spec_from_file_location("matmul_suite", Path(__file__).parents[1] / "suites/test_matmul.py")
    assert spec is not None and spec.loader is not None
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    MAX_REL_ERROR, SIZE = suite.MAX_REL_ERROR, suite.SIZE  # noqa: N806 - the suite's constants, by their names

    a, b = inputs(SIZE)
    expected = reference_product(a, b)
    scale = np.abs(expected).max()
    ieee = np.abs((a @ b).astype(np.float64) - expected).max() / scale
    tf32 = np.abs((tf32_round(a) @ tf32_round(b)).astype(np.float64) - expected).max() / scale
    assert ieee < MAX_REL_ERROR["fp32"] < tf32 < MAX_REL_ERROR["tf32"]


TF32_BACKEND = """
from pytest_accel.devices.torch import TorchBackend, TorchDevice

class Tf32Cpu(TorchDevice):
    fp32_math = "tf32"  # stands for a GPU with TF32 on: only the bound chosen is under test here

class Tf32Backend(TorchBackend):
    name = "tf32cpu"
    def parse(self, spec):
        return spec if spec == "tf32cpu" else None
    def discover(self):
        return []
    def open(self, spec):
        device = Tf32Cpu("cpu")
        device.spec = spec
        return device

def pytest_accel_register_backends(registry):
    registry.register(Tf32Backend())
"""


def test_tf32_bounds_are_applied_visibly(pytester: pytest.Pytester) -> None:
    suites = pytester.path / "suites"
    suites.mkdir()
    (suites / "test_matmul.py").write_text((Path(__file__).parents[1] / "suites" / "test_matmul.py").read_text())
    pytester.makeconftest(TF32_BACKEND)
    result = pytester.runpytest("suites", "--device=tf32cpu", "-k", "parity", f"{OPT_REPORT}=r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["accel device tf32cpu: fp32 runs as TF32 (*); fp32 parity is held to TF32 bounds"])
    [metric] = load_json(pytester.path / "r.json")["results"][0]["metrics"]
    assert (metric["limit"], metric["summary"]["precision"]) == (1e-3, "tf32")


@pytest.mark.workload
def test_deterministic_option_is_applied_before_workloads_and_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, torch

        def test_settings(device):
            assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
            assert torch.are_deterministic_algorithms_enabled()
            assert device.info.extra["deterministic_algorithms"] == "true"
        """
    )
    result = pytester.runpytest_subprocess(OPT_DETERMINISTIC, f"{OPT_REPORT}=r.json")
    result.assert_outcomes(passed=1)
    assert load_json(pytester.path / "r.json")["options"]["deterministic"] is True
