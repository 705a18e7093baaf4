"""The baseline reader, fuzzed: whatever a file holds, reading it gives a checked baseline or one line naming the
file (never another exception, a hang, or a baseline that lets a gross regression pass), and the writer refuses
exactly what the reader refuses."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pytest_accel.baselines import MAX_FILE_BYTES, BaselineError, BaselineStore
from pytest_accel.history import MAX_HISTORY
from pytest_accel.metrics import KINDS, METRIC_KINDS, Metric
from pytest_accel.records import MAX_STORED_SAMPLES
from pytest_accel.verdicts import Policy, compare
from tests.fuzzing import FUZZ_SETTINGS

DEVICE = "dev"
STAMP = "2026-12-06T05:02:08Z"

positive = st.floats(min_value=1e-6, max_value=1e4)
nasty_numbers = st.one_of(
    st.sampled_from([0, -1, 0.0, -0.0, 1e-300, 5e-324, 1e300, 1.7976931348623157e308, 2**53 + 1, 10**30, 10**400,
                     True, False]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
)
nasty_text = st.one_of(st.text(), st.sampled_from(["", "\x00", "\n", "\ud800", "é" * 300, "NaN", "1e999", "many"]))
deep = st.integers(min_value=1, max_value=60).map(lambda depth: json.loads("[" * depth + "]" * depth))
json_values = st.recursive(
    st.none() | st.booleans() | nasty_numbers | nasty_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
nasty = st.one_of(nasty_numbers, nasty_text, json_values, deep, st.none())


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A record as the writer makes it: a history only for speed kinds, its last run the metric's value."""
    kind = draw(st.sampled_from(list(KINDS)))
    direction = draw(st.sampled_from(["lower", "higher"]))
    value = draw(positive)
    record: dict[str, Any] = {"value": value, "unit": draw(st.sampled_from(["s", "", "items/s", "B"])),
                              "kind": kind, "direction": direction, "tolerance": KINDS[kind].default_tolerance,
                              "recorded_at": STAMP}
    if draw(st.booleans()):
        record["summary"] = draw(st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=6),
                                                 max_size=3))
    if draw(st.booleans()):
        centre = draw(positive)
        record["samples"] = [centre * draw(st.floats(0.9, 1.1)) for _ in range(draw(st.integers(1, 30)))]
        if draw(st.booleans()):
            record["probe_samples"] = [draw(st.floats(1e-4, 1e-2)) for _ in range(draw(st.integers(1, 12)))]
    if KINDS[kind].speed and draw(st.booleans()):
        runs = []
        for _ in range(draw(st.integers(1, MAX_HISTORY))):
            run: dict[str, Any] = {"value": value * draw(st.floats(0.8, 1.25)), "recorded_at": STAMP}
            if draw(st.booleans()):
                run |= {"spread": draw(st.floats(0, 0.5)), "n": draw(st.integers(10, 5000)),
                        "floor": value * draw(st.floats(0.7, 1.0))}
            if draw(st.booleans()):
                run["probe"] = draw(st.floats(1e-4, 1e-2))
            runs.append(run)
        runs[-1]["value"] = value
        record["history"] = runs
    return record


