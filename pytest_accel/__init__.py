"""pytest-accel: pytest as a conformance and performance suite for AI accelerators.

Import-light on purpose: nothing here imports torch, onnxruntime or ultralytics.
"""

from __future__ import annotations

__version__ = "0.1.0"
