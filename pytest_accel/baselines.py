"""Baseline files: layout, schema, validation and atomic writes. Judging a metric is :mod:`pytest_accel.verdicts`.

Layout: ``<baseline-dir>/<device-key>/<test file's rootdir-relative folder>/<its stem without test_>/<test>.json``
(``suites/test_detection.py::test_accuracy[fp32-cpu]`` on key ``cpu-x`` is
``cpu-x/suites/detection/test_accuracy-fp32.json``);
a name that had to be changed to be a file name carries a short hash of the original, so no two tests share a file.
Device-independent references live apart, in ``<reference-dir>/<suite>/<name>.json`` (see
:mod:`pytest_accel.references`). Both use one document
format: schema, schema version, a header of facts, and ``metrics`` by name.

Reading and writing share one check (:func:`validate_document`, each metric by
:func:`pytest_accel.records.check_baseline_record`): what the reader would refuse is never written. A baseline
file is a regular file of at most :data:`MAX_FILE_BYTES` (16 MiB; the largest a test with 32 timed metrics, each
with its thinned samples and a full history, writes is about 3 MiB) and JSON nested at most :data:`MAX_DEPTH`
deep. A store's writers take a lock per file in ``<baseline-dir>/.locks/`` (ignored by git through its own
``.gitignore``); lock files are kept, never deleted, since deleting one that another process waits on would let
two writers in at once.
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
from typing import Any, Callable, Mapping

from pytest_accel.records import RecordError, check_baseline_record, is_timestamp

SCHEMA = "pytest-accel/baseline"
SCHEMA_VERSION = 1
REFERENCE_FOLDER = "reference"
LOCK_SUFFIX = ".lock"
#: the folder of a store's lock files, at its root
LOCK_FOLDER = ".locks"
#: the largest baseline file read or written (see the module's documentation)
MAX_FILE_BYTES = 16 * 2**20
#: the deepest nesting of JSON arrays and objects a baseline file may hold (the files written nest 7 deep)
MAX_DEPTH = 32
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.@\-]+")
#: File names past this many characters are shortened (with the hash): most file systems stop at 255 bytes.
MAX_FILE_STEM = 200


class BaselineError(Exception):
    """A baseline file that cannot be used or written: unreadable, not JSON, wrong schema, or a field that holds
    what it may not. The message is one line naming the file and the field."""


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


def may_be_file_of(stem: str, function: str) -> bool:
    """Whether a baseline file named ``stem`` may belong to test function ``function`` (with any parameters and
    variant: ``<function>-<params>@<variant>``, made a file name by :func:`file_stem`). Generous on purpose: a wrong
    yes only keeps a file that pruning could have deleted."""
    whole = safe_name(function)  # the function alone, as its file is named without parameters
    head = _SAFE_NAME.sub("_", function).lstrip("._")  # the function's part of a longer name
    if stem == whole or stem.startswith(f"{whole}-"):
        return True
    if len(head) >= MAX_FILE_STEM:
        return stem.startswith(head[:MAX_FILE_STEM])
    return stem.startswith(head) and stem[len(head):len(head) + 1] in ("-", "@")


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
        """The validated document at ``path``, or None when there is no file. Its ``device_key`` must be the one
        whose folder it lies in: a file copied from another device's folder is no baseline for this one."""
        document = load_document(path)
        if document is not None:
            self._check_device_key(path, document)
        return document

    def _check_device_key(self, path: Path, document: Mapping[str, Any]) -> None:
        try:
            folder = path.relative_to(self.root).parts[0]
        except (ValueError, IndexError):
            raise BaselineError(f"baseline file {path} is not inside the baseline folder {self.root}") from None
        key = document.get("device_key")
        if not isinstance(key, str) or not key or not _unicode(key) or file_stem(key) != folder:
            raise BaselineError(
                f"baseline file {path} has device_key {_shown(key)}, but lies in the folder of device key {folder!r}: "
                "baselines are judged only on the device they were recorded on; move it to its device's folder, or "
                f"re-record it here with {UPDATE_HINT}"
            )

    def lock_path(self, path: Path) -> Path:
        """The lock file of ``path``: in the store's ``.locks/`` folder, named after the file's place in the store."""
        try:
            place = path.relative_to(self.root).as_posix()
        except ValueError:
            place = path.as_posix()
        return self.root / LOCK_FOLDER / f"{file_stem(place)}{LOCK_SUFFIX}"

    def _lock_folder(self) -> Path:
        folder = self.root / LOCK_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.exists():
            atomic_write_text(ignore, "# lock files of pytest-accel's baseline writers: never committed\n*\n")
        return folder

    def update(
        self,
        path: Path,
        records_from: Callable[[Mapping[str, Any]], dict[str, dict[str, Any]]],
        header: dict[str, Any],
        overwrite_damaged: bool = False,
    ) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
        """Read, merge and replace the file with its lock held: ``records_from`` gets the metrics the file holds
        *now* (a history grows from them) and returns the records to write over them. Processes updating one file
        at once (xdist workers, parallel CI jobs) lose nothing. A damaged file is an error unless
        ``overwrite_damaged`` (the flag that says overwrite was given). Returns the metrics the file held before
        (None when there was no valid file) and the records written."""
        from filelock import FileLock

        self._lock_folder()
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.lock_path(path))):
            remove_stale_temp_files(path)
            try:
                current = self.load(path)
            except BaselineError:
                if not overwrite_damaged:
                    raise
                current = None
            before = dict(current["metrics"]) if current else None
            records = records_from(before or {})
            self._check_device_key(path, header)
            write_document(path, header, {**(before or {}), **records})
        return before, records

    def write(
        self,
        path: Path,
        metrics: dict[str, dict[str, Any]],
        header: dict[str, Any],
        overwrite_damaged: bool = False,
    ) -> None:
        """Write ``metrics`` over the file's current ones (see :meth:`update`)."""
        self.update(path, lambda current: metrics, header, overwrite_damaged)


