"""The backend authors' test kit (pytest_accel.testing), run as a vendor runs it: a test module subclasses
BackendContract and pytest collects the inherited tests. The built-in backends and the example package keep the
contract; honest fakes of an asynchronous NPU (a worker thread running a queue, as a device does) show that a
synchronize that does not wait, and each other broken part, fails exactly its own test."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("openvino")  # loaded here, not first inside an in-process run that would drop it afterwards

EXAMPLE = Path(__file__).parents[1] / "examples" / "accel_hostblas"

ALL_TESTS = {
    "test_valid_specs_parse_to_a_canonical_spec", "test_invalid_specs_are_not_claimed",
    "test_grammar_is_one_line_naming_the_spec_forms", "test_parsing_foreign_specs_imports_nothing",
    "test_importing_the_backend_imports_no_heavy_library", "test_discover_returns_canonical_specs",
    "test_discovered_devices_open", "test_absent_device_raises_device_unavailable",
    "test_absent_device_message_says_what_is_available", "test_info_describes_the_device",
    "test_key_is_a_safe_folder_name", "test_key_is_stable_across_opens", "test_keys_differ_between_distinct_devices",
    "test_id_is_safe_in_test_ids_and_file_names", "test_synchronize_returns_on_an_idle_device",
    "test_synchronize_waits_for_queued_work", "test_calibration_probe_runs_in_bounded_time",
    "test_calibration_probe_is_steady", "test_energy_meter_is_none_with_a_reason_or_counts_up",
    "test_supported_dtypes_are_known_names", "test_supported_dtypes_really_run",
    "test_prepare_module_computes_the_same",
}


def run_contract(pytester: pytest.Pytester, *args: str) -> dict[str, tuple[str, str]]:
    """Test name -> (outcome, the failure or skip text) for one in-process run."""
    reprec = pytester.inline_run("-p", "no:cacheprovider", *args)
    outcomes: dict[str, tuple[str, str]] = {}
    for outcome, reports in zip(("passed", "skipped", "failed"), reprec.listoutcomes(), strict=True):
        for report in reports:
            outcomes[report.nodeid.rsplit("::", 1)[-1]] = (outcome, report.longreprtext)
    assert set(outcomes) == ALL_TESTS, "every part of the contract is collected and run once"
    return outcomes


def named(outcomes: dict[str, tuple[str, str]], outcome: str) -> set[str]:
    return {name for name, (got, _) in outcomes.items() if got == outcome}


def test_importing_the_kit_imports_no_heavy_library() -> None:
    heavy = ("torch", "onnxruntime", "openvino", "onnx", "ultralytics")
    code = f"import sys, pytest_accel.testing; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == ""


BUILT_IN_CONTRACTS = {
    "torch": """
        from pytest_accel.devices.torch import TorchBackend
        from pytest_accel.testing import BackendContract

        class TestTorch(BackendContract):
            backend = TorchBackend()
            valid_specs = ["cpu", "cuda", "cuda:1", "mps", "xpu:0"]
            invalid_specs = ["cuda:x", "cuda:", "CPU", "ort:cpu", "ov:CPU"]
            absent_spec = "cuda:99"
            distinct_specs = ["cpu", "cuda"]
        """,
    "onnxruntime": """
        from pytest_accel.devices.onnxruntime import OrtBackend
        from pytest_accel.testing import BackendContract

        class TestOrt(BackendContract):
            backend = OrtBackend()
            valid_specs = ["ort:cpu", "ort:CPUExecutionProvider", "ort:cuda", "ort:AcmeExecutionProvider"]
            invalid_specs = ["ort", "ort:", "cpu", "ort:not a provider", "ov:CPU"]
            absent_spec = "ort:qnn"
        """,
    "openvino": """
        from pytest_accel.devices.openvino import OpenVinoBackend
        from pytest_accel.testing import BackendContract

        class TestOpenVino(BackendContract):
            backend = OpenVinoBackend()
            valid_specs = ["ov:CPU", "ov:cpu/fp32", "ov:GPU.1", "ov:HETERO:NPU,CPU"]
            invalid_specs = ["ov:", "ov", "ov:CPU/int4", "ov:CPU:GPU", "cpu", "ort:cpu"]
            absent_spec = "ov:NPU"
            distinct_specs = ["ov:CPU", "ov:CPU/f32"]  # a pinned precision changes results: a folder of its own
        """,
}
HOST_SYNCHRONOUS = "runs work host-synchronously"


@pytest.mark.parametrize(
    ("backend", "skipped"),
    [
        # only cpu opens here, and PyTorch's CPU ops finish before the call returns
        ("torch", {"test_keys_differ_between_distinct_devices": "fewer than two",
                   "test_synchronize_waits_for_queued_work": "PyTorch runs CPU ops on the calling thread"}),
        ("onnxruntime", {"test_keys_differ_between_distinct_devices": "none given",
                         "test_synchronize_waits_for_queued_work": HOST_SYNCHRONOUS,
                         "test_prepare_module_computes_the_same": "does not run PyTorch"}),
        ("openvino", {"test_synchronize_waits_for_queued_work": HOST_SYNCHRONOUS,
                      "test_prepare_module_computes_the_same": "does not run PyTorch"}),
    ],
)
def test_built_in_backends_keep_the_contract(pytester: pytest.Pytester, backend: str, skipped: dict[str, str]) -> None:
    pytester.makepyfile(**{f"test_{backend}_contract": textwrap.dedent(BUILT_IN_CONTRACTS[backend])})
    outcomes = run_contract(pytester)
    assert named(outcomes, "failed") == set(), {name: text for name, (_, text) in outcomes.items() if text}
    assert named(outcomes, "skipped") == set(skipped)
    for name, reason in skipped.items():
        assert reason in outcomes[name][1]


def test_the_example_package_runs_the_kit_in_its_own_tests(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True)
    outcomes = run_contract(pytester)  # from the package's folder, with its own pytest settings
    assert named(outcomes, "failed") == set(), {name: text for name, (_, text) in outcomes.items() if text}
    assert named(outcomes, "skipped") == {
        "test_absent_device_raises_device_unavailable", "test_absent_device_message_says_what_is_available",
        "test_keys_differ_between_distinct_devices", "test_synchronize_waits_for_queued_work",
        "test_prepare_module_computes_the_same",
    }
    assert "numpy" in outcomes["test_synchronize_waits_for_queued_work"][1]


#: A fake NPU whose work really is asynchronous: launches return at once and a worker thread runs the queue in order,
#: as a device does; synchronize() waits for the queue to drain. Broken variants keep everything else honest.
FAKE_NPU = """
import queue
import re
import threading
import time

