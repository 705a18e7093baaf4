"""Facts about the host and the software stack, read without importing the heavy libraries."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
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


#: CPUID vendor strings, as py-cpuinfo reports them, to the names keys and reports use
_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon", "CentaurHauls": "Centaur"}


@lru_cache(maxsize=1)
def cpu_facts() -> dict[str, object]:
    """py-cpuinfo's view of the host CPU (it reads /proc on Linux, sysctl on macOS, the registry on Windows); {}
    where it cannot run. Cached: it may start a subprocess."""
    try:
        import cpuinfo  # installed with pytest-benchmark (py-cpuinfo)
    except ImportError:
        return {}
    try:
        return dict(cpuinfo.get_cpu_info())
    except Exception:  # noqa: BLE001 - an unknown platform must not stop a run; the fallback below names the CPU
        return {}


@lru_cache(maxsize=1)
def cpu_model() -> tuple[str, str]:
    """(vendor, model name) of the host CPU: ('Intel', 'Xeon Processor'), ('AMD', 'EPYC'), ('Apple', 'M2')."""
    facts = cpu_facts()
    raw_vendor = str(facts.get("vendor_id_raw") or "").strip()
    vendor = _VENDORS.get(raw_vendor, raw_vendor)
    model = str(facts.get("brand_raw") or "").strip() or platform.processor() or platform.machine() or "unknown"
    model = " ".join(re.sub(r"\((r|tm|c)\)", " ", model, flags=re.IGNORECASE).split())
    if not vendor and model.split()[0] in ("Apple", "Intel", "AMD", "Qualcomm"):  # no CPUID vendor on ARM hosts
        vendor = model.split()[0]
    if vendor:  # 'Intel Xeon Processor' and '11th Gen Intel Core i7' name the vendor once, beside the model
        model = " ".join(re.sub(rf"\b{re.escape(vendor)}\b", " ", model, flags=re.IGNORECASE).split()) or model
    return vendor, model


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags the host CPU reports (``avx512_bf16``, ``amx_fp16``, ``asimdhp``...); empty where
    they cannot be read, which is not the same as "none"."""
    flags = cpu_facts().get("flags")
    return frozenset(str(flag) for flag in flags) if isinstance(flags, list) else frozenset()


def cpu_cores() -> int:
    """Logical cores this process may use (its affinity mask where the OS has one, not the whole host)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    try:
        import psutil

        return len(psutil.Process().cpu_affinity() or []) or psutil.cpu_count() or 1
    except (ImportError, AttributeError, OSError):  # macOS has no affinity mask
        return os.cpu_count() or 1


def host_memory_bytes() -> int | None:
    """Physical memory of the host, from psutil (every OS)."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except (ImportError, OSError):
        return None


#: names this machine in reports (a CI runner label, say); default: the host name
MACHINE_ENV = "PYTEST_ACCEL_MACHINE"


def host_facts() -> dict[str, object]:
    """The machine a run ran on, for reports merged across machines (``pytest-accel report`` of a fleet)."""
    vendor, model = cpu_model()
    name = platform.node()
    return {"machine": os.environ.get(MACHINE_ENV, "").strip() or name or "unknown", "name": name,
            "cpu": f"{vendor} {model}".strip(), "cores": cpu_cores(), "memory_bytes": host_memory_bytes(),
            "os": platform.platform(terse=True)}


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


def utc_now() -> str:
    """The time now, as every document of the project stamps it: UTC to the second, ``2026-12-06T05:02:08Z``."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
