"""Hand-made JSON reports for the HTML report's tests: two devices, every chart's data, and the gaps a report can
have (a baseline file that is missing, a metric kind this version does not know)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

DEVICES = ("cpu", "ort:cpu")
#: ort:cpu runs this many times faster than cpu in the hand-made data
FASTER = 2.5


def metric(name: str, kind: str, value: float | None, unit: str = "", direction: str = "lower",
           verdict: str = "pass", **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": kind, "value": value, "unit": unit, "direction": direction,
            "baseline": extra.pop("baseline", None), "delta": extra.pop("delta", None),
            "tolerance": extra.pop("tolerance", None), "tolerance_source": "default", "verdict": verdict,
            "gated": extra.pop("gated", True), "detail": extra.pop("detail", "within the tolerance"), **extra}


def result(device: str, suite: str, function: str, params: str, metrics: list[dict[str, Any]],
           baseline_file: str = "") -> dict[str, Any]:
    device_id = device.replace(":", "-")
    ids = f"{params}-{device_id}" if params else device_id
    return {"nodeid": f"suites/test_{suite}.py::{function}[{ids}]", "device": device,
            "device_key": f"{device_id}-toy", "suite": suite,
            "test": f"{function}-{params}" if params else function, "function": function, "params": params,
            "baseline_file": baseline_file, "metrics": metrics}


def curves(epochs: int, speed: float) -> dict[str, Any]:
    epoch = list(range(1, epochs + 1))
    accuracy = [min(0.97, 0.3 + 0.07 * e * speed ** 0.1) for e in epoch]
    loss = [1.6 / e ** 0.8 for e in epoch]
    return {
        "curves": {"epoch": epoch, "val_accuracy": accuracy, "val_loss": loss, "train_loss": [x * 0.9 for x in loss]},
        "reference_curves": {"epoch": epoch, "val_accuracy_low": [a - 0.05 for a in accuracy],
                             "val_accuracy_high": [a + 0.03 for a in accuracy],
                             "val_loss_low": [x * 0.85 for x in loss], "val_loss_high": [x * 1.2 for x in loss],
                             "runs": 8},
    }


def toy_report(baseline_dir: Path) -> dict[str, Any]:
    """cpu regressed on latency (gated) and on throughput b4 (not gated); its latency baseline file holds samples,
    the throughput baselines are missing; a parity metric per dtype, curves with a band, an ``energy`` metric."""
    rng = random.Random(1)
    results = []
    for device in DEVICES:
        speed = FASTER if device != "cpu" else 1.0
        key = f"{device.replace(':', '-')}-toy"
        latency_file = baseline_dir / key / "suites" / "detection" / "test_latency-fp32.json"
        latency_file.parent.mkdir(parents=True, exist_ok=True)
        run = sorted(0.040 / speed * (1 + 0.05 * rng.random()) for _ in range(60))
        stored = sorted(0.038 / speed * (1 + 0.05 * rng.random()) for _ in range(60))
        latency_file.write_text(json.dumps({"schema": "pytest-accel/baseline", "schema_version": 1, "metrics": {
            "detection.model_only.latency": {"value": stored[30], "unit": "s", "kind": "latency", "direction": "lower",
                                             "tolerance": None, "samples": stored}}}))
        results.append(result(device, "detection", "test_latency", "fp32", [
            metric("detection.model_only.latency", "latency", run[30], "s",
                   verdict="regression" if device == "cpu" else "pass", baseline=stored[30],
                   delta=run[30] / stored[30] - 1, tolerance=0.05, samples=run,
                   detail="median time +5.1%, slower beyond the tolerance" if device == "cpu" else "within")],
            str(latency_file)))
        throughput = []
        for batch, rate in ((1, 25.0), (2, 32.0), (4, 36.0)):
            slow = device == "cpu" and batch == 4
            throughput.append(metric(
                f"detection.b{batch}.throughput", "throughput", rate * speed, "items/s", "higher",
                verdict="regression" if slow else "missing", gated=not slow,
                summary={"batch_size": batch, "n": 20},
                samples=[batch / (rate * speed) * (1 + 0.03 * rng.random()) for _ in range(20)]))
        results.append(result(device, "detection", "test_throughput", "fp32", throughput,
                              str(baseline_dir / key / "suites" / "detection" / "test_throughput-fp32.json")))
        for dtype, error, bound in (("fp32", 0.0 if device == "cpu" else 1.5e-7, 1e-4), ("fp16", 3.5e-4, 0.01),
                                    ("bf16", 2.6e-3, 0.03)):  # each dtype its own bound
            if device != "cpu" and dtype != "fp32":
                continue
            results.append(result(device, "detection", "test_parity", dtype, [
                metric("detection.head_rel_l2_error", "parity", error, tolerance=bound, limit=bound),
                metric("detection.box_match", "parity", 1.0, direction="higher", tolerance=0.99, limit=0.99)]))
        results.append(result(device, "gesture", "test_training", "fp32", [
            metric("gesture.final_accuracy", "accuracy", 0.97, direction="higher", summary=curves(12, speed)),
            metric("gesture.energy_per_step", "energy", 1.5 / speed, "J", verdict="info", detail="reported only")]))
    return {"schema": "pytest-accel/report", "schema_version": 1, "created_at": "2026-12-04T19:00:00Z",
            "pytest_accel": "0.1.0", "command": "pytest suites --device=cpu --device=ort:cpu", "exit_status": 1,
            "git_commit": "0123abc", "software": {}, "options": {"devices": list(DEVICES), "gate": ["latency"]},
            "devices": {"cpu": {"key": "cpu-toy", "vendor": "AMD", "model": "EPYC", "cores": 2,
                                "runtime": {"torch": "2.14.1"}},
                        "ort:cpu": {"key": "ort-cpu-toy", "runtime": {"onnxruntime": "1.32.0"}}},
            "results": results, "baselines_written": [], "baselines_pruned": [], "baselines_unused": []}