import numpy as np

from pytest_accel.devices import Backend, Device, DeviceInfo, DeviceUnavailable
from pytest_accel.testing import BackendContract


class QueueDevice(Device):
    runtime = "acme"

    def __init__(self, spec, backend_name):
        super().__init__(spec, backend_name)
        self.jobs = queue.Queue()
        threading.Thread(target=self._run_jobs, daemon=True).start()

    def _run_jobs(self):
        while True:
            seconds, finished = self.jobs.get()
            time.sleep(seconds)
            finished.set()
            self.jobs.task_done()

    def launch(self, seconds):
        finished = threading.Event()
        self.jobs.put((seconds, finished))
        return finished.is_set

    def synchronize(self):
        self.jobs.join()

    def describe(self):
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="Acme", model="Fake NPU 1",
                          runtime={"acme-runtime": "1.0"})

    def calibration_probe(self):
        return lambda: self.launch(0.0005)


class QueueBackend(Backend):
    name = "fakenpu"
    grammar = "fakenpu or fakenpu:N"
    device_type = QueueDevice

    def parse(self, spec):
        match = re.fullmatch(r"fakenpu(?::(\\d+))?", spec)
        return None if match is None else f"fakenpu:{match.group(1) or 0}"

    def discover(self):
        return ["fakenpu:0", "fakenpu:1"]

    def open(self, spec):
        if spec not in self.discover():
            raise DeviceUnavailable(spec, f"the fake driver has {', '.join(self.discover())}")
        return self.device_type(spec, self.name)


class FakeNpuContract(BackendContract):
    valid_specs = ["fakenpu", "fakenpu:1"]
    invalid_specs = ["fakenpu:x", "cuda", "npu"]
    absent_spec = "fakenpu:99"

    def launch_async_work(self, device):
        return device.launch(0.05)

    def run_matmul(self, device, a, b, dtype):
        return a @ b if dtype == "fp32" else None
"""

HONEST_CONTRACT = """
from fake_npu import FakeNpuContract, QueueBackend

class TestFakeNpu(FakeNpuContract):
    backend = QueueBackend()
"""

BROKEN_CONTRACT = """
import re

from fake_npu import FakeNpuContract, QueueBackend, QueueDevice

class NoWaitDevice(QueueDevice):
    def synchronize(self):
        pass  # returns while launched work is still queued

    @property
    def key(self):
        return "Acme Fake/NPU 1"


class BrokenBackend(QueueBackend):
    device_type = NoWaitDevice

    def parse(self, spec):
        match = re.fullmatch(r"([a-z]+)(?::(\\d+))?", spec)  # too loose: claims every bare name
        return None if match is None else f"{match.group(1)}:{match.group(2) or 0}"

    def open(self, spec):
        if spec not in self.discover():
            raise RuntimeError("no such device")
        return self.device_type(spec, self.name)


class TestBrokenNpu(FakeNpuContract):
    backend = BrokenBackend()