UPDATE_HINT = "--accel-update-baselines"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def write_document(path: Path, header: dict[str, Any], metrics: dict[str, dict[str, Any]]) -> None:
    """Write a baseline document atomically, after the check its reader makes: nothing it would refuse."""
    document = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **header, "metrics": metrics}
    try:
        validate_document(path, document)
        text = json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n"
    except (BaselineError, ValueError) as error:
        raise BaselineError(f"{_reason(error)}; nothing was written: this measurement is no baseline") from None
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise BaselineError(f"baseline file {path} would hold {len(text.encode('utf-8')) / 2**20:.1f} MiB, over the "
                            f"{MAX_FILE_BYTES // 2**20} MiB a baseline file may; nothing was written: check fewer "
                            "metrics in one test")
    atomic_write_text(path, text)


def _reason(error: Exception) -> str:
    return str(error).removesuffix(_RECOVERY)


def fault_of(error: BaselineError) -> str:
    """What is wrong with the file, without the advice to re-record it (for a file the update flag never writes)."""
    return _reason(error).removeprefix("baseline file ")


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a number JSON allows", name, 0)


_RECOVERY = f"; fix it, delete it, or re-record it with {UPDATE_HINT}"


def _read_text(path: Path) -> str | None:
    """The file's text, or None when there is none. Only a regular file of at most MAX_FILE_BYTES is read: a FIFO
    would block the run, a device file never end."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BaselineError(f"baseline file {path} cannot be read ({error.strerror}){_RECOVERY}") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_FILE_BYTES:
        os.close(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise BaselineError(f"baseline file {path} is not a regular file (a {_file_type(status.st_mode)}); "
                                f"remove it, or re-record it with {UPDATE_HINT}")
        raise BaselineError(f"baseline file {path} holds {status.st_size / 2**20:.1f} MiB, over the "
                            f"{MAX_FILE_BYTES // 2**20} MiB a baseline file may{_RECOVERY}")
    with os.fdopen(descriptor, "rb") as handle:
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise BaselineError(f"baseline file {path} cannot be read ({error.strerror}){_RECOVERY}") from None
    if len(data) > MAX_FILE_BYTES:
        raise BaselineError(f"baseline file {path} holds over {MAX_FILE_BYTES // 2**20} MiB, the most a baseline "
                            f"file may{_RECOVERY}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BaselineError(f"baseline file {path} is not UTF-8 text (byte {error.start}){_RECOVERY}") from None


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def load_document(path: Path) -> dict[str, Any] | None:
    """The validated document at ``path``, or None when there is no file."""
    text = _read_text(path)
    if text is None:
        return None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise BaselineError(
            f"baseline file {path} is not valid JSON ({error.msg} at line {error.lineno} column "
            f"{error.colno}){_RECOVERY}"
        ) from None
    except RecursionError:
        raise BaselineError(f"baseline file {path} nests JSON deeper than {MAX_DEPTH} levels{_RECOVERY}") from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise BaselineError(f"baseline file {path} is not usable JSON ({error}){_RECOVERY}") from None
    validate_document(path, document)
    return document


def _check_tree(document: Any) -> str | None:
    """Why ``document`` is no JSON a baseline may hold (too deep, a non-finite number, a string that is not
    Unicode text), or None; walked without recursion."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                return f"nests JSON deeper than {MAX_DEPTH} levels"
            items = list(value.items()) if isinstance(value, dict) else [(None, item) for item in value]
            for key, item in items:
                if key is not None and not isinstance(key, str):
                    return f"has a key {_shown(key)} that is not a string"
                if key is not None and not _unicode(key):
                    return f"has a key {_shown(key)} that is not Unicode text"
                pending.append((item, depth + 1))
        elif isinstance(value, float) and not math.isfinite(value):
            return f"holds the number {value!r}, which JSON cannot"
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**64:
            return f"holds the integer {_shown(value)}, too large for a measurement"
        elif isinstance(value, str) and not _unicode(value):
            return f"holds the string {_shown(value)}, which is not Unicode text"
        elif value is not None and not isinstance(value, (str, bool, int, float)):
            return f"holds a {type(value).__name__}, which JSON cannot"
    return None


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (\ud800): no UTF-8 file can hold it
        return False
    return True


