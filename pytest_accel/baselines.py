"""Baseline files: layout, schema, validation and atomic writes. Judging a metric is :mod:`pytest_accel.verdicts`.

Layout: ``<baseline-dir>/<device-key>/<test file's rootdir-relative folder>/<its stem without test_>/<test>.json``
(``suites/test_detection.py::test_accuracy[fp32-cpu]`` on key ``cpu-x`` is
``cpu-x/suites/detection/test_accuracy-fp32.json``);
a name that had to be changed to be a file name carries a short hash of the original, so no two tests share a file.
Device-independent references live apart, in ``<reference-dir>/<suite>/<name>.json`` (see
:mod:`pytest_accel.references`). Both use one document
format: schema, schema version, a header of facts, and ``metrics`` by name.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from pytest_accel.metrics import INFO_KIND, KINDS

SCHEMA = "pytest-accel/baseline"
SCHEMA_VERSION = 1
REFERENCE_FOLDER = "reference"
LOCK_SUFFIX = ".lock"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.@\-]+")
#: File names past this many characters are shortened (with the hash): most file systems stop at 255 bytes.
MAX_FILE_STEM = 200


class BaselineError(Exception):
    """A baseline file that cannot be used: unreadable, not JSON, wrong schema, or missing fields."""


def safe_name(text: str) -> str:
    return _SAFE_NAME.sub("_", text).strip("._") or "_"


def file_stem(text: str) -> str:
    """``text`` as a file name that no other text maps to: when characters had to be replaced (``resnet/50``,
    ``resnet 50`` and ``resnet:50`` all read ``resnet_50``) or the name is too long for a file system, the cleaned
    name is cut to :data:`MAX_FILE_STEM` characters and a short hash of the original is appended."""
    cleaned = safe_name(text)
    if cleaned == text and len(text) <= MAX_FILE_STEM:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return f"{cleaned[:MAX_FILE_STEM]}-{digest}"


def atomic_write_json(path: Path, document: Any) -> None:
    """Write ``document`` as JSON to ``path`` atomically (see :func:`atomic_write_text`); NaN is refused."""
    atomic_write_text(path, json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one, never a part.

    The new file keeps the old one's permissions (a new one gets the umask's), and the folder is synced after the
    rename so the new name survives a crash too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX, delete=False, encoding="utf-8"
    )
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, _mode_for(path))
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


TEMP_SUFFIX = ".tmp"


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # folders cannot be opened on some platforms (Windows): nothing to sync there
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def remove_stale_temp_files(path: Path) -> None:
    """Temporary files a killed writer of ``path`` left behind (call with the file's lock held)."""
    for stale in path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, for documents that report broken runs (reports,
    obtained values); baselines never hold one (writing a NaN there raises)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def baseline_path(root: Path, device_key: str, location: tuple[str, ...], test: str) -> Path:
    folder = root / file_stem(device_key)
    for part in location:
        folder /= file_stem(part)
    return folder / f"{file_stem(test)}.json"


class BaselineStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, device_key: str, location: tuple[str, ...], test: str) -> Path:
        """The file of ``test`` on ``device_key``; ``location`` is the test file's place (see
        :func:`pytest_accel.identity.test_location`)."""
        return baseline_path(self.root, device_key, location, test)

    def load(self, path: Path) -> dict[str, Any] | None:
        """The validated document at ``path``, or None when there is no file."""
        return load_document(path)

    def write(
        self,
        path: Path,
        metrics: dict[str, dict[str, Any]],
        header: dict[str, Any],
        overwrite_damaged: bool = False,
    ) -> None:
        """Write ``metrics`` over the file's current ones. Load, merge and replace happen under a file lock, so
        processes updating one file at once (xdist workers, parallel CI jobs) lose nothing. A damaged file is an
        error unless ``overwrite_damaged`` (the flag that says overwrite was given)."""
        from filelock import FileLock

        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.with_name(f".{path.name}{LOCK_SUFFIX}"))):
            remove_stale_temp_files(path)
            try:
                current = load_document(path)
            except BaselineError:
                if not overwrite_damaged:
                    raise
                current = None
            merged = dict(current["metrics"]) if current else {}
            merged.update(metrics)
            write_document(path, header, merged)


def write_document(path: Path, header: dict[str, Any], metrics: dict[str, dict[str, Any]]) -> None:
    atomic_write_json(path, {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **header, "metrics": metrics})


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a number JSON allows", name, 0)


def load_document(path: Path) -> dict[str, Any] | None:
    """The validated document at ``path``, or None when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"baseline file {path} cannot be read: {error}") from error
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise BaselineError(
            f"baseline file {path} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); "
            "fix it, delete it, or re-record it with --accel-update-baselines"
        ) from error
    validate_document(path, document)
    return document


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_document(path: Path, document: Any) -> None:
    def bad(reason: str) -> BaselineError:
        return BaselineError(
            f"baseline file {path} {reason}; fix it, delete it, or re-record it with --accel-update-baselines"
        )

    if not isinstance(document, dict):
        raise bad(f"holds a JSON {type(document).__name__}, not an object")
    if document.get("schema") != SCHEMA:
        raise bad(f"has schema {document.get('schema')!r}, expected {SCHEMA!r}")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise bad(f"has schema_version {document.get('schema_version')!r}; this pytest-accel reads {SCHEMA_VERSION}")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        raise bad("has no 'metrics' object")
    for name, record in metrics.items():
        if not isinstance(record, dict):
            raise bad(f"metric {name!r} is not an object")
        for key in ("value", "unit", "kind", "direction"):
            if key not in record:
                raise bad(f"metric {name!r} lacks {key!r}")
        if not isinstance(record["value"], (int, float)) or isinstance(record["value"], bool):
            raise bad(f"metric {name!r} has non-numeric value {record['value']!r}")
        if not math.isfinite(record["value"]):
            raise bad(f"metric {name!r} has value {record['value']!r}, not a finite number")
        if record["direction"] not in ("lower", "higher"):
            raise bad(f"metric {name!r} has direction {record['direction']!r}, expected 'lower' or 'higher'")
        if not isinstance(record["kind"], str) or record["kind"] not in KINDS:
            raise bad(f"metric {name!r} has kind {record['kind']!r}; known kinds: {', '.join(KINDS)}")
        if record["kind"] != INFO_KIND and record["value"] < 0:
            raise bad(f"metric {name!r} has negative value {record['value']!r} (a measured {record['kind']} is >= 0)")
        tolerance = record.get("tolerance")
        if tolerance is not None and not (_number(tolerance) and tolerance >= 0):
            raise bad(f"metric {name!r} has tolerance {tolerance!r}, expected a non-negative number or null")
        for key in ("samples", "probe_samples"):
            values = record.get(key)
            if values is not None and not (isinstance(values, list) and values and all(
                    _number(v) and v > 0 for v in values)):
                raise bad(f"metric {name!r} has malformed {key!r} (expected a list of positive finite seconds)")
        history = record.get("history")
        if history is not None:
            if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
                raise bad(f"metric {name!r} has malformed 'history' (expected a list of objects)")
            for index, run in enumerate(history):
                for field in ("value", "probe", "floor", "probe_floor", "spread"):
                    if field in run and run[field] is not None and not (
                            _number(run[field]) and (run[field] > 0 or field == "spread" and run[field] == 0)):
                        raise bad(f"metric {name!r} history[{index}] has {field}={run[field]!r}, expected a "
                                  "positive number")
                if "value" not in run:
                    raise bad(f"metric {name!r} history[{index}] lacks 'value'")