"""

#: the parts the fakes cannot reach: no distinct specs given, no PyTorch to prepare modules for
FAKE_SKIPS = {"test_keys_differ_between_distinct_devices", "test_prepare_module_computes_the_same"}


@pytest.fixture
def fake_npu(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(fake_npu=FAKE_NPU)
    return pytester


def test_an_honest_asynchronous_fake_keeps_the_contract(fake_npu: pytest.Pytester) -> None:
    fake_npu.makepyfile(test_fake_contract=HONEST_CONTRACT)
    outcomes = run_contract(fake_npu)
    assert named(outcomes, "failed") == set(), {name: text for name, (_, text) in outcomes.items() if text}
    assert named(outcomes, "skipped") == FAKE_SKIPS
    assert outcomes["test_synchronize_waits_for_queued_work"][0] == "passed"


def test_a_broken_fake_fails_exactly_the_parts_it_breaks(fake_npu: pytest.Pytester) -> None:
    fake_npu.makepyfile(test_broken_contract=BROKEN_CONTRACT)
    outcomes = run_contract(fake_npu)
    failures = {name: text for name, (outcome, text) in outcomes.items() if outcome == "failed"}
    assert set(failures) == {
        "test_synchronize_waits_for_queued_work",
        "test_invalid_specs_are_not_claimed",
        "test_absent_device_raises_device_unavailable",
        "test_absent_device_message_says_what_is_available",
        "test_key_is_a_safe_folder_name",
    }
    assert named(outcomes, "skipped") == FAKE_SKIPS
    assert "synchronize() returned after" in failures["test_synchronize_waits_for_queued_work"]
    assert "while the work queued before it was still running" in failures["test_synchronize_waits_for_queued_work"]
    assert "parse('cuda') returned 'cuda:0'; the contract requires None" in (
        failures["test_invalid_specs_are_not_claimed"])
    assert "open('fakenpu:99') raised RuntimeError: no such device; the contract requires DeviceUnavailable" in (
        failures["test_absent_device_raises_device_unavailable"])
    assert "names none of the devices this machine has (fakenpu:0, fakenpu:1)" in (
        failures["test_absent_device_message_says_what_is_available"])
    assert "key is 'Acme Fake/NPU 1'; the contract requires lower-case letters" in (
        failures["test_key_is_a_safe_folder_name"])



IMPORTING_CONTRACT = """
import filelock  # stands for an SDK imported with the backend's module

from fake_npu import FakeNpuContract, QueueBackend

class EagerBackend(QueueBackend):
    def parse(self, spec):
        import psutil  # stands for an SDK imported to look at any spec at all
        return super().parse(spec)

class TestEagerNpu(FakeNpuContract):
    backend = EagerBackend()
    heavy_modules = ("filelock",)
"""


def test_imports_of_the_backend_and_its_parse_are_seen_from_a_fresh_interpreter(fake_npu: pytest.Pytester) -> None:
    """The test process has imported everything long before: only a fresh interpreter shows what parse imports."""
    fake_npu.makepyfile(test_eager_contract=IMPORTING_CONTRACT)
    outcomes = run_contract(fake_npu)
    failures = {name: text for name, (outcome, text) in outcomes.items() if outcome == "failed"}
    assert set(failures) == {"test_parsing_foreign_specs_imports_nothing",
                             "test_importing_the_backend_imports_no_heavy_library"}
    assert "parse('auto') imported psutil" in failures["test_parsing_foreign_specs_imports_nothing"]
    assert "(test_eager_contract) imported filelock" in failures["test_importing_the_backend_imports_no_heavy_library"]

LYING_TORCH_CONTRACT = """
from pytest_accel.devices.torch import TorchBackend, TorchDevice
from pytest_accel.testing import BackendContract


class LyingCpu(TorchDevice):
    @property
    def supported_dtypes(self):
        return ("fp32", "fp16", "fp8")

    def effective_precision(self, dtype):
        return "fp32"  # claims fp16 work keeps fp32's precision

    def prepare_module(self, module):
        import torch

        low = module.to(torch.bfloat16)  # silently computes in bf16
        return lambda inputs: low(inputs.to(torch.bfloat16)).float()


class LyingBackend(TorchBackend):
    name = "lying"
    grammar = "lyingcpu"

    def parse(self, spec):
        return spec if spec == "lyingcpu" else None

    def discover(self):
        return ["lyingcpu"]

    def open(self, spec):
        device = LyingCpu("cpu")
        device.spec, device.backend_name = spec, self.name
        return device


class TestLyingCpu(BackendContract):
    backend = LyingBackend()
    valid_specs = ["lyingcpu"]
"""


def test_dtype_and_prepare_module_lies_of_a_torch_device_fail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_lying_contract=LYING_TORCH_CONTRACT)
    outcomes = run_contract(pytester)
    failures = {name: text for name, (outcome, text) in outcomes.items() if outcome == "failed"}
    assert set(failures) == {"test_supported_dtypes_are_known_names", "test_supported_dtypes_really_run",
                             "test_prepare_module_computes_the_same"}
    assert "supported_dtypes is ('fp32', 'fp16', 'fp8')" in failures["test_supported_dtypes_are_known_names"]
    dtype_failure = failures["test_supported_dtypes_really_run"]
    assert "a fp16 matmul on lyingcpu is off by" in dtype_failure
    assert "fp32 (what effective_precision says it runs in) allows 1e-04" in dtype_failure
    assert "the prepared module computes something else" in failures["test_prepare_module_computes_the_same"]


def test_a_contract_without_a_backend_says_what_to_set(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_accel.testing import BackendContract

        class TestForgotten(BackendContract):
            valid_specs = ["npu"]
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "test_valid_specs")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TestForgotten.backend must be an instance of your Backend subclass, got None*"])
