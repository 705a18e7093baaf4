"""The device-independent accuracy reference: fp32 mAP of a model on a data set, on the CPU, with PyTorch.

Stored as ``baselines/reference/detection/<name>.json`` in the baseline format, plus the identity of what was
measured (model digest, data set identity, image size) so a reference is never applied to another model or data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pytest_accel.baselines import BaselineStore, metric_record, utc_now
from pytest_accel.environment import software_stack
from pytest_accel.metrics import Metric
from pytest_accel.workloads.detection.dataset import DatasetSpec
from pytest_accel.workloads.detection.evaluation import MapResult, evaluate_map, load_split
from pytest_accel.workloads.detection.model import BUNDLED_WEIGHTS, DetectorSource

SUITE = "detection"


def data_identity(data_yaml: Path) -> str:
    """'generated-<fingerprint>' for the bundled data set, else a digest of the YAML and its val labels."""
    spec_file = data_yaml.with_name("spec.json")
    if spec_file.is_file() and data_yaml.parent.name.startswith("shapes-"):
        return f"generated-{data_yaml.parent.name.removeprefix('shapes-')}"
    digest = hashlib.sha256(data_yaml.read_bytes())
    return f"yaml-{digest.hexdigest()[:12]}"


def reference_name(source: DetectorSource) -> str:
    if source.path.resolve() == BUNDLED_WEIGHTS.resolve():
        return BUNDLED_WEIGHTS.stem
    return f"{source.path.stem}-{source.digest}"


def identity(source: DetectorSource, data_yaml: Path) -> dict[str, Any]:
    return {"model_digest": source.digest, "data": data_identity(data_yaml), "imgsz": source.imgsz}


def matching_reference(document: dict[str, Any] | None, source: DetectorSource, data_yaml: Path) -> str | None:
    """None when ``document`` is the reference for this model, data and size; else why it is not."""
    if document is None:
        return "no reference file"
    wanted = identity(source, data_yaml)
    recorded = document.get("measured", {})
    differing = [key for key, value in wanted.items() if recorded.get(key) != value]
    return f"reference recorded for another {', '.join(differing)}" if differing else None


def record_reference(
    store: BaselineStore, source: DetectorSource, data_yaml: Path, force: bool
) -> tuple[Path, MapResult]:
    from pytest_accel.devices.onnxruntime import OrtBackend
    from pytest_accel.devices.torch import TorchBackend
    from pytest_accel.workloads.detection.runners import make_runner

    path = store.reference_path(SUITE, reference_name(source))
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    device = OrtBackend().open("ort:cpu") if source.is_onnx else TorchBackend().open("cpu")
    names, samples = load_split(data_yaml)
    result = evaluate_map(make_runner(device, source, "fp32"), samples, names, source.imgsz)
    metrics = {
        name: metric_record(Metric(name, value, "", "accuracy", "higher"), 0.01)
        for name, value in ((f"{SUITE}.map50_95", result.map50_95), (f"{SUITE}.map50", result.map50))
    }
    header = {
        "measured": {**identity(source, data_yaml), "images": result.images, "boxes": result.boxes,
                     "device": device.key, "dtype": "fp32", "default_data_spec": str(DatasetSpec())},
        "software": software_stack(),
        "recorded_at": utc_now(),
    }
    store.write(path, metrics, header, None)
    return path, result
