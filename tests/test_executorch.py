"""The ExecuTorch backend (et:<delegate>), run for real with the XNNPACK delegate where executorch is installed: the
grammar and its errors, registration, absent delegates named with what they need, the backend contract, and the
detection suite's delegation coverage with and without a manifest's floor."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from pytest_accel.devices import Device, DeviceUnavailable
from pytest_accel.devices.executorch import DELEGATES, ExecuTorchBackend, parse_spec
from pytest_accel.options import OPT_DEVICE, OPT_HTML, OPT_MANIFEST, OPT_REPORT, OPT_SKIP_UNAVAILABLE
from pytest_accel.testing import BackendContract
from tests.helpers import copy_suites, literal, load_json

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


def test_a_bad_spec_is_one_line_naming_every_delegate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy="def test_one(device):\n    pass\n")
    result = pytester.runpytest(f"{OPT_DEVICE}=et:npu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--device='et:npu' is not a device any registered backend knows*executorch: "
                                 f"et:<delegate> with a delegate of {', '.join(DELEGATES)} (et:xnnpack)*"])


@pytest.mark.skipif(INSTALLED, reason="executorch is installed here")
def test_without_executorch_the_device_names_the_extra() -> None:
    with pytest.raises(DeviceUnavailable, match=r"executorch is not installed .*pip install 'pytest-accel\[executorch"):
        ExecuTorchBackend().open("et:xnnpack")


@needs_executorch
def test_registered_through_the_entry_point_a_vendor_uses() -> None:
    entry_points = {e.name: e.value for e in metadata.entry_points(group="pytest_accel.backends")}
    assert entry_points.get("executorch") == "pytest_accel.devices.executorch:ExecuTorchBackend"


@pytest.fixture(scope="module")
def executorch_loaded() -> None:
    """Loaded before any in-process pytest run: such a run drops the modules first imported inside it, and a second
    import of ExecuTorch's C extension fails."""
    pytest.importorskip("executorch.runtime")
    pytest.importorskip("executorch.exir")


@pytest.mark.workload
@needs_executorch
def test_absent_delegates_say_what_the_runtime_has_and_what_to_install(executorch_loaded: None,
                                                                       pytester: pytest.Pytester) -> None:
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


@pytest.mark.workload
@needs_executorch
def test_delegation_coverage_is_reported_and_held_to_a_manifests_floor(executorch_loaded: None,
                                                                       suite_project: pytest.Pytester) -> None:
    """The real detector lowered to XNNPACK (once, in the shared workloads' cache): without a floor the share is
    reported with the host's operators; a manifest's floor above it fails the parity test naming floor and file."""
    copy_suites(suite_project.path, "test_detection.py")
    args = ("suites/test_detection.py", f"{OPT_DEVICE}=et:xnnpack", "-k", "test_parity")
    reported = suite_project.runpytest(*args, f"{OPT_REPORT}=plain.json", f"{OPT_HTML}=plain.html")
    reported.assert_outcomes(passed=1)
    metric = _metric(load_json(suite_project.path / "plain.json"), "detection.delegation_coverage")
    summary = metric["summary"]
    assert metric["kind"] == "info" and 0.5 < metric["value"] < 1
    assert metric["value"] == pytest.approx(summary["delegated_ops"] / summary["total_ops"])
    assert summary["partitions"] >= 1 and summary["on_host"]  # the detector's split and upsample stay on the host
    assert sum(summary["on_host"].values()) == summary["total_ops"] - summary["delegated_ops"]
    first_op, count = next(iter(summary["on_host"].items()))
    assert f"on the host: {first_op} {count}" in (suite_project.path / "plain.html").read_text()

    (suite_project.path / "floor.toml").write_text(FLOOR.format(floor=0.99))
    gated = suite_project.runpytest(*args, f"{OPT_MANIFEST}=floor.toml", f"{OPT_REPORT}=gated.json")
    gated.assert_outcomes(failed=1)
    gated.stdout.fnmatch_lines([literal("*detection.delegation_coverage [parity]: obtained *, expected >= 0.99 (the "
                                        "metric's limit: the floor min_delegation = 0.99 of manifest floor.toml: "
                                        "operators the delegate does not take run on the host CPU); outside the "
                                        "bound")])
    gated_metric = _metric(load_json(suite_project.path / "gated.json"), "detection.delegation_coverage")
    assert gated_metric["kind"] == "parity" and gated_metric["summary"]["on_host"] == summary["on_host"]


def _metric(report: dict[str, Any], name: str) -> dict[str, Any]:
    [metric] = [m for r in report["results"] for m in r["metrics"] if m["name"] == name]
    return metric
