"""Dtypes a device only emulates (fp16 on a CPU without half-precision arithmetic) are left out of the suites' default
dtype lists with the evidence, and run when the user lists them."""

from __future__ import annotations

import pytest

from pytest_accel import environment
from pytest_accel.devices.torch import TorchBackend
from pytest_accel.errors import WorkloadUnsupported
from pytest_accel.suite_options import OPT_YOLO_DTYPES, skip_emulated_by_default
from tests.helpers import copy_suites

#: A CPU device that says it emulates bf16 (one of the gesture suite's default dtypes), whatever this CPU reports.
HALF_EMULATED = """
from pytest_accel.devices import Backend
from pytest_accel.devices.torch import TorchDevice


class HalfEmulatedCpu(TorchDevice):
    def __init__(self):
        super().__init__("cpu")
        self.spec = "halfcpu"

    @property
    def emulated_dtypes(self):
        return {"bf16": "no bf16 arithmetic"}


class HalfEmulatedBackend(Backend):
    name = "halfemulated"
    grammar = "halfcpu"

    def parse(self, spec):
        return spec if spec == "halfcpu" else None

    def discover(self):
        return []

    def open(self, spec):
        return HalfEmulatedCpu()


def pytest_accel_register_backends(registry):
    registry.register(HalfEmulatedBackend())
"""


@pytest.mark.parametrize(("flags", "emulated"), [
    (frozenset({"avx2", "avx512f"}), {"fp16", "bf16"}),
    (frozenset({"avx512f", "avx512_bf16"}), {"fp16"}),  # this project's EPYC
    (frozenset({"amx_bf16", "amx_fp16"}), set()),
    (frozenset({"asimd", "asimdhp", "bf16"}), set()),  # an Arm CPU with both
    (frozenset(), set()),  # flags unknown: nothing is claimed
])
def test_the_cpu_flags_decide_what_the_torch_cpu_emulates(monkeypatch: pytest.MonkeyPatch, flags: frozenset[str],
                                                          emulated: set[str]) -> None:
    monkeypatch.setattr(environment, "cpu_flags", lambda: flags)
    device = TorchBackend().open("cpu")
    assert set(device.emulated_dtypes) == emulated
    for why in device.emulated_dtypes.values():
        assert why.startswith("the CPU reports no ")


def test_an_emulated_default_dtype_skips_saying_why_and_a_listed_one_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "cpu_flags", lambda: frozenset({"avx512f"}))
    device = TorchBackend().open("cpu")
    with pytest.raises(WorkloadUnsupported, match=r"^fp16 on cpu is emulated \(the CPU reports no avx512_fp16, "
                                                  r"amx_fp16 or asimdhp\): not run by default; --yolo-dtypes=fp16 "
                                                  r"runs it$"):
        skip_emulated_by_default(device, "fp16", False, OPT_YOLO_DTYPES)
    skip_emulated_by_default(device, "fp16", True, OPT_YOLO_DTYPES)  # listed: runs
    skip_emulated_by_default(device, "fp32", False, OPT_YOLO_DTYPES)


@pytest.mark.workload  # the gesture suite's first training step, on the generated data
def test_the_suites_skip_an_emulated_dtype_only_by_default(suite_project: pytest.Pytester) -> None:
    copy_suites(suite_project.path, "test_gesture.py", extra_conftest=HALF_EMULATED)
    args = ("suites/test_gesture.py", "--device=halfcpu", "-k", "gradient", "-rs")
    by_default = suite_project.runpytest(*args)
    by_default.assert_outcomes(passed=1, skipped=1)
    by_default.stdout.fnmatch_lines(["SKIPPED * bf16 on halfcpu is emulated (no bf16 arithmetic): not run by "
                                     "default; --gesture-dtypes=bf16 runs it"])
    listed = suite_project.runpytest(*args, "--gesture-dtypes=fp32,bf16")
    listed.assert_outcomes(passed=2)