def validate_document(path: Path, document: Any) -> None:
    """The one check of a baseline (or reference) document, read or about to be written; a
    :class:`BaselineError` names the file and the field."""
    def bad(reason: str) -> BaselineError:
        return BaselineError(f"baseline file {path} {reason}{_RECOVERY}")

    if not isinstance(document, dict):
        raise bad(f"holds a JSON {type(document).__name__}, not an object")
    tree_problem = _check_tree(document)
    if tree_problem:
        raise bad(tree_problem)
    if document.get("schema") != SCHEMA:
        raise bad(f"has schema {_shown(document.get('schema'))}, expected {SCHEMA!r}")
    if document.get("schema_version") != SCHEMA_VERSION or isinstance(document.get("schema_version"), bool):
        raise bad(f"has schema_version {_shown(document.get('schema_version'))}; this pytest-accel reads "
                  f"{SCHEMA_VERSION}")
    for field, expected in _HEADER_FIELDS.items():
        if field in document and not expected[0](document[field]):
            raise bad(f"field {field!r} is {_shown(document[field])}; expected {expected[1]}")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        raise bad("has no 'metrics' object")
    for name, record in metrics.items():
        try:
            check_baseline_record(name, record)
        except RecordError as error:
            raise bad(str(error)) from None


#: the header's facts: what each may hold (others are kept as they are; nothing reads them)
_HEADER_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "device_key": (lambda value: isinstance(value, str) and bool(value) and len(value) <= 200,
                   "the device key the file was recorded on"),
    "device": (lambda value: isinstance(value, dict), "an object (the device's description)"),
    "software": (lambda value: isinstance(value, dict), "an object (the software stack)"),
    "measured": (lambda value: isinstance(value, dict), "an object (what a reference measured)"),
    "git_commit": (lambda value: value is None or isinstance(value, str), "null or a commit"),
    "recorded_at": (is_timestamp, "a UTC time stamp such as 2026-12-06T05:02:08Z"),
}
