"""Where generated data sets and exported models are cached between runs (see :func:`environment.cache_dir`)."""

from __future__ import annotations

from pathlib import Path

from pytest_accel.environment import CACHE_ENV, cache_dir

__all__ = ["CACHE_ENV", "default_cache_dir"]


def default_cache_dir() -> Path:
    """$PYTEST_ACCEL_CACHE, else $XDG_CACHE_HOME/pytest-accel, else ~/.cache/pytest-accel."""
    return cache_dir()
