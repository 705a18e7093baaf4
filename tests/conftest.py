from __future__ import annotations

# pytester's in-process runs drop modules first imported inside them; a second import of torch's or
# onnxruntime's (or numpy.fft's, via scipy) C extension then crashes or fails. Importing them here keeps
# them loaded across runs.
import onnx  # noqa: F401,E402
import onnxruntime  # noqa: F401,E402
import pytest
import scipy.stats  # noqa: F401,E402
import torch  # noqa: F401,E402

from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics  # noqa: E402
from tests.helpers import ACCURACY_TEST, LATENCY_TEST

import_ultralytics()  # the suite-option tests load weights and data sets inside pytester runs

pytest_plugins = ["pytester"]


@pytest.fixture
def accuracy_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_toy=ACCURACY_TEST)
    pytester.path.joinpath("value.txt").write_text("0.90")
    return pytester


@pytest.fixture
def latency_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_toy=LATENCY_TEST)
    pytester.path.joinpath("delay.txt").write_text("0.002")
    return pytester