def paths_of(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(document, dict):
        for key, item in document.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(document, list):
        for index, item in enumerate(document):
            found += paths_of(item, (*prefix, index))
    return found


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A valid baseline file, then (mostly) broken: a field replaced, removed or added, the text cut or padded."""
    document: dict[str, Any] = {"schema": "pytest-accel/baseline", "schema_version": 1, "device_key": DEVICE,
                                "device": {"model": "x"}, "software": {"python": "3"}, "git_commit": None,
                                "recorded_at": STAMP,
                                "metrics": draw(st.dictionaries(st.text(min_size=1, max_size=12), records(),
                                                                max_size=3))}
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(paths_of(document)))
        if not target:
            document = draw(nasty)
            break
        parent = document
        for part in target[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "replace":
            parent[target[-1]] = draw(nasty)
        elif action == "remove" and isinstance(parent, dict):
            del parent[target[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(nasty)
    try:
        text = json.dumps(document, allow_nan=True)
    except (ValueError, OverflowError):  # a huge int json cannot write, or a surrogate pair: as written by hand
        text = repr(document)
    cut = draw(st.sampled_from(["whole"] * 30 + ["truncated"] * 4 + ["garbage"] * 4 + ["padded"]))
    if cut == "truncated":
        text = text[:draw(st.integers(0, len(text)))]
    elif cut == "padded":
        text += " " * (MAX_FILE_BYTES + 1 - len(text.encode("utf-8", "surrogatepass")))
    elif cut == "garbage":
        position = draw(st.integers(0, len(text)))
        text = text[:position] + draw(st.text(min_size=1, max_size=5)) + text[position:]
    return text


#: A gross regression: F times worse than anything stored, F past any prediction interval the stored history can
#: set (with spreads up to MAX_SPREAD and a history spanning the stored values, the limit stays below exp(5.1 L))
def grossly_worse(name: str, record: dict[str, Any]) -> Metric | None:
    kind = KINDS[record["kind"]]
    if kind.judgement != "relative":
        return None
    if record["direction"] == "higher" and (kind.default_tolerance or 0) >= 1:
        return None  # a drop of 100% or more allowed: the tolerance lets every value through, not the baseline
    history = record.get("history") or []
    series = [[float(record["value"]), *(float(run["value"]) for run in history)],
              [float(run["floor"]) for run in history if run.get("floor")], record.get("samples") or []]
    span = max((math.log(max(values) / min(values)) for values in series if values), default=0.0)
    factor_log = 5.5 * max(span, 1.7) + 3
    if factor_log > 300:
        return None
    factor = math.exp(factor_log)
    times = [float(v) for values in series for v in values] + [float(record["value"])]
    if record["direction"] == "lower":
        value = max(float(record["value"]), *series[0]) * factor if record["value"] > 0 else 1.0
    else:
        value = min(series[0]) / factor
    samples = [max(times) * factor] * 200 if record.get("samples") else None
    if value <= 0 or value > 1e300 or (samples and samples[0] > 1e300):
        return None
    return Metric(name, value, record["unit"], record["kind"], record["direction"], samples=samples)


def check_one(root: Path, text: str) -> None:
    store = BaselineStore(root)
    path = root / DEVICE / "suite" / f"{uuid.uuid4().hex}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        loaded = store.load(path)
        read_error = ""
    except BaselineError as error:
        loaded, read_error = None, str(error)
        assert "\n" not in read_error and read_error.startswith(f"baseline file {path} "), read_error
    finally:
        path.unlink()
    if loaded is not None:
        policy = Policy(gate=frozenset(METRIC_KINDS))
        for name, record in loaded["metrics"].items():
            worse = grossly_worse(name, record)
            if worse is not None:
                verdict = compare(worse, record, KINDS[record["kind"]].default_tolerance, "default", policy)
                assert verdict.status in ("regression", "inconclusive"), (name, record, verdict)
    try:  # the writer, given the same document, refuses exactly what the reader refused for its content
        document = json.loads(text)
    except (ValueError, RecursionError):
        return
    if not isinstance(document, dict) or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES or \
            document.get("schema") != "pytest-accel/baseline" or document.get("schema_version") != 1 or \
            type(document.get("schema_version")) is not int or not isinstance(document.get("metrics"), dict):
        return
    header = {key: value for key, value in document.items() if key not in ("schema", "schema_version", "metrics")}
    try:
        store.write(path, document["metrics"], header)
        write_error = ""
    except BaselineError as error:
        write_error = str(error)
        assert "\n" not in write_error and not path.exists()
    path.unlink(missing_ok=True)
    assert bool(write_error) == bool(read_error), (read_error, write_error)


@FUZZ_SETTINGS
@given(text=documents())
def test_a_baseline_file_reads_as_a_checked_baseline_or_one_line(tmp_path_factory: Any, text: str) -> None:
    check_one(tmp_path_factory.getbasetemp() / "fuzz-baselines", text)


@FUZZ_SETTINGS
@given(run=st.dictionaries(st.sampled_from(["value", "probe", "spread", "n", "floor", "probe_floor", "recorded_at",
                                            "extra"]), nasty, max_size=6),
       length=st.integers(1, MAX_HISTORY + 2), samples=st.integers(1, MAX_STORED_SAMPLES + 2).filter(
           lambda n: n < 40 or n > MAX_STORED_SAMPLES - 2))
def test_a_history_run_of_any_fields_is_checked(tmp_path_factory: Any, run: dict[str, Any], length: int,
                                                samples: int) -> None:
    record = {"value": 0.01, "unit": "s", "kind": "latency", "direction": "lower", "tolerance": 0.05,
              "samples": [0.01] * samples, "history": [{"value": 0.01, "spread": 0.1, "n": 100}] * (length - 1)
              + [{"value": 0.01, **run}]}
    document = {"schema": "pytest-accel/baseline", "schema_version": 1, "device_key": DEVICE,
                "metrics": {"toy.latency": record}}
    try:
        text = json.dumps(document, allow_nan=True)
    except (ValueError, OverflowError):
        return
    check_one(tmp_path_factory.getbasetemp() / "fuzz-histories", text)
