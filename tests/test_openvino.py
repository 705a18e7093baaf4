"""The OpenVINO backend (ov:<device>), run for real on OpenVINO's CPU plugin: grammar, entry-point registration,
absent devices, the precision a model really runs in, and the matmul suite with bounds that follow it."""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from pytest_accel.devices import DeviceUnavailable, ExecutionPrecision
from pytest_accel.devices.openvino import OpenVinoBackend, parse_spec
from pytest_accel.options import OPT_DEVICE, OPT_REPORT, OPT_SKIP_UNAVAILABLE
from tests.helpers import SMOKE_TESTS, load_json

openvino = pytest.importorskip("openvino")

MATMUL_SUITE = Path(__file__).parents[1] / "suites" / "test_matmul.py"


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("ov:CPU", "ov:CPU"),
        ("ov:cpu", "ov:CPU"),
        ("ov:GPU.1", "ov:GPU.1"),
        ("ov:NPU", "ov:NPU"),
        ("ov:AUTO", "ov:AUTO"),
        ("ov:auto:gpu,cpu", "ov:AUTO:GPU,CPU"),
        ("ov:HETERO:NPU,CPU", "ov:HETERO:NPU,CPU"),
        ("ov:CPU/f32", "ov:CPU/f32"),
        ("ov:CPU/fp32", "ov:CPU/f32"),
        ("ov:GPU/FP16", "ov:GPU/f16"),
        ("ov:CPU/bf16", "ov:CPU/bf16"),
    ],
)
def test_grammar(spec: str, canonical: str) -> None:
    assert OpenVinoBackend().parse(spec) == canonical


@pytest.mark.parametrize("spec", ["ov:", "ov", "ort:cpu", "cpu", "ov:CPU/int4", "ov:HETERO:", "ov:CPU:GPU",
                                  "ov:HETERO:NPU,,CPU", "ov:C PU"])
def test_specs_it_does_not_own_or_cannot_mean(spec: str) -> None:
    assert OpenVinoBackend().parse(spec) is None


def test_virtual_devices_need_every_device_they_name() -> None:
    assert parse_spec("ov:HETERO:NPU,CPU").real_devices == ["NPU", "CPU"]  # type: ignore[union-attr]
    available = openvino.Core().available_devices
    if "NPU" in available:
        pytest.skip("this machine has an NPU")
    with pytest.raises(DeviceUnavailable, match=r"finds no NPU here; available: .*CPU"):
        OpenVinoBackend().open("ov:HETERO:NPU,CPU")


def test_registered_through_the_entry_point_a_vendor_uses() -> None:
    entry_points = {e.name: e.value for e in metadata.entry_points(group="pytest_accel.backends")}
    assert entry_points.get("openvino") == "pytest_accel.devices.openvino:OpenVinoBackend"


def test_keys_name_the_device_and_a_pinned_precision() -> None:
    default, pinned = OpenVinoBackend().open("ov:CPU"), OpenVinoBackend().open("ov:CPU/f32")
    assert default.key.startswith("ov-cpu-") and pinned.key.startswith("ov-cpu-f32-")
    assert default.key.removeprefix("ov-cpu-") == pinned.key.removeprefix("ov-cpu-f32-")  # the same host CPU
    assert pinned.id == "ov-CPU-f32"


def test_the_precision_reported_is_the_one_the_compiled_model_ran_in() -> None:
    """A pinned f32 runs in fp32; the default follows the CPU (bf16 where it has bf16 arithmetic); and a pin the
    device cannot honour (f16 on a CPU without fp16 arithmetic) reports what really ran, not the pin."""
    core = openvino.Core()
    capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert OpenVinoBackend().open("ov:CPU/f32").effective_precision("fp32") == "fp32"
    default = OpenVinoBackend().open("ov:CPU")
    assert default.effective_precision("fp32") == ("bf16" if "BF16" in capabilities else "fp32")
    assert default.info.extra["fp32_runs_in"] == default.effective_precision("fp32")
    f16 = OpenVinoBackend().open("ov:CPU/f16")
    assert f16.info.extra["inference_precision"] == "f16"
    if "FP16" not in capabilities:
        assert f16.effective_precision("fp32") != "fp16"


