"""The LiteRT backend (litert:cpu, litert:gpu, litert:npu[:<vendor>][/options]): its grammar and one-line errors,
the runtime's partition log it reads, and, where ai-edge-litert is installed, real devices: the CPU path, an absent
GPU, the Intel OpenVINO NPU plugin (where the OpenVINO release it links to is installed) or the line saying which
release it needs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_accel.devices import DeviceSpecError, DeviceUnavailable
from pytest_accel.devices.litert import GRAMMAR, LiteRtBackend
from pytest_accel.devices.litert_model import delegation_from_log, plugin_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

INTEL = "litert:npu:intel_openvino/graph_backend=cpu"
#: the OpenVINO release whose libraries ai-edge-litert 2.3's Intel plugin links to (libopenvino.so.2631)
PLUGIN_OPENVINO = "2026.3.1"
NO_PLUGIN_RUNTIME = f"the Intel plugin's runtime (openvino=={PLUGIN_OPENVINO}) is not installed: tox -e litert-npu"


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("litert:cpu", "litert:cpu"),
        ("LiteRT:CPU", "litert:cpu"),
        ("litert:cpu/threads=1", "litert:cpu/threads=1"),
        ("litert:gpu", "litert:gpu"),
        ("litert:npu", "litert:npu"),
        ("litert:npu:qualcomm", "litert:npu:qualcomm"),
        ("litert:npu:Intel_OpenVINO/graph_backend=CPU", INTEL),
        ("litert:npu:intel_openvino/performance_mode=throughput,graph_backend=cpu",
         "litert:npu:intel_openvino/graph_backend=cpu,performance_mode=throughput"),
        ("litert:npu:intel_openvino/INFERENCE_PRECISION_HINT=f32",
         "litert:npu:intel_openvino/INFERENCE_PRECISION_HINT=f32"),
    ],
)
def test_grammar(spec: str, canonical: str) -> None:
    assert LiteRtBackend().parse(spec) == canonical
    assert LiteRtBackend().parse(canonical) == canonical


@pytest.mark.parametrize("spec", ["cpu", "ort:cpu", "ov:NPU", "litert", "", ":", "tflite:cpu"])
def test_specs_it_does_not_own(spec: str) -> None:
    assert LiteRtBackend().parse(spec) is None


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("litert:tpu", "unknown accelerator 'tpu' (cpu, gpu, npu)"),
        ("litert:", "unknown accelerator '' (cpu, gpu, npu)"),
        ("litert:gpu:qualcomm", "a vendor plugin ('qualcomm') is named for litert:npu only"),
        ("litert:npu:acme", "unknown NPU vendor 'acme' (LiteRT's plugins: google_tensor, intel_openvino, mediatek, "
                            "qualcomm, samsung)"),
        ("litert:npu:intel_openvino/graph_backend=tpu", "graph_backend='tpu' is not one of cpu, gpu, npu"),
        ("litert:npu:intel_openvino/speed=max", "unknown option 'speed' for intel_openvino (its options: "
                                                "graph_backend, performance_mode)"),
        ("litert:npu:qualcomm/graph_backend=cpu", "unknown option 'graph_backend' for qualcomm (its options: none)"),
        ("litert:cpu/threads=0", "threads='0' is not a positive integer"),
        ("litert:cpu/threads", "option 'threads' is not <name>=<value>"),
        ("litert:cpu/", "nothing after '/'"),
    ],
)
def test_a_bad_litert_spec_is_one_line_naming_the_bad_part_and_what_is_allowed(spec: str, problem: str) -> None:
    with pytest.raises(DeviceSpecError) as raised:
        LiteRtBackend().parse(spec)
    message = str(raised.value)
    assert message == f"LiteRT device {spec!r}: {problem}; allowed: {GRAMMAR}" and "\n" not in message


def test_declared_through_the_entry_point_a_vendor_uses() -> None:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["pytest_accel.backends"]["litert"] == \
        "pytest_accel.devices.litert:LiteRtBackend"
    assert LiteRtBackend.manifest_path is not None and LiteRtBackend.manifest_path.is_file()


#: what the runtime wrote while the Intel plugin compiled the bundled detector here (a second subgraph added, to show
#: the sum)
PARTITION_LOG = "\n".join([
    "INFO: [compiler_plugin.cc:308] Attempting to load plugin at: /x/libLiteRtCompilerPlugin_IntelOpenvino.so",
    "WARNING: [npu_registry.cc:34] NPU accelerator could not be loaded and registered: kLiteRtStatusErrorNotFound.",
    "INFO: [compiler_plugin.cc:742] Partitioned subgraph<0>, selected 275 ops, from a total of 275 ops. resulted in "
    "1 partitions.",
    "INFO: [compiler_plugin.cc:742] Partitioned subgraph<1>, selected 20 ops, from a total of 30 ops. resulted in 3 "
    "partitions.",
    "WARNING: [compiler_plugin.cc:312] Failed to load plugin at: /x/libLiteRtCompilerPlugin_Qualcomm.so with error: "
    "ERROR: [x]",
    "└ Could not load shared library /x/libLiteRtCompilerPlugin_Qualcomm.so: libQnnHtp.so: cannot open shared object "
    "file",
])


def test_the_partition_log_gives_what_the_plugin_took_over_all_subgraphs() -> None:
    delegation = delegation_from_log(PARTITION_LOG)
    assert delegation is not None
    assert (delegation.delegated_ops, delegation.total_ops, delegation.partitions) == (295, 305, 4)
    assert not delegation.complete
    assert delegation_from_log("INFO: [compiled_model.cc:1397] 0 compiler plugins were applied successfully") is None


def test_plugin_problems_name_the_missing_library_not_the_usual_noise() -> None:
    problems = plugin_problems(PARTITION_LOG)
    assert problems == [
        "WARNING: [compiler_plugin.cc:312] Failed to load plugin at: /x/libLiteRtCompilerPlugin_Qualcomm.so with "
        "error: ERROR: [x]",
        "└ Could not load shared library /x/libLiteRtCompilerPlugin_Qualcomm.so: libQnnHtp.so: cannot open shared "
        "object file",
    ]


# -- real devices, where ai-edge-litert is installed ---------------------------------------------------------------


@pytest.fixture(scope="module")
def litert() -> Any:
    return pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pytest-accel[litert])")


@pytest.fixture(scope="module")
def litert_cpu(litert: Any) -> Any:
    return LiteRtBackend().open("litert:cpu")


def _openvino_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("openvino")
    except metadata.PackageNotFoundError:
        return None


@pytest.mark.workload  # loads the LiteRT runtime and compiles models (about 2 s)
def test_the_cpu_path_runs_fp32_with_the_suites_threads(litert_cpu: Any) -> None:
    from pytest_accel import environment

    assert litert_cpu.key.startswith("litert-cpu-") and litert_cpu.id == "litert-cpu"
    assert litert_cpu.threads == environment.cpu_cores()  # not the one thread of LiteRT's hardware_accel= shortcut
    assert litert_cpu.options().cpu_options.num_threads == environment.cpu_cores()
    assert litert_cpu.effective_precision("fp32") == "fp32" and litert_cpu.info.extra["fp32_runs_in"] == "fp32"
    assert litert_cpu.is_host_cpu and not litert_cpu.host_in_key
    assert "ai-edge-litert" in litert_cpu.info.runtime


@pytest.mark.workload  # loads the LiteRT runtime and compiles models (about 2 s)
def test_a_thread_count_is_a_setting_of_its_own_baselines(litert: Any, litert_cpu: Any) -> None:
    one = LiteRtBackend().open("litert:cpu/threads=1")
    assert one.threads == 1 and one.key.startswith("litert-cpu-t1-") and one.key != litert_cpu.key


@pytest.mark.workload  # loads the LiteRT runtime and compiles models (about 2 s)
def test_a_compiled_model_computes_what_float64_does(litert_cpu: Any) -> None:
    from pytest_accel.devices.litert_model import probe_model

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((64, 64), dtype=np.float32), rng.standard_normal((64, 64), dtype=np.float32)
    compiled = litert_cpu.compile_model(probe_model(b.T), "a 64x64 matmul")
    [product] = compiled.run([a])
    np.testing.assert_allclose(product, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4)
    assert compiled.delegation() is None  # the CPU itself: no accelerator to delegate to
    assert compiled.execution_precision().compute == {"fp32": 1}
    with pytest.raises(ValueError, match=r"input of shape \(2, 64\); it was compiled for \(64, 64\)"):
        compiled.run([a[:2]])


@pytest.mark.workload  # loads the LiteRT runtime and compiles models (about 2 s)
def test_an_absent_gpu_is_unavailable_with_the_runtimes_reason(litert: Any) -> None:
    try:
        device = LiteRtBackend().open("litert:gpu")
    except DeviceUnavailable as error:
        assert error.reason.startswith("LiteRT cannot compile the calibration probe for it: ")
        assert error.reason.endswith("; available: litert:cpu") and "\n" not in error.reason
        return
    assert device.key.startswith("litert-gpu-")  # a machine with a GPU LiteRT can use


@pytest.mark.workload  # loads the LiteRT runtime and compiles models (about 2 s)
@pytest.mark.skipif(_openvino_version() in (None, PLUGIN_OPENVINO), reason="needs an OpenVINO other than the plugin's")
def test_the_intel_plugin_names_the_openvino_release_it_needs(litert: Any) -> None:
    with pytest.raises(DeviceUnavailable) as raised:
        LiteRtBackend().open(INTEL)
    assert "libopenvino.so.2631" in raised.value.reason
    assert f"(.2631: openvino 2026.3.1), here openvino {_openvino_version()}" in raised.value.reason


@pytest.mark.workload  # loads the LiteRT runtime and compiles models (about 2 s)
@pytest.mark.skipif(_openvino_version() != PLUGIN_OPENVINO, reason=NO_PLUGIN_RUNTIME)
def test_the_intel_plugin_takes_the_probe_whole_and_its_precision_is_measured(litert: Any) -> None:
    device = LiteRtBackend().open(INTEL)
    from pytest_accel.devices.litert_model import probe_model

    compiled = device.compile_model(probe_model(), "the probe")
    delegation = compiled.delegation()
    assert delegation is not None and delegation.complete and delegation.partitions == 1
    assert device.effective_precision("fp32") in ("fp32", "bf16", "fp16")
    assert compiled.execution_precision().dominant == device.effective_precision("fp32")
    assert device.key.startswith("litert-npu-intel-openvino-graph-backend-cpu-")
    assert device.info.runtime["openvino"] == PLUGIN_OPENVINO


def test_a_failed_conversion_leaves_no_model_under_the_name(tmp_path: Path) -> None:
    from pytest_accel.devices.litert_model import write_atomically

    target = tmp_path / "litert" / "model.tflite"

    def half_written(path: Path) -> None:
        path.write_bytes(b"TFL3 half")
        raise KeyboardInterrupt  # the run stopped mid-conversion

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, half_written)
    assert not target.exists() and list(target.parent.iterdir()) == []
    write_atomically(target, lambda path: path.write_bytes(b"TFL3 whole"))
    assert target.read_bytes() == b"TFL3 whole" and target.stat().st_mode & 0o777 == 0o644
