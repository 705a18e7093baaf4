"""Where generated data sets and exported models are cached between runs."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "PYTEST_ACCEL_CACHE"


def default_cache_dir() -> Path:
    """$PYTEST_ACCEL_CACHE, else $XDG_CACHE_HOME/pytest-accel, else ~/.cache/pytest-accel."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pytest-accel"
