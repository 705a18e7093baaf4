"""A kinematic hand that produces MediaPipe's 21 hand landmarks, and gestures defined as finger states.

Topology (MediaPipe Hands): 0 wrist; thumb 1 CMC, 2 MCP, 3 IP, 4 tip; index 5 MCP, 6 PIP, 7 DIP, 8 tip; middle
9-12; ring 13-16; pinky 17-20.

The hand is built in its own frame — palm in the x-y plane, fingers along +y, palm facing +z, a right hand's thumb
on -x — from bone lengths (human proportions, palm length 1), per-joint flexion (bending each finger towards the
palm), finger spread (abduction in the palm plane) and thumb opposition (the thumb's metacarpal swung across and in
front of the palm). A pose is then randomised (bone lengths, joint angles, spread, 3-D rotation, scale, image
position, handedness by mirroring, landmark noise) and projected like MediaPipe's output: x, y in [0, 1] image
coordinates, z depth relative to the wrist in roughly x's scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
#: landmark indices of each finger's chain (base joint first); the wrist is 0
CHAINS: dict[str, tuple[int, ...]] = {
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}
#: (x, y) of each finger's base joint in the palm plane, palm length 1 (wrist to middle MCP)
BASES: dict[str, tuple[float, float]] = {
    "thumb": (-0.20, 0.22),
    "index": (-0.27, 0.94),
    "middle": (-0.04, 1.00),
    "ring": (0.17, 0.93),
    "pinky": (0.35, 0.80),
}
#: phalanx lengths from the base joint outwards (thumb: metacarpal, proximal, distal)
BONES: dict[str, tuple[float, float, float]] = {
    "thumb": (0.42, 0.32, 0.27),
    "index": (0.42, 0.25, 0.21),
    "middle": (0.46, 0.29, 0.22),
    "ring": (0.43, 0.27, 0.21),
    "pinky": (0.34, 0.20, 0.18),
}
#: resting direction of each finger in the palm plane, degrees from +y (negative towards the thumb side)
SPLAY = {"thumb": -55.0, "index": -8.0, "middle": 0.0, "ring": 7.0, "pinky": 15.0}


@dataclass(frozen=True)
class FingerState:
    """Joint flexion in degrees (base, middle, end joint) and extra spread; for the thumb also opposition."""

    flexion: tuple[float, float, float]
    spread: float = 0.0
    opposition: float = 0.0


EXTENDED = FingerState((5.0, 5.0, 5.0))
CURLED = FingerState((80.0, 100.0, 60.0))
THUMB_OUT = FingerState((0.0, 5.0, 5.0), spread=-10.0, opposition=10.0)
THUMB_TUCKED = FingerState((20.0, 40.0, 40.0), spread=25.0, opposition=60.0)
THUMB_UP = FingerState((0.0, 0.0, 0.0), spread=-25.0, opposition=0.0)

#: Gestures as finger states. Fingers not named are curled; the thumb is tucked unless named.
GESTURES: dict[str, Mapping[str, FingerState]] = {
    "open_palm": {"thumb": THUMB_OUT, "index": FingerState((5, 5, 5), -6), "middle": EXTENDED,
                  "ring": FingerState((5, 5, 5), 6), "pinky": FingerState((5, 5, 5), 12)},
    "fist": {"thumb": FingerState((10.0, 30.0, 30.0), spread=35.0, opposition=70.0)},
    "point": {"index": EXTENDED},
    "peace": {"index": FingerState((5, 5, 5), -10), "middle": FingerState((5, 5, 5), 10)},
    "thumbs_up": {"thumb": THUMB_UP},
    "ok": {"thumb": FingerState((10.0, 25.0, 20.0), spread=10.0, opposition=55.0),
           "index": FingerState((45.0, 70.0, 35.0)), "middle": EXTENDED,
           "ring": FingerState((5, 5, 5), 6), "pinky": FingerState((5, 5, 5), 12)},
    "call": {"thumb": THUMB_UP, "pinky": FingerState((5, 5, 5), 15)},
    "rock": {"index": EXTENDED, "pinky": FingerState((5, 5, 5), 12)},
}
GESTURE_NAMES: tuple[str, ...] = tuple(GESTURES)


def finger_states(gesture: str) -> dict[str, FingerState]:
    states = {finger: CURLED for finger in FINGERS}
    states["thumb"] = THUMB_TUCKED
    states.update(GESTURES[gesture])
    return states


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    angle = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def hand_landmarks(
    states: Mapping[str, FingerState], bones: Mapping[str, tuple[float, float, float]] = BONES
) -> np.ndarray:
    """21 x 3 landmarks of a right hand in the hand frame (palm length 1), by forward kinematics."""
    points = np.zeros((21, 3))
    palm_normal = np.array([0.0, 0.0, 1.0])
    for finger in FINGERS:
        state = states[finger]
        chain = CHAINS[finger]
        base = np.array([*BASES[finger], 0.0])
        points[chain[0]] = base
        direction = _rotation(palm_normal, -(SPLAY[finger] + state.spread)) @ np.array([0.0, 1.0, 0.0])
        if finger == "thumb":
            # opposition swings the thumb's metacarpal across and in front of the palm
            direction = _rotation(np.array([0.0, 1.0, 0.0]), -state.opposition) @ direction
            direction = _rotation(palm_normal, -0.6 * state.opposition) @ direction
        lateral = np.cross(direction, palm_normal)
        if np.linalg.norm(lateral) < 1e-6:
            lateral = np.array([1.0, 0.0, 0.0])
        position = base
        for joint, (length, flexion) in enumerate(zip(bones[finger], state.flexion, strict=True)):
            # flexion bends towards the palm (-z): rotate about the finger's lateral axis
            direction = _rotation(lateral, -flexion) @ direction
            position = position + length * direction
            points[chain[joint + 1]] = position
    return points


def _three(values: Iterable[float]) -> tuple[float, float, float]:
    """The three values of a finger's joints or bones as the 3-tuple they are typed as (``tuple()`` of a generator
    gives a tuple of unknown length); ValueError for any other count."""
    first, second, third = values
    return first, second, third


@dataclass(frozen=True)
class PoseNoise:
    """How much a generated sample departs from its gesture's canonical pose."""

    joint_degrees: float = 9.0
    spread_degrees: float = 5.0
    bone_scale: float = 0.07
    landmark_sigma: float = 0.012  # in palm lengths
    near_miss: float = 0.25  # share of samples with one finger moved part-way towards the opposite state
    max_tilt_degrees: float = 50.0  # rotation about the image axes; any rotation in the image plane


