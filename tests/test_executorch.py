"""The ExecuTorch backend (et:<delegate>), run for real with the XNNPACK delegate where executorch is installed: the
grammar and its errors, registration, absent delegates named with what they need, the backend contract, and the
detection suite's delegation coverage with and without a manifest's floor."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from pytest_accel.devices import Device, DeviceUnavailable
from pytest_accel.devices.executorch import DELEGATES, ExecuTorchBackend, parse_spec
from pytest_accel.options import OPT_DEVICE, OPT_HTML, OPT_MANIFEST, OPT_REPORT, OPT_SKIP_UNAVAILABLE
from pytest_accel.testing import BackendContract
from tests.helpers import REPO, copy_suites, literal, load_json

INSTALLED = importlib.util.find_spec("executorch") is not None
needs_executorch = pytest.mark.skipif(not INSTALLED, reason="executorch is not installed (pytest-accel[executorch])")


@pytest.mark.parametrize(("spec", "canonical"), [("et:xnnpack", "et:xnnpack"), ("ET:XNNPACK", "et:xnnpack"),
                                                 ("et:qnn", "et:qnn"), ("et: coreml", "et:coreml"),
                                                 ("et:arm", "et:arm")])
def test_grammar(spec: str, canonical: str) -> None:
    assert parse_spec(spec) == canonical


@pytest.mark.parametrize("spec", ["et", "et:", "et:xnn", "et:xnnpack/fp16", "ort:xnnpack", "xnnpack", "ov:CPU"])
def test_specs_it_does_not_own_or_cannot_mean(spec: str) -> None:
    assert parse_spec(spec) is None


@pytest.mark.skipif(not any(e.name == "executorch" for e in metadata.entry_points(group="pytest_accel.backends")),
                    reason="the installed pytest-accel predates its executorch entry point: pip install -e .")
def test_a_bad_spec_is_one_line_naming_every_delegate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy="def test_one(device):\n    pass\n")
    result = pytester.runpytest(f"{OPT_DEVICE}=et:npu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--device='et:npu' is not a device any registered backend knows*executorch: "
                                 f"et:<delegate> with a delegate of {', '.join(DELEGATES)} (et:xnnpack)*"])


@pytest.mark.skipif(INSTALLED, reason="executorch is installed here")
def test_without_executorch_the_device_names_the_extra() -> None:
    with pytest.raises(DeviceUnavailable, match=r"'et:xnnpack' is not available: executorch is not installed .*pip "
                                                r"install 'pytest-accel\[executorch"):
        ExecuTorchBackend().open("et:xnnpack")


@needs_executorch
def test_registered_through_the_entry_point_a_vendor_uses() -> None:
    entry_points = {e.name: e.value for e in metadata.entry_points(group="pytest_accel.backends")}
    assert entry_points.get("executorch") == "pytest_accel.devices.executorch:ExecuTorchBackend"


@pytest.mark.workload
@needs_executorch
def test_absent_delegates_say_what_the_runtime_has_and_what_to_install(pytester: pytest.Pytester) -> None:
    with pytest.raises(DeviceUnavailable, match=r"built without CoreMLBackend; it has .*XnnpackBackend.*Core ML"):
        ExecuTorchBackend().open("et:coreml")
    if "QNN_SDK_ROOT" not in os.environ:
        with pytest.raises(DeviceUnavailable, match=r"\$QNN_SDK_ROOT is not set; et:qnn needs Qualcomm's QNN SDK"):
            ExecuTorchBackend().open("et:qnn")
    pytester.makepyfile(test_toy="def test_one(device):\n    pass\n")
    result = pytester.runpytest("-rs", f"{OPT_DEVICE}=et:coreml", f"{OPT_DEVICE}=et:vulkan", OPT_SKIP_UNAVAILABLE)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*et:vulkan*built without VulkanBackend*EXECUTORCH_BUILD_VULKAN=ON*"])


@pytest.mark.workload
class TestExecuTorchContract(BackendContract):
    backend = ExecuTorchBackend()
    valid_specs = ["et:xnnpack", "et:XNNPACK", "et:qnn", "et:openvino", "et:coreml"]
    invalid_specs = ["et:", "et:xnn", "ort:xnnpack", "xnnpack"]
    absent_spec = "et:vulkan"
    device_spec = "et:xnnpack"

    @pytest.fixture(autouse=True)
    def _cache(self, workload_cache: Path) -> Iterator[None]:
        self.cache = workload_cache
        yield

    def run_matmul(self, device: Device, a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray | None:
        """``a @ b`` as a product with constant weights (what the delegate takes), lowered once per ``b``."""
        if dtype != "fp32":
            return None
        import torch

        linear = torch.nn.Linear(b.shape[0], b.shape[1], bias=False).eval()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(b.T)))
        key = "matmul-" + hashlib.sha256(np.ascontiguousarray(b).tobytes()).hexdigest()[:16] + f"-{a.shape[0]}"
        compiled = device.compile_torch(linear, (torch.from_numpy(a),), cache_key=key,  # type: ignore[attr-defined]
                                        cache_dir=self.cache)
        [product] = compiled.run([a])
        return np.asarray(product)


FLOOR = """
[manifest]
backend = "executorch"
min_delegation = {floor}
"""


@pytest.fixture
def lowered_runner(workload_cache: Path) -> Any:
    """The bundled detector lowered to XNNPACK: once, in the shared workloads' cache, then loaded from there."""
    from pytest_accel.workloads.detection.model import BUNDLED_WEIGHTS, DetectorSource
    from pytest_accel.workloads.detection.runners import make_runner

    return make_runner(ExecuTorchBackend().open("et:xnnpack"), DetectorSource(BUNDLED_WEIGHTS, 320, workload_cache),
                       "fp32", max_batch=4)


