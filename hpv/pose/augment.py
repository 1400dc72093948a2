"""Pose-level augmentations for training data. Each maps a reduced, normalized PoseSequence to
another one, and the ground truth is drawn from the result, so conditioning and target agree."""

from __future__ import annotations

import numpy as np

from hpv.pose.keypoints import BODY_POINTS, NUM_KEYPOINTS, OFFSETS, index, keypoints
from hpv.pose.sequence import FRAME_SIZE, SHOULDER_CENTER, PoseSequence


HAND = 21


def _check(seq: PoseSequence) -> None:
    keypoints(seq.frames(0, 0))  # raises ConfigError for other layouts


def _hand(side: str) -> list[int]:
    start = OFFSETS[f"{side}_HAND_LANDMARKS"]
    return list(range(start, start + HAND))


def _with(seq: PoseSequence, points: np.ndarray, confidence: np.ndarray) -> PoseSequence:
    return PoseSequence(points.astype(np.float32), confidence.astype(np.float32), seq.fps, seq.layout)


def mirror_order() -> np.ndarray:
    """The index permutation of the 178-point layout that swaps left and right: body points and
    hands (face points keep their indices)."""
    order = np.arange(NUM_KEYPOINTS)
    for k in range(0, len(BODY_POINTS), 2):  # BODY_POINTS alternate LEFT_x, RIGHT_x
        a, b = index("POSE_LANDMARKS", BODY_POINTS[k]), index("POSE_LANDMARKS", BODY_POINTS[k + 1])
        order[a], order[b] = b, a
    left, right = _hand("LEFT"), _hand("RIGHT")
    order[left], order[right] = right, left
    return order


def mirror(seq: PoseSequence) -> PoseSequence:
    """Left-right mirror image: x -> 512 - x, left and right body points and hands swapped (a
    left-handed signer). Face points keep their indices: their shapes are mirrored in place."""
    _check(seq)
    order = mirror_order()
    points = seq.points[:, order].copy()
    seen = seq.confidence[:, order] > 0
    points[..., 0] = np.where(seen, FRAME_SIZE - points[..., 0], 0.0)
    return _with(seq, points, seq.confidence[:, order])


def jitter(seq: PoseSequence, rng: np.random.Generator, scale: float = 0.12, offset: float = 24.0) -> PoseSequence:
    """The normalization a little off, as in files whose shoulders were detected badly: one random
    zoom in [1 - scale, 1 + scale] about the shoulder centre and one shift of up to `offset` units."""
    _check(seq)
    z = float(rng.uniform(1 - scale, 1 + scale))
    shift = rng.uniform(-offset, offset, 2)
    points = seq.points.copy()
    points[..., :2] = (points[..., :2] - SHOULDER_CENTER) * z + SHOULDER_CENTER + shift
    points[..., 2] *= z
    points[seq.confidence <= 0] = 0.0
    return _with(seq, points, seq.confidence)


def drop(seq: PoseSequence, rng: np.random.Generator) -> PoseSequence:
    """Missing keypoints, as trackers lose them: for a random stretch of frames one hand, or the
    face, or an elbow and wrist go missing (confidence 0)."""
    _check(seq)
    parts = [
        _hand("LEFT"),
        _hand("RIGHT"),
        list(range(OFFSETS["FACE_LANDMARKS"], OFFSETS["LEFT_HAND_LANDMARKS"])),
        [index("POSE_LANDMARKS", "LEFT_WRIST"), index("POSE_LANDMARKS", "LEFT_ELBOW"), *_hand("LEFT")],
    ]
    T = seq.num_frames
    start = int(rng.integers(0, max(1, T - 1)))
    stop = int(rng.integers(start + 1, T + 1))
    part = parts[int(rng.integers(len(parts)))]
    conf, points = seq.confidence.copy(), seq.points.copy()
    conf[start:stop, part] = 0.0
    points[start:stop, part] = 0.0
    return _with(seq, points, conf)