def sample_pose(gesture: str, rng: np.random.Generator, noise: PoseNoise = PoseNoise()) -> np.ndarray:
    """A randomised 21 x 3 landmark set in MediaPipe's normalised image coordinates."""
    states = {}
    for finger, state in finger_states(gesture).items():
        flexion = _three(float(np.clip(f + rng.normal(0, noise.joint_degrees), -10, 120)) for f in state.flexion)
        states[finger] = FingerState(flexion, state.spread + rng.normal(0, noise.spread_degrees),
                                     state.opposition + rng.normal(0, noise.spread_degrees))
    if rng.random() < noise.near_miss:
        finger = FINGERS[int(rng.integers(1, 5))]
        current = states[finger]
        target = EXTENDED.flexion if current.flexion[1] > 50 else CURLED.flexion
        share = rng.uniform(0.25, 0.45)  # part-way: the gesture still reads as itself, barely
        moved = _three(c + share * (t - c) for c, t in zip(current.flexion, target, strict=True))
        states[finger] = FingerState(moved, current.spread, current.opposition)
    hand_scale = rng.normal(1.0, noise.bone_scale / 2)
    bones = {
        finger: _three(length * hand_scale * rng.normal(1.0, noise.bone_scale / 2) for length in lengths)
        for finger, lengths in BONES.items()
    }
    points = hand_landmarks(states, bones)
    points += rng.normal(0, noise.landmark_sigma, points.shape)
    if rng.random() < 0.5:  # left hand: the mirror image
        points[:, 0] *= -1
    tilt_x, tilt_y = rng.uniform(-noise.max_tilt_degrees, noise.max_tilt_degrees, 2)
    roll = rng.uniform(-180, 180)
    rotation = (_rotation(np.array([0.0, 0.0, 1.0]), roll) @ _rotation(np.array([1.0, 0.0, 0.0]), tilt_x)
                @ _rotation(np.array([0.0, 1.0, 0.0]), tilt_y))
    points = points @ rotation.T
    # image coordinates: y grows downwards; a palm length spans 8-25% of the frame
    size = rng.uniform(0.08, 0.25)
    centre = rng.uniform(0.25, 0.75, 2)
    image = np.empty_like(points)
    image[:, 0] = centre[0] + size * points[:, 0]
    image[:, 1] = centre[1] - size * points[:, 1]
    image[:, 2] = size * (points[:, 2] - points[0, 2])
    return image


def generate(count: int, seed: int, noise: PoseNoise = PoseNoise()) -> tuple[np.ndarray, np.ndarray]:
    """``count`` samples with balanced labels: landmarks (count, 21, 3) and labels (count,). Deterministic by seed."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(GESTURE_NAMES)
    rng.shuffle(labels)
    poses = np.stack([sample_pose(GESTURE_NAMES[label], rng, noise) for label in labels])
    return poses.astype(np.float32), labels.astype(np.int64)
