"""What a device's datasheet promises: peak throughput per precision, memory and its bandwidth, power and price.

The table ships with the package (``specs.toml`` beside this module); every value names its source (document and
date). Users add or replace entries with files of their own in the same schema (``--accel-datasheet FILE``, or
the :func:`~pytest_accel.hookspecs.pytest_accel_datasheet_files` hook): an entry with a shipped entry's ``id``
replaces it. A device is matched by the name its backend reports (vendor and model of its
:class:`~pytest_accel.devices.DeviceInfo`) against each entry's ``match`` patterns; the host CPU, when no entry
matches it, is estimated from its own instruction sets (:mod:`pytest_accel.datasheet.cpu`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import tomllib

from pytest_accel.errors import OptionError

SHIPPED = Path(__file__).with_name("specs.toml")
#: precisions a table may give, in the order tables show them; int8 and int4 are in TOPS, the rest in TFLOPS
PRECISIONS = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")
KINDS = ("cpu", "gpu", "tpu", "npu", "hpu", "soc")
_VALUE_FIELDS = ("memory_gb", "memory_bandwidth_gbs", "tdp_w", "list_price_usd", "cloud_price_usd_per_hour")
_ENTRY_KEYS = {"id", "vendor", "model", "kind", "match", "peak_tflops", "sources", "notes", *_VALUE_FIELDS}
_SOURCE_KEYS = {"title", "publisher", "url", "date", "accessed"}
_ID = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?\Z")


class DatasheetError(OptionError):
    """A datasheet file that cannot be used, with the file, the entry and the value named."""


@dataclass(frozen=True)
class Source:
    key: str
    title: str
    publisher: str
    url: str
    date: str
    accessed: str = ""

    def describe(self) -> str:
        return f"{self.publisher}, {self.title} ({self.date}), {self.url}"


@dataclass(frozen=True)
class Spec:
    """One accelerator model as its datasheet gives it. Peaks are dense (no sparsity), in TFLOPS (TOPS for ints)."""

    id: str
    vendor: str
    model: str
    kind: str
    match: tuple[str, ...]
    peak_tflops: Mapping[str, float]
    values: Mapping[str, float]
    #: field (``memory_gb``, ``peak_tflops`` or ``peak_tflops.fp8``) -> its source
    sources: Mapping[str, Source]
    notes: str = ""
    origin: str = ""

    @property
    def name(self) -> str:
        return f"{self.vendor} {self.model}"

    def source_of(self, field_name: str) -> Source:
        group = field_name.split(".")[0]
        return self.sources.get(field_name) or self.sources[group]

    def matches(self, device_name: str) -> int:
        """How much of ``device_name`` the longest matching pattern covers (0: no match), so that the most
        specific entry wins ('H100 NVL' over 'H100')."""
        best = 0
        for pattern in self.match:
            found = re.search(pattern, device_name, flags=re.IGNORECASE)
            if found:
                best = max(best, len(found.group(0)) or 1)
        return best


def _check(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise DatasheetError(f"{where}: {message}")


def _positive(where: str, name: str, value: Any) -> float:
    _check(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0,
           where, f"{name} = {value!r}: expected a number above 0")
    return float(value)


def _sources(path: Path, raw: Any) -> dict[str, Source]:
    where = f"{path} [sources]"
    _check(isinstance(raw, dict), where, "expected a table of sources")
    sources = {}
    for key, entry in raw.items():
        at = f"{where}.{key}"
        _check(bool(_ID.match(key)), at, "a source key is lower-case letters, digits and dashes")
        _check(isinstance(entry, dict), at, "expected a table with title, publisher, url and date")
        unknown = sorted(set(entry) - _SOURCE_KEYS)
        _check(not unknown, at, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_SOURCE_KEYS))}")
        for name in ("title", "publisher", "url", "date"):
            _check(isinstance(entry.get(name), str) and bool(entry[name].strip()), at, f"{name} is required (text)")
        _check(bool(_DATE.match(entry["date"])), at, f"date = {entry['date']!r}: expected YYYY, YYYY-MM or YYYY-MM-DD")
        sources[key] = Source(key, entry["title"], entry["publisher"], entry["url"], entry["date"],
                              str(entry.get("accessed", "")))
    return sources


def _spec(path: Path, index: int, raw: Any, sources: Mapping[str, Source]) -> Spec:
    where = f"{path} accelerator #{index + 1}"
    _check(isinstance(raw, dict), where, "expected a table")
    where = f"{path} accelerator {raw.get('id', f'#{index + 1}')!r}"
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    _check(not unknown, where, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ENTRY_KEYS))}")
    _check(isinstance(raw.get("id"), str) and bool(_ID.match(raw["id"])), where,
           "id is required: lower-case letters, digits and dashes")
    for name in ("vendor", "model"):
        _check(isinstance(raw.get(name), str) and bool(raw[name].strip()), where, f"{name} is required (text)")
    kind = raw.get("kind", "gpu")
    _check(kind in KINDS, where, f"kind = {kind!r}: one of {', '.join(KINDS)}")
    match = raw.get("match")
    _check(isinstance(match, list) and bool(match) and all(isinstance(m, str) and m for m in match), where,
           "match is required: a list of regular expressions searched in the name the device's backend reports")
    for pattern in match:
        try:
            re.compile(pattern)
        except re.error as error:
            raise DatasheetError(f"{where}: match pattern {pattern!r} is no regular expression ({error})") from None
    peaks = raw.get("peak_tflops", {})
    _check(isinstance(peaks, dict), where, "peak_tflops must be a table: precision = TFLOPS (TOPS for int8/int4)")
    bad = sorted(set(peaks) - set(PRECISIONS))
    _check(not bad, where, f"peak_tflops: unknown precision(s) {', '.join(bad)}; allowed: {', '.join(PRECISIONS)}")
    peak_tflops = {p: _positive(where, f"peak_tflops.{p}", peaks[p]) for p in PRECISIONS if p in peaks}
    values = {name: _positive(where, name, raw[name]) for name in _VALUE_FIELDS if name in raw}
    named = raw.get("sources", {})
    _check(isinstance(named, dict), where, "sources must be a table: field = source key")
    resolved = {}
    for field_name, key in named.items():
        _check(key in sources, where, f"sources.{field_name} = {key!r} is not defined under [sources]")
        resolved[field_name] = sources[key]
    given = [*(f"peak_tflops.{p}" for p in peak_tflops), *values]
    unsourced = [f for f in given if f not in resolved and f.split(".")[0] not in resolved]
    _check(not unsourced, where, f"no source for {', '.join(unsourced)}: every value names its source "
           "(sources = { field = \"source-key\" })")
    notes = raw.get("notes", "")
    _check(isinstance(notes, str), where, "notes must be text")
    return Spec(raw["id"], raw["vendor"].strip(), raw["model"].strip(), kind, tuple(match), peak_tflops, values,
                resolved, notes, str(path))


def load_file(path: Path) -> list[Spec]:
    """The entries of one datasheet file, validated; DatasheetError names the file, the entry and the value."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DatasheetError(f"datasheet {path}: cannot read it ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise DatasheetError(f"datasheet {path}: not valid TOML ({error})") from None
    schema = document.get("schema")
    _check(schema == 1, str(path), f"schema = {schema!r}: this pytest-accel reads schema = 1")
    unknown = sorted(set(document) - {"schema", "sources", "accelerator"})
    _check(not unknown, str(path), f"unknown top-level key(s) {', '.join(unknown)}; allowed: schema, sources, "
           "accelerator")
    sources = _sources(path, document.get("sources", {}))
    entries = document.get("accelerator", [])
    _check(isinstance(entries, list), str(path), "accelerator must be an array of tables ([[accelerator]])")
    specs = [_spec(path, i, raw, sources) for i, raw in enumerate(entries)]
    ids = [s.id for s in specs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    _check(not repeated, str(path), f"id(s) {', '.join(repeated)} given more than once")
    return specs


@dataclass
class Datasheet:
    """The shipped table with the user's files over it (a later file's entry replaces an earlier one's id)."""

    specs: dict[str, Spec] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, user_files: Iterable[Path] = (), *, shipped: Path | None = SHIPPED) -> Datasheet:
        table = cls()
        for path in ([shipped] if shipped is not None else []) + [Path(p) for p in user_files]:
            for spec in load_file(path):
                table.specs[spec.id] = spec
            table.files.append(str(path))
        return table

    def lookup(self, device_name: str) -> Spec | None:
        """The entry whose pattern matches most of ``device_name``; None when none does. Between equally good
        matches the later file's entry wins (a user's over the shipped one)."""
        best: tuple[int, int, Spec] | None = None
        for order, spec in enumerate(self.specs.values()):
            score = spec.matches(device_name)
            if score and (best is None or (score, order) > best[:2]):
                best = (score, order, spec)
        return best[2] if best else None


__all__ = ["PRECISIONS", "Datasheet", "DatasheetError", "Source", "Spec", "load_file"]
