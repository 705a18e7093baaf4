"""The device-independent accuracy reference: fp32 mAP of a model on a data set, on the CPU, with PyTorch.

Stored as ``<reference-dir>/detection/<name>.json`` (shipped: ``suites/reference/``) in the baseline format, plus
the identity of what was measured (model digest, data set identity, image size) so a reference is never applied to
another model or data.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from pytest_accel.metrics import Metric
from pytest_accel.progress import NULL_PROGRESS, Progress
from pytest_accel.references import ReferenceStore
from pytest_accel.workloads.cache import file_digest
from pytest_accel.workloads.detection.dataset import DatasetSpec
from pytest_accel.workloads.detection.evaluation import MapResult, evaluate_map
from pytest_accel.workloads.detection.model import BUNDLED_WEIGHTS, DetectorSource
from pytest_accel.workloads.detection.splits import load_split, split_files

SUITE = "detection"


@functools.lru_cache(maxsize=8)
def data_identity(data_yaml: Path) -> str:
    """'generated-<fingerprint>' for the bundled data set (its generator's spec names its content), else a digest
    of the YAML, every val image and every val label file: two folders with one YAML and other labels differ."""
    spec_file = data_yaml.with_name("spec.json")
    if spec_file.is_file() and data_yaml.parent.name.startswith("shapes-"):
        return f"generated-{data_yaml.parent.name.removeprefix('shapes-')}"
    digest = hashlib.sha256(data_yaml.read_bytes())
    _, images, labels = split_files(data_yaml)
    for image, label in zip(images, labels, strict=True):
        digest.update(image.name.encode())
        digest.update(file_digest(image).encode())
        digest.update(file_digest(label).encode() if label.is_file() else b"-")
    return f"data-{digest.hexdigest()[:12]}"


def reference_name(source: DetectorSource) -> str:
    if source.path.resolve() == BUNDLED_WEIGHTS.resolve():
        return BUNDLED_WEIGHTS.stem
    return f"{source.path.stem}-{source.digest}"


def identity(source: DetectorSource, data_yaml: Path) -> dict[str, Any]:
    return {"model_digest": source.digest, "data": data_identity(data_yaml), "imgsz": source.imgsz}


def record_reference(
    store: ReferenceStore, source: DetectorSource, data_yaml: Path, force: bool, progress: Progress = NULL_PROGRESS
) -> tuple[Path, MapResult]:
    """Score ``source`` in fp32 on its golden device and store the result as the reference for these inputs."""
    from pytest_accel.workloads.detection.runners import make_runner

    path = store.path(SUITE, reference_name(source))
    if path.exists() and not force:  # before the evaluation, which takes a while
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    device = source.golden_device()
    names, samples = load_split(data_yaml)
    result = evaluate_map(make_runner(device, source, "fp32"), samples, names, source.imgsz, progress=progress)
    metrics = [
        Metric(name, value, "", "accuracy", "higher")
        for name, value in ((f"{SUITE}.map50_95", result.map50_95), (f"{SUITE}.map50", result.map50))
    ]
    facts = {"images": result.images, "boxes": result.boxes, "device": device.key, "dtype": "fp32",
             "default_data_spec": str(DatasetSpec())}
    store.record(SUITE, reference_name(source), identity(source, data_yaml), metrics, facts, force=force)
    return path, result
