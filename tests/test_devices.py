"""--device grammar, ids, auto, unavailable devices, device keys and the report header."""

from __future__ import annotations

import pytest

from pytest_accel.devices import BackendRegistry, DeviceSpecError, normalise_key_part
from pytest_accel.devices.onnxruntime import OrtBackend
from pytest_accel.devices.torch import TorchBackend
from pytest_accel.options import OPT_DEVICE, OPT_SKIP_UNAVAILABLE

DEVICE_TEST = """
def test_uses_device(device):
    print("RAN ON", device.spec, device.key)
"""


@pytest.fixture
def registry() -> BackendRegistry:
    registry = BackendRegistry()
    registry.register(TorchBackend())
    registry.register(OrtBackend())
    return registry


@pytest.mark.parametrize(
    ("spec", "backend", "canonical"),
    [
        ("cpu", "torch", "cpu"),
        ("cuda", "torch", "cuda"),
        ("cuda:3", "torch", "cuda:3"),
        ("mps", "torch", "mps"),
        ("xpu", "torch", "xpu"),
        ("xpu:1", "torch", "xpu:1"),
        ("npu", "torch", "npu"),
        ("rbln:1", "torch", "rbln:1"),
        ("hpu:0", "torch", "hpu:0"),
        ("ort:cpu", "onnxruntime", "ort:cpu"),
        ("ort:CUDA", "onnxruntime", "ort:cuda"),
        ("ort:tensorrt", "onnxruntime", "ort:tensorrt"),
        ("ort:openvino", "onnxruntime", "ort:openvino"),
        ("ort:qnn", "onnxruntime", "ort:qnn"),
        ("ort:coreml", "onnxruntime", "ort:coreml"),
        ("ort:CUDAExecutionProvider", "onnxruntime", "ort:cuda"),
        ("ort:AcmeNpuExecutionProvider", "onnxruntime", "ort:AcmeNpuExecutionProvider"),
    ],
)
def test_grammar(registry: BackendRegistry, spec: str, backend: str, canonical: str) -> None:
    owner, parsed = registry.parse(spec)
    assert (owner.name, parsed) == (backend, canonical)


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "ort:", "ort:nosuch", "CPU", "cuda:1:2", "npu:x", "npux", "bogus"])
def test_unknown_specs_are_rejected_listing_the_backends(registry: BackendRegistry, spec: str) -> None:
    with pytest.raises(DeviceSpecError) as error:
        registry.parse(spec)
    message = str(error.value)
    assert repr(spec) in message and "torch: cpu, cuda" in message and "onnxruntime: ort:<provider>" in message


