"""Facts about the host and the software stack, read without importing the heavy libraries."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

STACK_PACKAGES = (
    "pytest",
    "pytest-accel",
    "pytest-benchmark",
    "numpy",
    "torch",
    "torchvision",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnx",
    "ultralytics",
    "mediapipe",
)


@lru_cache(maxsize=1)
def cpu_model() -> tuple[str, str]:
    """(vendor, model name) of the host CPU."""
    vendor, model = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            name, value = name.strip(), value.strip()
            if name == "vendor_id" and not vendor:
                vendor = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(value, value)
            elif name in ("model name", "Model") and not model:
                model = value
    except OSError:
        pass
    if not model:
        model = platform.processor() or platform.machine() or "unknown"
    model = " ".join(re.sub(r"\((r|tm|c)\)", " ", model, flags=re.IGNORECASE).split())
    if vendor and model.lower().startswith(vendor.lower()):
        model = model[len(vendor) :].strip()
    return vendor, model


def cpu_cores() -> int:
    """Cores this process may use (the affinity mask, not the whole host)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def host_memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def software_stack() -> dict[str, str]:
    stack = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for package in STACK_PACKAGES:
        try:
            stack[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return stack


def git_commit(path: Path) -> str | None:
    """HEAD of the repository holding ``path``, with ``-dirty`` when tracked files changed; None outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


CACHE_ENV = "PYTEST_ACCEL_CACHE"


def cache_dir() -> Path:
    """Where generated data sets, exported models and engine caches are kept between runs: $PYTEST_ACCEL_CACHE,
    else $XDG_CACHE_HOME/pytest-accel, else ~/.cache/pytest-accel."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pytest-accel"


def command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
