"""The app's reduced 178-point layout as the new stages take it: one float32 array [T, 178, 3] per
sequence holding x, y (in the 512x512 normalized frame) and the confidence of every point.

Order (what pose-format's `reduce_holistic` writes): 8 body points (shoulders, elbows, wrists, hips;
left before right), the 128 face contour points (ascending MediaPipe index), the left hand's 21, the
right hand's 21. Missing points have confidence 0; their x, y are written as 0 so that every value an
app passes is finite."""

from __future__ import annotations

import numpy as np

from hpv.errors import ConfigError
from hpv.pose.holistic import FACE_CONTOUR_POINTS, HAND_POINTS
from hpv.pose.sequence import PoseSequence

BODY_POINTS = ("LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST",
               "RIGHT_WRIST", "LEFT_HIP", "RIGHT_HIP")
COMPONENTS = (
    ("POSE_LANDMARKS", BODY_POINTS),
    ("FACE_LANDMARKS", tuple(str(p) for p in FACE_CONTOUR_POINTS)),
    ("LEFT_HAND_LANDMARKS", HAND_POINTS),
    ("RIGHT_HAND_LANDMARKS", HAND_POINTS),
)
NUM_KEYPOINTS = sum(len(p) for _, p in COMPONENTS)  # 178
OFFSETS = dict(zip((c for c, _ in COMPONENTS), np.cumsum([0] + [len(p) for _, p in COMPONENTS[:-1]]).tolist()))


def index(component: str, point: str | int) -> int:
    """Index of `point` of `component` in the 178-point array."""
    names = dict(COMPONENTS)[component]
    return OFFSETS[component] + names.index(str(point))


def keypoints(seq: PoseSequence) -> np.ndarray:
    """float32 [T, 178, 3]: (x, y, confidence) of `seq`, which must be in the reduced layout."""
    have = tuple(zip(seq.layout.component_names, _split(seq.layout.point_names, seq.layout.component_offsets)))
    if have != COMPONENTS:
        raise ConfigError("keypoints need the app's reduced 178-point layout (load the file with "
                          "hpv.pose.load_sequence); this sequence has components "
                          f"{[(c, len(p)) for c, p in have]}")
    xy = seq.points[..., :2].astype(np.float32)
    conf = seq.confidence.astype(np.float32)
    seen = (conf > 0) & np.isfinite(xy).all(axis=-1) & np.isfinite(conf)
    out = np.zeros((seq.num_frames, NUM_KEYPOINTS, 3), np.float32)
    out[..., :2] = np.where(seen[..., None], xy, 0.0)
    out[..., 2] = np.where(seen, np.clip(conf, 0.0, 1.0), 0.0)
    return out


def depth(seq: PoseSequence) -> np.ndarray:
    """float32 [T, 178]: the points' z (larger = further; 0 where unseen): how the runtime orders the
    hands against the body when it stitches the parts (`hpv.runtime.stitch.layer_order`)."""
    z = seq.points[..., 2].astype(np.float32) if seq.points.shape[-1] > 2 else np.zeros(seq.points.shape[:2], np.float32)
    seen = (seq.confidence > 0) & np.isfinite(z)
    return np.where(seen, z, 0.0).astype(np.float32)


def _split(names, offsets):
    bounds = [*offsets, len(names)]
    return [tuple(names[a:b]) for a, b in zip(bounds, bounds[1:])]
