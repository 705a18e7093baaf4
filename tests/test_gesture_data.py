"""Hand-landmark generation, landmark CSV loading, the shared normalisation and MediaPipe extraction errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_accel.workloads.gesture.data import extract_from_images, generated_set, load_csv, normalise
from pytest_accel.workloads.gesture.hand import (
    BONES,
    CHAINS,
    GESTURE_NAMES,
    finger_states,
    generate,
    hand_landmarks,
)


def test_generation_is_deterministic_and_balanced() -> None:
    first, labels = generate(80, seed=5)
    again, labels_again = generate(80, seed=5)
    other, _ = generate(80, seed=6)
    assert first.shape == (80, 21, 3) and np.array_equal(first, again) and np.array_equal(labels, labels_again)
    assert not np.allclose(first, other)
    assert np.bincount(labels).tolist() == [10] * len(GESTURE_NAMES)
    assert len(GESTURE_NAMES) >= 6


def test_canonical_hands_keep_their_bone_lengths() -> None:
    for gesture in GESTURE_NAMES:
        points = hand_landmarks(finger_states(gesture))
        for finger, chain in CHAINS.items():
            lengths = np.linalg.norm(np.diff(points[list(chain)], axis=0), axis=1)
            assert lengths == pytest.approx(BONES[finger], abs=1e-9), (gesture, finger)


def test_gestures_differ_by_finger_states() -> None:
    """An extended finger's tip is far from the wrist, a curled one's is near: the canonical poses say which."""
    tips = {"index": 8, "middle": 12, "ring": 16, "pinky": 20}
    open_palm = hand_landmarks(finger_states("open_palm"))
    fist = hand_landmarks(finger_states("fist"))
    point = hand_landmarks(finger_states("point"))
    for tip in tips.values():
        assert np.linalg.norm(open_palm[tip]) > 1.5 > np.linalg.norm(fist[tip])
    assert np.linalg.norm(point[8]) > 1.5 > np.linalg.norm(point[12])
    shapes = {g: normalise(hand_landmarks(finger_states(g))[None]) for g in GESTURE_NAMES}
    distances = [np.abs(shapes[a] - shapes[b]).max() for a in GESTURE_NAMES for b in GESTURE_NAMES if a < b]
    assert min(distances) > 0.1, "two gestures share one canonical pose"


def test_normalisation_is_wrist_relative_scale_free_and_idempotent() -> None:
    landmarks, _ = generate(16, seed=1)
    features = normalise(landmarks)
    assert features.shape == (16, 42)
    assert np.allclose(features[:, :2], 0) and np.allclose(np.abs(features).max(axis=1), 1)
    moved = landmarks.copy()
    moved[:, :, :2] = moved[:, :, :2] * 3 + 0.2
    assert np.allclose(normalise(moved), features, atol=1e-6)
    assert np.allclose(normalise(features.reshape(16, 21, 2)), features, atol=1e-6)


def _write_csv(path: Path, rows: list[list[object]], header: list[str] | None = None) -> Path:
    lines = [",".join(header)] if header else []
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_layouts_load_to_the_same_features(tmp_path: Path) -> None:
    landmarks, labels = generate(24, seed=2)
    pairs = list(zip(landmarks, labels, strict=True))
    xy_rows = [[int(label), *normalise(points[None])[0].tolist()] for points, label in pairs]
    xyz_rows = [[GESTURE_NAMES[label], *points.ravel().tolist()] for points, label in pairs]
    from_xy = load_csv(_write_csv(tmp_path / "xy.csv", xy_rows))
    header = ["label", *[f"{axis}{i}" for i in range(21) for axis in "xyz"]]
    from_xyz = load_csv(_write_csv(tmp_path / "xyz.csv", xyz_rows, header))
    assert np.allclose(from_xy.features, from_xyz.features, atol=1e-5)
    assert from_xyz.class_names == tuple(sorted({GESTURE_NAMES[label] for label in labels}))
    assert [from_xyz.class_names[i] for i in from_xyz.labels] == [GESTURE_NAMES[label] for label in labels]


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    bad = _write_csv(tmp_path / "bad.csv", [[0, *([0.1] * 42)], [1, *([0.1] * 40)]])
    with pytest.raises(ValueError, match=r"bad.csv:2: 41 columns; expected a label and 42 \(x, y\) or 63"):
        load_csv(bad)
    text = _write_csv(tmp_path / "text.csv", [[0, *([0.1] * 41), "high"]])
    with pytest.raises(ValueError, match="text.csv:1: column 43 is .high., not a number"):
        load_csv(text)


def test_split_is_stratified_and_fixed(tmp_path: Path) -> None:
    data = generated_set(400, seed=3)
    train, val = data.split(0.25, seed=0)
    again_train, _ = data.split(0.25, seed=0)
    assert np.array_equal(train.labels, again_train.labels)
    assert np.bincount(val.labels).tolist() == [round(c * 0.25) for c in np.bincount(data.labels)]
    assert len(train.labels) + len(val.labels) == 400


def test_extraction_without_a_model_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "fist").mkdir()
    with pytest.raises(FileNotFoundError, match=r"MediaPipe hand landmarker model .*missing.task not found; "
                                                 r"download hand_landmarker.task"):
        extract_from_images(tmp_path, tmp_path / "missing.task")


def test_generated_sets_are_kept_in_the_cache_and_regenerated_when_damaged(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ACCEL_CACHE", str(tmp_path))
    fresh = generated_set(40, seed=3)
    [stored] = (tmp_path / "gesture").iterdir()
    assert stored.name.startswith("generated-40x3-") and stored.suffix == ".npz"
    landmarks, labels = generate(40, seed=3)
    assert np.array_equal(fresh.features, normalise(landmarks)) and np.array_equal(fresh.labels, labels)
    stored.write_bytes(b"\x00" * 10)  # damaged: generated again, and the file replaced
    again = generated_set(40, seed=3)
    assert np.array_equal(again.features, fresh.features) and np.array_equal(again.labels, fresh.labels)
    assert stored.stat().st_size > 10 and [p.name for p in (tmp_path / "gesture").iterdir()] == [stored.name]
    other_landmarks, other_labels = generate(40, seed=4)
    np.savez(stored, landmarks=other_landmarks, labels=other_labels)  # what the file holds is what is used
    assert np.array_equal(generated_set(40, seed=3).features, normalise(other_landmarks))


def test_an_unwritable_cache_still_gives_the_generated_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("PYTEST_ACCEL_CACHE", str(blocked))
    landmarks, _ = generate(20, seed=1)
    assert np.array_equal(generated_set(20, seed=1).features, normalise(landmarks))