@pytest.mark.workload
@needs_executorch
def test_the_lowered_detector_reports_its_delegation_and_a_floor_makes_it_a_bound(lowered_runner: Any,
                                                                                  tmp_path: Path) -> None:
    from pytest_accel.manifest import load_manifest

    _delegation = _detection_suite()._delegation
    delegation = lowered_runner.delegation()
    assert lowered_runner.static_batch == 1 and 0.5 < delegation.coverage < 1 and delegation.partitions > 1
    assert sum(delegation.on_host.values()) == delegation.total_ops - delegation.delegated_ops
    assert lowered_runner.execution_precision().compute == {"fp32": 64}  # the detector's 64 convolutions
    [reported] = _delegation(lowered_runner, None)
    assert (reported.kind, reported.limit, reported.value) == ("info", None, delegation.coverage)
    (tmp_path / "floor.toml").write_text(FLOOR.format(floor=0.7))
    [gated] = _delegation(lowered_runner, load_manifest(tmp_path / "floor.toml"))
    assert (gated.kind, gated.limit) == ("parity", 0.7) and "min_delegation = 0.7 of manifest floor.toml" in str(
        gated.limit_reason)


@pytest.mark.workload
@needs_executorch
def test_below_a_manifests_floor_the_parity_test_fails_and_the_reports_list_the_hosts_operators(
        suite_project: pytest.Pytester) -> None:
    """The real suite on the lowered detector (from the shared cache), held to a floor above its coverage."""
    copy_suites(suite_project.path, "test_detection.py")
    (suite_project.path / "floor.toml").write_text(FLOOR.format(floor=0.99))
    result = suite_project.runpytest("suites/test_detection.py", f"{OPT_DEVICE}=et:xnnpack", "--yolo-dtypes=fp32",
                                     "-k", "test_parity", f"{OPT_MANIFEST}=floor.toml", f"{OPT_REPORT}=r.json",
                                     f"{OPT_HTML}=r.html")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal("*detection.delegation_coverage [parity]: obtained *, expected >= 0.99 (the "
                                         "metric's limit: the floor min_delegation = 0.99 of manifest floor.toml: "
                                         "operators the delegate does not take run on the host CPU); outside the "
                                         "bound")])
    metric = _metric(load_json(suite_project.path / "r.json"), "detection.delegation_coverage")
    summary = metric["summary"]
    assert metric["kind"] == "parity" and metric["value"] == pytest.approx(summary["delegated_ops"] /
                                                                           summary["total_ops"])
    first_op, count = next(iter(summary["on_host"].items()))  # most first: the detector's splits
    assert f"on the host: {first_op} {count}" in (suite_project.path / "r.html").read_text()


def _detection_suite() -> Any:
    """The repository's detection suite as a module of another name: as ``suites.test_detection`` it would clash with
    the copies pytester projects import under that name."""
    spec = importlib.util.spec_from_file_location("accel_detection_suite", REPO / "suites" / "test_detection.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _metric(report: dict[str, Any], name: str) -> dict[str, Any]:
    [metric] = [m for r in report["results"] for m in r["metrics"] if m["name"] == name]
    return metric
