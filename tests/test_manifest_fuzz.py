"""The manifest reader under fuzzed documents (TOML and YAML): whatever the file holds, the outcome is a loaded
manifest or one line naming the file and what is wrong, never another exception, a hang or a wrong pass."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pytest_accel.manifest import Manifest, ManifestError, load_manifest
from tests.fuzzing import FUZZ_SETTINGS

KEYS = ["manifest", "expected_failures", "unsupported", "tolerances", "backend", "devices", "strict", "min_tests",
        "test", "dtype", "reason", "latency", "accuracy", "detection.map50_95", "x"]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["test_parity", "*", "ort:*", "bf16", "", "\x1b[31mred", "line\nbreak", "é", "[", "*::test_*"])
NUMBERS = (st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, 1, -1, 2**63, 10**400, 1e308, -0.0, 0.5]))
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT


def values(depth: int = 3) -> st.SearchStrategy[Any]:
    return st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.sampled_from(KEYS) | TEXT, inner, max_size=4), max_leaves=depth * 6)


ENTRY = st.fixed_dictionaries({"test": TEXT, "reason": TEXT},
                              optional={"dtype": SCALARS, "devices": values(1), "x": SCALARS})
MANIFESTS = st.fixed_dictionaries(
    {},
    optional={
        "manifest": st.fixed_dictionaries({}, optional={"backend": SCALARS, "devices": values(1), "strict": SCALARS,
                                                        "min_tests": NUMBERS | SCALARS}) | values(2),
        "expected_failures": st.lists(ENTRY, max_size=3) | values(1),
        "unsupported": st.lists(ENTRY, max_size=3) | values(1),
        "tolerances": st.dictionaries(st.sampled_from(KEYS) | TEXT, NUMBERS | SCALARS, max_size=4),
        "extra": values(1),
    },
)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()
                               if v is not None) + "}"
    return '""'


def to_toml(document: dict[str, Any]) -> str:
    """A TOML rendering that may be invalid on purpose (nulls dropped, odd keys quoted): the reader must cope."""
    lines = []
    for key, value in document.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for table in value:
                lines.append(f"[[{key}]]")
                lines += [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in table.items() if v is not None]
        elif isinstance(value, dict):
            lines.append(f"[{json.dumps(key)}]")
            lines += [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None]
        elif value is not None:
            lines.insert(0, f"{json.dumps(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


BROKEN_TEXT = st.sampled_from([
    "[manifest]\nmin_tests = " + "[" * 5000 + "]" * 5000,
    "[" * 100000,
    "a:\n" + "  - " * 3000 + "x",
    "- " * 50000,
    "&a [*a]",
    "min_tests: !!python/object:os.system 1",
    "\x00\x01\x02",
    "manifest: {min_tests: 1e999}",
    "tolerances: {latency: .nan}",
    "tolerances: {latency: 1e400}",
    "[tolerances]\nlatency = 1e400\n",
]) | st.text(max_size=200)


def _assert_one_line_or_loaded(path: Path) -> None:
    try:
        manifest = load_manifest(path)
    except ManifestError as error:
        message = str(error)
        assert "\n" not in message, message
        assert str(path) in message, message
        return
    assert isinstance(manifest, Manifest)
    if manifest.min_tests is not None:
        assert isinstance(manifest.min_tests, int) and not isinstance(manifest.min_tests, bool)
        assert manifest.min_tests >= 1
    assert isinstance(manifest.strict, bool)
    for value in manifest.tolerances.values():
        assert isinstance(value, float) and math.isfinite(value) and value >= 0
    for entry in (*manifest.expected_failures, *manifest.unsupported):
        assert entry.test.strip() and entry.reason.strip()


def _folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example (a numbered folder each would cost a scan of all earlier ones)."""
    folder = tmp_path_factory.getbasetemp() / "fuzzed-manifests"
    folder.mkdir(exist_ok=True)
    return folder


@FUZZ_SETTINGS
@given(document=MANIFESTS, as_yaml=st.booleans())
def test_a_fuzzed_manifest_loads_or_is_refused_in_one_line(tmp_path_factory: pytest.TempPathFactory,
                                                           document: dict[str, Any], as_yaml: bool) -> None:
    folder = _folder(tmp_path_factory)
    if as_yaml:
        path = folder / "manifest.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    else:
        path = folder / "manifest.toml"
        path.write_text(to_toml(document), encoding="utf-8")
    _assert_one_line_or_loaded(path)


@FUZZ_SETTINGS
@given(text=BROKEN_TEXT | st.binary(max_size=64).map(lambda b: b.decode("latin-1")), suffix=st.sampled_from(
    [".toml", ".yaml", ".yml"]), raw=st.binary(max_size=32))
def test_a_broken_manifest_file_is_refused_in_one_line(tmp_path_factory: pytest.TempPathFactory, text: str,
                                                       suffix: str, raw: bytes) -> None:
    path = _folder(tmp_path_factory) / f"manifest{suffix}"
    path.write_bytes(text.encode("utf-8", "surrogatepass") + raw)
    _assert_one_line_or_loaded(path)
