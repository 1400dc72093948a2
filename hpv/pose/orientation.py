"""Upright poses: a phone video stored sideways (its rotation flag ignored by the pose estimator)
gives a signer lying on their side, head beside the shoulders and the shoulder line near vertical.
Normalized as it is, that draws garbage; here such a sequence is turned upright by the quarter turn
that puts the head above horizontal shoulders, and a pose whose shoulders cannot be trusted (near
vertical under an upright head, or tiny against the face) is refused.

Coordinates are the file's pixels, y down; a quarter turn is clockwise on screen, (x, y) -> (-y, x)
about the frame centre."""

from __future__ import annotations

import numpy as np

from hpv.errors import PoseFileError
from hpv.pose.layout import PoseLayout

# A signer's shoulders are about three times the face's width and twice its height; below half its
# height they are misdetected, and normalizing by them would blow the pose up.
MIN_SHOULDER_TO_FACE = 0.5
_UP, _RIGHT = np.array([0.0, -1.0]), np.array([1.0, 0.0])
_WHERE = {1: "left of", 2: "below", 3: "right of"}  # where the head is, by the turn that fixes it


def _turn(xy: np.ndarray, k: int) -> np.ndarray:
    for _ in range(k % 4):
        xy = np.stack([-xy[..., 1], xy[..., 0]], axis=-1)
    return xy


def _best_turn(v: np.ndarray, toward: np.ndarray) -> int:
    return int(np.argmax([_turn(v, k) @ toward for k in range(4)]))


def _face_stats(points, seen, layout) -> tuple[np.ndarray | None, float | None, np.ndarray]:
    """Per frame: face centroid [T, 2] (NaN where unseen), and the median face size (the larger side of
    its bounding box, which a quarter turn keeps), over frames that show at least 3 face points."""
    face = layout.component_slice("FACE_LANDMARKS")
    xy, ok = points[:, face, :2], seen[:, face]
    count = ok.sum(axis=1)
    enough = count >= 3
    if not enough.any():
        return None, None, enough
    centroid = np.where(ok[..., None], xy, 0.0).sum(axis=1) / np.maximum(count, 1)[:, None]
    low = np.where(ok[..., None], xy, np.inf).min(axis=1)
    high = np.where(ok[..., None], xy, -np.inf).max(axis=1)
    size = float(np.median((high - low)[enough].max(axis=-1)))
    return centroid, size, enough


def upright(points: np.ndarray, seen: np.ndarray, layout: PoseLayout, frame_size: tuple[float, float],
            label: str) -> tuple[np.ndarray, int, str | None]:
    """(points turned upright, quarter turns applied, a note when turned) for one person's raw points
    [T, N, >=2] in pixels; the frame needs at least one frame that shows both shoulders. Raises
    `PoseFileError` for a pose whose shoulders cannot be trusted."""
    left = layout.index("POSE_LANDMARKS", "LEFT_SHOULDER")
    right = layout.index("POSE_LANDMARKS", "RIGHT_SHOULDER")
    both = seen[:, left] & seen[:, right]
    shoulders = np.median(points[both, left, :2] - points[both, right, :2], axis=0)
    width = float(np.median(np.linalg.norm(points[both, left, :2] - points[both, right, :2], axis=-1)))
    mid = (points[:, left, :2] + points[:, right, :2]) / 2
    centroid, face_size, face_seen = _face_stats(points, seen, layout)

    head_frames = both & face_seen
    if head_frames.any():
        head = np.median(centroid[head_frames] - mid[head_frames], axis=0)
        k = _best_turn(head, _UP) if np.abs(head).max() > 0 else 0
        turned = _turn(shoulders, k)
        if abs(turned[1]) > abs(turned[0]):
            angle = np.degrees(np.arctan2(abs(shoulders[1]), abs(shoulders[0])))
            raise PoseFileError(
                f"{label}: the shoulder line is {angle:.0f} degrees from horizontal while the head is "
                f"{_WHERE.get(k, 'above')} the shoulders: the shoulders are misdetected, and normalizing by "
                f"them would draw a garbage pose. Re-extract the pose from the upright video")
        how = f"the head is {_WHERE.get(k)} the shoulders"
    else:  # no face: a signer faces the camera, so their left shoulder is on the image's right
        k = _best_turn(shoulders, _RIGHT) if abs(shoulders[1]) > abs(shoulders[0]) else 0
        how = "the shoulder line is near vertical (no face seen; assuming the signer faces the camera)"

    if face_size is not None and width < MIN_SHOULDER_TO_FACE * face_size:
        raise PoseFileError(
            f"{label}: the shoulders are {width:.3g} px apart but the face is {face_size:.3g} px tall; a "
            f"signer's shoulders are wider than the face, so they are misdetected (a rotated or side-on "
            f"video?), and normalizing by them would draw a garbage pose. Re-extract the pose from the "
            f"upright video")
    if k == 0:
        return points, 0, None
    center = np.array(frame_size, np.float64) / 2
    out = np.array(points, np.float64, copy=True)
    out[..., :2] = center + _turn(out[..., :2] - center, k)
    note = (f"the pose lies rotated: {how} (a phone video stored sideways?); turned it {90 * k} degrees "
            f"clockwise about the frame centre so that the head is above the shoulders")
    return out, k, note
