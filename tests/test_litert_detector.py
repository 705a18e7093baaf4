"""The bundled detector on LiteRT, for real: converted once with litert-torch into the workloads' cache and reused,
run with a static batch, its parity with PyTorch, the detection suite's parity test on litert:cpu, and on the Intel
OpenVINO NPU plugin (where the OpenVINO release it links to is installed): the whole model in one partition, and a
model with operators the plugin cannot compile failing in words instead of running on the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_accel.errors import DeviceFailure
from tests.helpers import copy_suites, load_json
from tests.test_litert import INTEL, NO_PLUGIN_RUNTIME, PLUGIN_OPENVINO, _openvino_version

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pytest-accel[litert])")
pytest.importorskip("ultralytics")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.workload
needs_intel_plugin = pytest.mark.skipif(
    _openvino_version() != PLUGIN_OPENVINO,
    reason=NO_PLUGIN_RUNTIME)


def _runner(spec: str, cache: Path) -> Any:
    from pytest_accel.devices.litert import LiteRtBackend
    from pytest_accel.workloads.detection.model import BUNDLED_WEIGHTS, DetectorSource
    from pytest_accel.workloads.detection.runners import make_runner

    source = DetectorSource(BUNDLED_WEIGHTS, 320, cache)
    return make_runner(LiteRtBackend().open(spec), source, "fp32", max_batch=4), source


def _parity(runner: Any, source: Any) -> float:
    images = np.random.default_rng(0).random((2, 3, 320, 320), dtype=np.float32)
    output = runner.to_host(runner.forward(runner.to_device(images)))  # two pieces of the static batch
    with torch.inference_mode():
        expected = source.torch_module()(torch.from_numpy(images))[0].numpy()
    return float(np.linalg.norm(output - expected) / np.linalg.norm(expected))


def test_the_detector_is_converted_once_cached_and_matches_pytorch(workload_cache: Path) -> None:
    runner, source = _runner("litert:cpu", workload_cache)
    [model] = (workload_cache / "detection" / "compiled" / "litert").glob(f"{source.digest}-320-b1-*.tflite")
    made = model.stat().st_mtime_ns
    again, _ = _runner("litert:cpu", workload_cache)
    assert again.device.conversion_seconds is None and model.stat().st_mtime_ns == made  # reused, not converted
    assert runner.static_batch == 1 and runner.delegation() is None
    assert runner.execution_precision().compute == {"fp32": 64}  # the detector's 64 convolutions, in fp32
    assert _parity(runner, source) < 1e-5


def test_the_suites_parity_on_litert_cpu(suite_project: pytest.Pytester) -> None:
    copy_suites(suite_project.path, "test_detection.py")
    result = suite_project.runpytest("suites/test_detection.py", "--device=litert:cpu", "--yolo-dtypes=fp32",
                                     "-k", "parity", "--accel-report=r.json")
    result.assert_outcomes(passed=1)
    [entry] = load_json(suite_project.path / "r.json")["results"]
    metrics = {m["name"]: m for m in entry["metrics"]}
    assert metrics["detection.head_rel_l2_error"]["summary"]["precision"] == "fp32"
    assert metrics["detection.compute_below_fp32"]["value"] == 0
    assert metrics["detection.box_match"]["value"] == 1


@needs_intel_plugin
def test_the_intel_plugin_takes_the_whole_detector_in_one_partition(workload_cache: Path) -> None:
    runner, source = _runner(INTEL, workload_cache)
    delegation = runner.delegation()
    assert delegation is not None and delegation.complete and delegation.partitions == 1
    precision = runner.device.effective_precision("fp32")
    assert runner.execution_precision().compute == {precision: 64}
    assert _parity(runner, source) < (3e-2 if precision == "bf16" else 5e-3)  # the suite's bound for what ran


@needs_intel_plugin
def test_operators_the_plugin_cannot_compile_fail_instead_of_running_on_the_host(workload_cache: Path) -> None:
    from pytest_accel.devices.litert import LiteRtBackend

    class SortAndSum(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return torch.cumsum(x, dim=1) + torch.sort(x, dim=1).values

    device = LiteRtBackend().open(INTEL)
    with pytest.raises(DeviceFailure, match=r"^litert:npu:intel_openvino/graph_backend=cpu: LiteRT cannot compile "
                                            r"sort-and-sum-b8-litert-torch.*\.tflite for it: ") as raised:
        device.compile_torch(SortAndSum().eval(), (torch.zeros(8, 8),), cache_key="sort-and-sum",
                             cache_dir=workload_cache / "tests")
    assert "\n" not in str(raised.value) and "IntelOpenVINO compiler plugin" in str(raised.value)
