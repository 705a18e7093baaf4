"""Reading a JSON document from a file nobody vouches for (a saved report, a baseline file a report names): bounded
in size and nesting, and holding only finite numbers, or :class:`JsonFileError` in one line naming the file and,
where one is at fault, the field (``results[0].metrics[2].samples[5]``).

The bounds are generous for what pytest-accel writes (a report of many devices and timed metrics is a few MB and
nests about eight levels) and keep a hostile file from exhausting memory, time or Python's recursion limit: the
JSON parser and everything that later walks the document recurse once per level.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

#: files past this size are refused before they are read
MAX_JSON_BYTES = 64 * 2**20
#: objects and arrays nested deeper than this are refused
MAX_JSON_DEPTH = 64


class JsonFileError(ValueError):
    """A file that is not a bounded JSON document of finite numbers; the message is one line naming the file."""


def read_json_file(path: Path, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON document in ``path``. :class:`FileNotFoundError` when there is no file (callers say what they
    looked for); :class:`JsonFileError` for anything else that keeps it from being read."""
    text = _read_bounded(path, max_bytes)
    try:
        document = json.loads(text)  # NaN and Infinity parse, then check_bounded names their field
    except json.JSONDecodeError as error:
        raise JsonFileError(f"{path}: not JSON ({_one_line(error.msg)} at line {error.lineno})") from None
    except RecursionError:
        raise JsonFileError(f"{path}: JSON nested more than {max_depth} levels deep") from None
    except ValueError as error:  # an integer literal of more digits than Python converts
        raise JsonFileError(f"{path}: not JSON this reader accepts ({_one_line(str(error))[:120]})") from None
    check_bounded(document, str(path), max_depth)
    return document


def _read_bounded(path: Path, max_bytes: int) -> str:
    try:
        # non-blocking: opening a FIFO with no writer would wait forever; a regular file reads as usual
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise JsonFileError(f"{path}: is a folder") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL in the name
        raise JsonFileError(f"{path}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):  # checked before fdopen, which refuses a folder with its own error
        os.close(descriptor)
        if stat.S_ISDIR(mode):  # opening a folder read-only succeeds on Linux and macOS
            raise JsonFileError(f"{path}: is a folder")
        raise JsonFileError(f"{path}: not a regular file")  # a FIFO or a device would block or never end
    with os.fdopen(descriptor, "rb") as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as error:
            raise JsonFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(data) > max_bytes:
        raise JsonFileError(f"{path}: larger than {max_bytes // 2**20} MiB, more than any file pytest-accel writes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonFileError(f"{path}: not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})") \
            from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def check_bounded(document: Any, source: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`JsonFileError` where ``document`` nests deeper than ``max_depth`` or holds a number that is
    not finite or beyond a float's range (``1e999`` parses as infinity, a 400-digit integer overflows a float)."""
    if not isinstance(document, (dict, list)):
        _check_number(document, source, ())
        return
    stack: list[tuple[dict[str, Any] | list[Any], int, tuple[str | int, ...]]] = [(document, 1, ())]
    while stack:
        container, depth, where = stack.pop()
        if depth > max_depth:
            raise JsonFileError(f"{source}: JSON nested more than {max_depth} levels deep (at {field_name(where)})")
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in items:
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1, (*where, key)))
            else:
                _check_number(item, source, (*where, key))


def _check_number(value: Any, source: str, where: tuple[str | int, ...]) -> None:
    if isinstance(value, float) and not math.isfinite(value) or isinstance(value, int) and not isinstance(
            value, bool) and abs(value) > sys.float_info.max:
        what = "not a number (NaN)" if isinstance(value, float) and math.isnan(value) else (
            "a number beyond the range of a float (at most about 1.8e308 in magnitude)")
        raise JsonFileError(f"{source}: {field_name(where)} is {what}")


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


def field_name(where: tuple[str | int, ...]) -> str:
    """``results[0].metrics[2].value`` of a path of keys and indices; ``the document`` for the empty path."""
    text = ""
    for part in where:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:  # quoted and escaped: a key may hold anything, line breaks included
            text += f"[{part[:60]!r}]"
    return text[:200] or "the document"
