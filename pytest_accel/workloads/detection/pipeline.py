"""Post-processing around a runner (NMS, ultralytics'), and the end-to-end call: letterbox in (:mod:`.images`),
forward, NMS out."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from pytest_accel.workloads.detection.images import Batch, preprocess
from pytest_accel.workloads.detection.runners import DetectorRunner
from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics

#: ultralytics' validation settings, so our mAP is the number `yolo val` would print
VAL_CONF, VAL_IOU, MAX_DET = 0.001, 0.7, 300
#: a deployment-like threshold, for the end-to-end path and for box-level parity
DEPLOY_CONF = 0.25


def postprocess(
    runner: DetectorRunner, output: Any, batch: Batch, imgsz: int, conf: float = VAL_CONF
) -> list[np.ndarray]:
    """NMS (on the runner's device for PyTorch) and boxes scaled back to each image: (K, 6) xyxy, conf, class."""
    import_ultralytics()
    from ultralytics.utils import ops
    from ultralytics.utils.nms import non_max_suppression

    predictions = non_max_suppression(
        runner.output_for_nms(output), conf, VAL_IOU, multi_label=True, max_det=MAX_DET
    )
    results = []
    for prediction, shape in zip(predictions, batch.original_shapes, strict=True):
        prediction = prediction.float()
        prediction[:, :4] = ops.scale_boxes((imgsz, imgsz), prediction[:, :4], shape)
        results.append(prediction.cpu().numpy())
    return results


def detect(runner: DetectorRunner, images_bgr: Sequence[np.ndarray], imgsz: int, conf: float) -> list[np.ndarray]:
    """End to end: host images in, host detections out."""
    batch = preprocess(images_bgr, imgsz)
    output = runner.forward(runner.to_device(batch.tensor))
    return postprocess(runner, output, batch, imgsz, conf)
