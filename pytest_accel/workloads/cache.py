"""Where generated data sets and exported models are cached between runs (see :func:`environment.cache_dir`), and
the content digests of files that name what is cached (and the references recorded for a model)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pytest_accel.environment import CACHE_ENV, cache_dir

__all__ = ["CACHE_ENV", "default_cache_dir", "file_digest", "unwritable_cache_message"]


def default_cache_dir() -> Path:
    """$PYTEST_ACCEL_CACHE, else $XDG_CACHE_HOME/pytest-accel, else ~/.cache/pytest-accel."""
    return cache_dir()


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the SHA-256 of the file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def unwritable_cache_message(folder: Path, reason: str) -> str:
    """The one line that says the cache cannot be written, and how to choose another."""
    return (f"cache folder {folder}: {reason}; generated data sets and converted models are kept there: set "
            f"${CACHE_ENV} to a writable folder")
