"""Import ultralytics for offline use: no update checks, no hub, settings kept out of the user's home."""

from __future__ import annotations

import os
from typing import Any


def import_ultralytics() -> Any:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        import ultralytics
    except ImportError as error:
        raise RuntimeError(
            f"the detection workload needs ultralytics ({error}); pip install 'pytest-accel[yolo]'"
        ) from None
    return ultralytics
