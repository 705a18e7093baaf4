"""Hypothesis strategies that turn a valid JSON document into a broken one, shared by the fuzzed readers of JSON
reports and reference files: wrong types, non-finite and extreme numbers, deep nesting, huge strings, unicode and
control characters, missing and extra fields, truncation and stray bytes."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

#: stands for a value that only the JSON text can hold (nesting deeper than Python builds comfortably, a number
#: past a float's range written as digits); swapped in after ``json.dumps``
_DEEP = "\x00deep\x00"
_HUGE_INT = "\x00hugeint\x00"

EXTREME_NUMBERS = st.sampled_from([
    0, -1, 1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 2**63, -(2**63), 2**1023 * 2 - 1, 10**300,
    float("nan"), float("inf"), float("-inf"), 1e-300, 0.0, -0.0, 3, 2.5,
])
NASTY_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "\n", "line\nbreak", "\r", "\x00", "\x1b[31m", "\u2028", "\ufeff", "é", "🚀",
                     "cpu\n", "../../etc/passwd", "/dev/zero", "/dev/stdin", "nan", "1e999", "-"]),
    st.integers(1, 200).map(lambda n: "x" * (n * 997)),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True),
                    EXTREME_NUMBERS, NASTY_TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(NASTY_TEXT, inner, max_size=4)), max_leaves=12)
REPLACEMENTS = st.one_of(JSON_VALUES, st.just(_DEEP), st.just(_HUGE_INT))


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        document = document[part]
    return document


@st.composite
def mutated_document(draw: st.DrawFn, seed: Any, max_mutations: int = 4) -> Any:
    """``seed`` (a JSON value) with up to ``max_mutations`` fields replaced, removed or added."""
    document = copy.deepcopy(seed)
    for _ in range(draw(st.integers(0, max_mutations))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if not path:
            if action == "replace":
                document = draw(REPLACEMENTS)
            continue
        parent = _parent(document, path)
        if action == "replace":
            parent[path[-1]] = draw(REPLACEMENTS)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(NASTY_TEXT)] = draw(REPLACEMENTS)
        else:
            parent.insert(draw(st.integers(0, len(parent))), draw(REPLACEMENTS))
    return document


@st.composite
def document_bytes(draw: st.DrawFn, seed: Any) -> bytes:
    """A mutated document as a file holds it, sometimes damaged as text: cut short, stray bytes, a BOM."""
    document = draw(mutated_document(seed))
    text = json.dumps(document, indent=draw(st.sampled_from([None, 2])), allow_nan=True,
                      ensure_ascii=draw(st.booleans()))
    depth = draw(st.sampled_from([70, 1000, 200_000]))
    text = text.replace(json.dumps(_DEEP, ensure_ascii=False), "[" * depth + "]" * depth)
    text = text.replace(json.dumps(_DEEP), "[" * depth + "]" * depth)
    text = text.replace(json.dumps(_HUGE_INT), "9" * draw(st.sampled_from([309, 400, 5000])))
    data = text.encode("utf-8")
    return damaged_bytes(draw, data)


def damaged_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` as written, or (one time in two) truncated, with stray bytes inserted, or behind a UTF-8 BOM."""
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "bytes", "bom"]))
    if damage == "truncate" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if damage == "bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if damage == "bom":
        return b"\xef\xbb\xbf" + data
    return data
