"""Import ultralytics for offline use: no update checks, no hub, quiet.

Its settings file stays where ultralytics keeps it (``YOLO_CONFIG_DIR``, else the user's config folder), so a user's
``datasets_dir`` still resolves their data set YAMLs. The folders it saves into by default (``runs_dir``,
``weights_dir``) are made from the git checkout ultralytics is installed in, else the folder it runs in: the project's
checkout, often. So the workloads call nothing that saves there: models are exported beside a copy in the workloads'
cache, and metrics are computed without plots or result files (tests/test_checkout_untouched.py runs a detection
test with those folders inside a checkout).
"""

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