def test_execution_precision_counts_compute_operations_only() -> None:
    counts = {("Convolution", "bf16"): 60, ("Convolution", "fp32"): 4, ("MatMul", "bf16"): 1, ("Reorder", "fp32"): 64}
    execution = ExecutionPrecision.from_counts(counts, {"Convolution", "MatMul"})
    assert execution.compute == {"bf16": 61, "fp32": 4}
    assert execution.dominant == "bf16"
    assert execution.share("fp32") == pytest.approx(4 / 65)
    assert execution.summary()["by_layer"] == {"Convolution": {"bf16": 60, "fp32": 4}, "MatMul": {"bf16": 1}}
    assert ExecutionPrecision.from_counts({("Reorder", "fp32"): 3}, {"MatMul"}).dominant is None


@pytest.mark.workload  # a copy of the matmul suite, compiled by OpenVINO
def test_the_matmul_suite_on_openvino_with_bounds_that_follow_the_precision(pytester: pytest.Pytester) -> None:
    shutil.copy(MATMUL_SUITE, pytester.path / "test_matmul.py")
    result = pytester.runpytest(f"{OPT_DEVICE}=ov:CPU", f"{OPT_DEVICE}=ov:CPU/f32", f"{OPT_DEVICE}=ov:NPU",
                                OPT_SKIP_UNAVAILABLE, f"{OPT_REPORT}=r.json", "-k", SMOKE_TESTS)
    result.assert_outcomes(passed=4, skipped=2)
    report = load_json(pytester.path / "r.json")
    parity = {r["device"]: m for r in report["results"] for m in r["metrics"] if m["name"] ==
              "matmul.max_rel_error"}
    pinned, default = parity["ov:CPU/f32"], parity["ov:CPU"]
    assert pinned["summary"]["precision"] == "fp32" and pinned["tolerance"] == 1e-4
    assert pinned["summary"]["execution"]["compute_ops"] == {"fp32": 1}
    ran_in = default["summary"]["precision"]
    assert default["summary"]["execution"]["compute_ops"] == {ran_in: 1}
    assert default["tolerance"] == {"fp32": 1e-4, "bf16": 1e-2, "fp16": 1e-3}[ran_in]


def test_the_gate_self_checks_slowdown_reaches_compiled_models() -> None:
    """--accel-inject-slowdown (the gate's self-check) slowed PyTorch modules and ONNX Runtime sessions but not a
    model compiled by OpenVINO: ov:CPU's speed checks saw nothing to detect."""
    import time

    import numpy as np

    from pytest_accel.devices.onnxruntime import matmul_model
    from pytest_accel.gatecheck import inject_slowdown

    def best_of_each(first: Any, second: Any, feeds: dict[str, Any], rounds: int = 15) -> tuple[float, float]:
        """The fastest run of each, their runs interleaved: a busy spell of the machine falls on both alike."""
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(rounds):
            for compiled, kept in ((first, times[0]), (second, times[1])):
                start = time.perf_counter()
                compiled.run(feeds)
                kept.append(time.perf_counter() - start)
        return min(times[0]), min(times[1])

    rng = np.random.default_rng(0)
    feeds = {"a": rng.standard_normal((256, 256), dtype=np.float32),
             "b": rng.standard_normal((256, 256), dtype=np.float32)}
    plain = OpenVinoBackend().open("ov:CPU").compile_onnx(matmul_model(256), sample_feeds=feeds)
    device = OpenVinoBackend().open("ov:CPU")
    inject_slowdown(device, 1.0)
    slowed = device.compile_onnx(matmul_model(256), sample_feeds=feeds)
    assert np.array_equal(slowed.run(feeds)[0], plain.run(feeds)[0])
    slowed_time, plain_time = best_of_each(slowed, plain, feeds)
    assert slowed_time > 1.6 * plain_time, (slowed_time, plain_time)  # as slow again: 2x