@pytest.mark.workload  # a fresh interpreter imports torch
def test_privateuse1_name_is_accepted_once_renamed() -> None:
    import subprocess
    import sys

    code = (
        "import torch; torch.utils.rename_privateuse1_backend('acmenpu');"
        "from pytest_accel.devices.torch import TorchBackend; b = TorchBackend();"
        "print(b.parse('acmenpu'), b.parse('acmenpu:1'), b.parse('othernpu'))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["acmenpu", "acmenpu:1", "None"]


def test_key_normalisation() -> None:
    assert normalise_key_part("Intel(R) Xeon(R) CPU @ 2.20GHz") == "intel-xeon"
    assert normalise_key_part("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert normalise_key_part("AMD EPYC 7B13 64-Core Processor") == "amd-epyc-7b13"


def _key_on_host(monkeypatch: pytest.MonkeyPatch, facts: dict[str, object], cores: int) -> str:
    from pytest_accel import environment
    from pytest_accel.devices.torch import TorchBackend

    environment.cpu_facts.cache_clear()
    environment.cpu_model.cache_clear()
    monkeypatch.setattr(environment, "cpu_facts", lambda: facts)
    monkeypatch.setattr(environment, "cpu_cores", lambda: cores)
    try:
        return TorchBackend().open("cpu").key
    finally:
        environment.cpu_model.cache_clear()


@pytest.mark.parametrize(
    ("facts", "cores", "key"),
    [
        # what py-cpuinfo reports on the hosts this project's runners use, and on macOS and Windows
        ({"vendor_id_raw": "GenuineIntel", "brand_raw": "Intel(R) Xeon(R) Processor"}, 2, "cpu-intel-xeon-2c"),
        ({"vendor_id_raw": "AuthenticAMD", "brand_raw": "AMD EPYC"}, 2, "cpu-amd-epyc-2c"),
        ({"vendor_id_raw": "", "brand_raw": "Apple M2 Pro"}, 10, "cpu-apple-m2-pro-10c"),
        ({"vendor_id_raw": "GenuineIntel", "brand_raw": "11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz"}, 8,
         "cpu-intel-11th-gen-core-i7-1185g7-8c"),
    ],
)
def test_host_keys_come_from_py_cpuinfo(monkeypatch: pytest.MonkeyPatch, facts: dict[str, object], cores: int,
                                        key: str) -> None:
    assert _key_on_host(monkeypatch, facts, cores) == key


def test_host_key_here_names_the_cpu_proc_names() -> None:
    """On Linux py-cpuinfo reads the same /proc/cpuinfo the kernel fills: the key is the one baselines already use."""
    from pathlib import Path

    from pytest_accel import environment

    proc = Path("/proc/cpuinfo")
    if not proc.exists():
        pytest.skip("no /proc/cpuinfo on this host")
    names = [line.partition(":")[2].strip() for line in proc.read_text().splitlines() if line.startswith("model name")]
    vendor, model = environment.cpu_model()
    assert names and normalise_key_part(f"{vendor} {model}") == normalise_key_part(names[0])
    assert environment.host_memory_bytes() and environment.host_memory_bytes() > 2**30


def test_cpu_and_ort_cpu_ids_keys_and_header(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DEVICE_TEST)
    result = pytester.runpytest("-v", "-s", f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "accel device cpu: cpu-* (*cores*torch *)",
            "accel device ort:cpu: ort-cpu-* (*onnxruntime *)",
            "*test_uses_device?cpu? RAN ON cpu cpu-*",
            "*test_uses_device?ort-cpu? RAN ON ort:cpu ort-cpu-*",
        ]
    )
    assert "RAN ON cpu cpu-" in result.stdout.str() and "RAN ON ort:cpu ort-cpu-" in result.stdout.str()


def test_unknown_device_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DEVICE_TEST)
    result = pytester.runpytest(f"{OPT_DEVICE}=tpu9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --device='tpu9' is not a device any registered backend knows; registered: "
                                 "torch: cpu, cuda*; onnxruntime: ort:<provider>*"])


def test_unavailable_device_errors_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DEVICE_TEST)
    result = pytester.runpytest(f"{OPT_DEVICE}=cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {OPT_DEVICE}=cuda is not available: torch * finds no usable CUDA GPU; available: cpu; pass "
         f"{OPT_SKIP_UNAVAILABLE} *"]
    )


def test_unavailable_device_skips_with_the_reason_when_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DEVICE_TEST)
    result = pytester.runpytest("-rs", f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=cuda", f"{OPT_DEVICE}=ort:cuda",
                                OPT_SKIP_UNAVAILABLE)
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "accel device cuda: unavailable, its tests skip (torch * finds no usable CUDA GPU; available: cpu)",
            "SKIPPED * cuda is not available: torch * finds no usable CUDA GPU; available: cpu",
            "SKIPPED * ort:cuda is not available: onnxruntime * has no CUDAExecutionProvider; available: *",
        ]
    )


def test_auto_selects_every_available_device(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DEVICE_TEST)
    from pytest_accel.plugin import register_entry_point_backends

    registry = BackendRegistry()
    for backend in (TorchBackend(), OrtBackend()):
        registry.register(backend)
    register_entry_point_backends(registry)  # those installed here: OpenVINO's, ExecuTorch's, ...
    found = [spec for _, spec in registry.discover()]
    assert {"cpu", "ort:cpu"} <= set(found)  # every machine: the CPU through torch and through ONNX Runtime
    result = pytester.runpytest("-v", f"{OPT_DEVICE}=auto")
    result.assert_outcomes(passed=len(found))
    result.stdout.fnmatch_lines([f"*test_uses_device?{spec.replace(':', '-')}? PASSED*" for spec in found],
                                consecutive=False)


def test_auto_with_other_specs_conflicts(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(f"{OPT_DEVICE}=auto", f"{OPT_DEVICE}=cpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --device=auto selects every available device; do not combine it with "
                                 "--device=cpu"])


def test_default_device_is_cpu(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DEVICE_TEST)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["accel: no --device given; tests that take `device` run on cpu",
                                 "*test_uses_device?cpu? PASSED*"])


def test_accel_only_marker_limits_devices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.accel_only("ort:*")
        def test_ort_only(device):
            assert device.runtime == "onnxruntime"

        @pytest.mark.accel_only("torch")
        def test_torch_only(device):
            assert device.runtime == "torch"
        """
    )
    result = pytester.runpytest("-rs", f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(
        ["SKIPPED * accel_only(ort:*): not for cpu", "SKIPPED * accel_only(torch): not for ort:cpu"]
    )
