"""Landmark CSVs nobody vouches for: a valid CSV of generated hands mutated into broken ones loads to finite
features in [-1, 1] with at least two labels of two rows each, or is refused in one line naming the file and line
(and column); and values that are finite but overflow the normalisation (defect 5: ``1e308``) never reach
training, where a non-finite loss is refused rather than reported."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pytest_accel.errors import DeviceFailure
from pytest_accel.suite_options import OPT_GESTURE_DATA
from pytest_accel.workloads.gesture.data import (
    FEATURES,
    MAX_LANDMARK_MAGNITUDE,
    MIN_ROWS_PER_LABEL,
    LandmarkSet,
    load_csv,
    normalise,
)
from pytest_accel.workloads.gesture.hand import GESTURE_NAMES, generate
from tests.fuzz_documents import damaged_bytes
from tests.fuzzing import FUZZ_SETTINGS
from tests.test_bad_inputs import SUITE_OPTIONS_CONFTEST, _usage_error

_LANDMARKS, _LABELS = generate(8, seed=5)

NASTY_CELLS = st.one_of(
    st.sampled_from(["1e308", "-1e308", "1.7976931348623157e308", "1e6", "-1e6", "1000001", "1e7", "nan", "inf",
                     "-inf", "1e-320", "5e-324", "0", "-0", "0x10", "1_0", "٣", "", " ", "\x00", "\"", "\"\"",
                     "a\nb", "\r", "\u2028", "🖐", "1e999", "9" * 400, "--5", "²", "+1", "1,5"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-2e6, 2e6).map(str),
    st.text(max_size=12),
    st.integers(1, 3).map(lambda n: "9" * (n * 70_000)),  # past the csv module's 131 072-character field limit
)
NASTY_LABELS = st.one_of(st.sampled_from(["0", "1", "-1", "--5", "²", "٣", "9" * 5000, "", " ", "open", "open ",
                                          "a\x00b", "\ufeffopen", "é"]), st.text(max_size=8))


@st.composite
def landmark_csv(draw: st.DrawFn) -> bytes:
    """A CSV of generated hands (42 or 63 values, names or numbers as labels, a header or none), mutated."""
    layout = draw(st.sampled_from([2, 3]))
    numeric = draw(st.booleans())
    rows = [[str(int(label)) if numeric else GESTURE_NAMES[label],
             *(repr(float(v)) for v in points[:, :layout].ravel())]
            for points, label in zip(_LANDMARKS, _LABELS, strict=True)]
    for _ in range(draw(st.integers(0, 4))):
        if not rows:
            break
        row = rows[draw(st.integers(0, len(rows) - 1))]
        action = draw(st.sampled_from(["cell", "cell", "cell", "label", "drop-cell", "add-cell", "drop-row",
                                       "copy-row"]))
        if action == "cell":
            row[draw(st.integers(1, len(row) - 1))] = draw(NASTY_CELLS)
        elif action == "label":
            row[0] = draw(NASTY_LABELS)
        elif action == "drop-cell":
            del row[draw(st.integers(0, len(row) - 1))]
        elif action == "add-cell":
            row.insert(draw(st.integers(0, len(row))), draw(NASTY_CELLS))
        elif action == "drop-row":
            rows.remove(row)
        else:
            rows.append(list(row))
    header = ["label", *(f"{axis}{i}" for i in range(21) for axis in "xyz"[:layout])]
    lines = ([",".join(header)] if draw(st.booleans()) else []) + [",".join(row) for row in rows]
    data = (draw(st.sampled_from(["\n", "\r\n"])).join(lines) + "\n").encode("utf-8", "surrogatepass")
    return damaged_bytes(draw, data)


def _row(label: str, value: str) -> str:
    return ",".join([label, *[value] * FEATURES])


def _loaded_or_refused_in_one_line(path: Path) -> LandmarkSet | None:
    try:
        loaded = load_csv(path)
    except ValueError as error:
        message = str(error)
        assert "\n" not in message and "\r" not in message and message.startswith(f"{path}:"), message
        return None
    assert loaded.features.shape == (len(loaded.labels), FEATURES) and loaded.features.dtype == np.float32
    assert np.isfinite(loaded.features).all() and np.abs(loaded.features).max() <= 1.0
    counts = np.bincount(loaded.labels, minlength=len(loaded.class_names))
    assert len(loaded.class_names) >= 2 and counts.min() >= MIN_ROWS_PER_LABEL
    return loaded


_CSV_NAMES = itertools.count()


@FUZZ_SETTINGS
@given(data=landmark_csv())
@example(data=("\n".join([_row("0", "1e308"), _row("0", "-1e308"), _row("1", "1e308"),
                          _row("1", "-1e308")]) + "\n").encode())
@example(data=("\n".join([_row("--5", "0.5"), _row("--5", "0.1"), _row("1", "0.2"), _row("1", "0.3")])
               + "\n").encode())
@example(data=("\n".join([_row("²", "0.5"), _row("²", "0.1"), _row("1", "0.2"), _row("1", "0.3")])
               + "\n").encode())
@example(data=(_row("0", "9" * 140_000) + "\n").encode())
def test_a_landmark_csv_loads_or_is_refused_in_one_line(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / f"landmarks-{next(_CSV_NAMES)}.csv"  # one per example: loads are cached per file version
    path.write_bytes(data)
    _loaded_or_refused_in_one_line(path)
    path.unlink()


def test_overflowing_landmarks_are_refused_naming_file_line_and_column(tmp_path: Path) -> None:
    """Defect 5: +-1e308 passed the finiteness check, overflowed to inf relative to the wrist and trained on NaN
    (loaded without complaint before)."""
    rows = [_row("open", "0.5"), _row("open", "0.4"), _row("fist", "0.3"),
            ",".join(["fist", "-1e308", *["1e308"] * 41])]
    path = tmp_path / "huge.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError) as refused:
        load_csv(path)
    assert str(refused.value) == (f"{path}:4: column 2 is '-1e308'; landmark values lie within "
                                  f"+-{MAX_LANDMARK_MAGNITUDE:g} (normalised image coordinates, pixels or metres)")


def test_the_option_refuses_overflowing_landmarks_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SUITE_OPTIONS_CONFTEST)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    rows = [_row("open", "0.5"), _row("open", "1e308"), _row("fist", "-1e308"), _row("fist", "0.2")]
    (pytester.path / "bad.csv").write_text("\n".join(rows) + "\n")
    line = _usage_error(pytester, f"{OPT_GESTURE_DATA}=bad.csv")
    assert line.startswith(f"ERROR: {OPT_GESTURE_DATA}: ") and "bad.csv:2: column 2 is '1e308'" in line


def test_the_normalisation_names_the_value_that_overflows() -> None:
    """Any source (generated, MediaPipe) goes through the same checked steps: the wrist-relative step of 1e308
    against -1e308 overflows, and the error names the sample and column instead of returning NaN features."""
    landmarks = np.full((3, 21, 3), 0.5)
    landmarks[2, 0, 0] = -1e308
    landmarks[2, 5, 0] = 1e308
    with pytest.raises(ValueError, match=r"^hands: sample 2: column 17 \(x of landmark 5\) gives the landmark "
                                         r"relative to the wrist inf; landmarks must stay finite"):
        normalise(landmarks, "hands")


def test_training_refuses_to_report_from_a_non_finite_loss() -> None:
    """A run whose loss is NaN has no final accuracy: it fails the test in one line (it reported one before)."""
    from pytest_accel.devices.torch import TorchBackend
    from pytest_accel.workloads.gesture.train import Recipe, Trainer

    features = np.full((8, FEATURES), 0.5, dtype=np.float32)
    features[3, 7] = np.nan
    data = LandmarkSet(features, np.array([0, 1] * 4, dtype=np.int64), ("a", "b"), "broken")
    trainer = Trainer(TorchBackend().open("cpu"), "fp32", Recipe(max_epochs=2, min_steps=1))
    with pytest.raises(DeviceFailure, match=r"^gesture training on cpu in fp32 \(seed 0\) diverged: epoch 1 has "
                                            r"training loss nan"):
        trainer.train(data, data, seed=0)
