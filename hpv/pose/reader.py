"""Reading `.pose` files, and reducing and normalizing them as the sign-language app does.

`pose_file` reads the bytes (versions 0.0-0.2, bounded by the header's claims); `source_layouts`
maps the file's layout (MediaPipe Holistic, the app's reduced layout, OpenPose) onto the app's 178
points; `orientation` turns a sideways pose upright. What was lost or changed on the way is a note:
on `PoseSequence.notes`, and issued as a `PoseNoteWarning`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from pose_format import Pose
from pose_format.pose_header import PoseHeader

from hpv.errors import ConfigError, PoseFileError
from hpv.pose.layout import PoseLayout
from hpv.pose.orientation import upright
from hpv.pose.pose_file import PoseSource, read_pose_file
from hpv.pose.sequence import SHOULDER_CENTER, SHOULDER_WIDTH, PoseSequence, fps_problem
from hpv.pose.source_layouts import find_layout


class PoseNoteWarning(UserWarning):
    """Something a reader changed or could not map in a pose file (missing points, a rotation)."""


def _label(source: PoseSource | Pose) -> str:
    if isinstance(source, Pose):
        return "<pose>"
    return "<bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)


def read_pose(source: PoseSource) -> Pose:
    """Read and check a `.pose` file (a path, or its bytes) in a supported layout. Raises `PoseFileError`."""
    label = _label(source)

    def check(header: PoseHeader) -> None:
        find_layout(header, label)

    pose = read_pose_file(source, check)
    problem = fps_problem(float(pose.body.fps), "the header's fps")
    if problem:
        raise PoseFileError(f"{label}: {problem}")
    usable = np.isfinite(np.ma.getdata(pose.body.data)).all(axis=-1) & (np.ma.getdata(pose.body.confidence) > 0)
    if not usable.any():
        raise PoseFileError(f"{label}: no usable point (all NaN or zero confidence)")
    return pose


@dataclass(frozen=True)
class NormalizationTransform:
    """The sequence-level map from a pose file's pixels (the source video's pixel space, size
    `header.dimensions`) into the app's 512x512 frame: `normalized = raw * scale + offset`, the same
    for x and y and for every frame. z is scaled by `scale` too, around `center_z`."""

    scale: float
    offset_x: float
    offset_y: float
    center_z: float = 0.0

    def apply(self, xy: np.ndarray) -> np.ndarray:
        """Raw pixel coordinates [..., 2] -> the 512 frame."""
        return np.asarray(xy, np.float64) * self.scale + (self.offset_x, self.offset_y)

    def invert(self, xy: np.ndarray) -> np.ndarray:
        """512-frame coordinates [..., 2] -> raw pixel coordinates of the source video."""
        return (np.asarray(xy, np.float64) - (self.offset_x, self.offset_y)) / self.scale


MAX_COORDINATE = 1e6  # pixels; a keypoint farther out is treated as missing


def _normalize(source: PoseSource | Pose, person: int) -> tuple[PoseSequence, NormalizationTransform, int]:
    label = _label(source)
    pose = source if isinstance(source, Pose) else read_pose(source)
    source_layout = find_layout(pose.header, label)
    people = pose.body.data.shape[1]
    if not 0 <= person < people:
        raise ConfigError(f"person must be in [0, {people}); {label} has {people} people")

    reduced, notes = source_layout.reduce(pose)
    layout = PoseLayout.from_header(reduced.header)
    raw = np.asarray(np.ma.getdata(reduced.body.data), dtype=np.float64)[:, person]
    conf = np.asarray(np.ma.getdata(reduced.body.confidence), dtype=np.float64)[:, person]
    mask = np.ma.getmaskarray(reduced.body.data)[:, person].any(axis=-1)
    points = np.zeros(raw.shape[:2] + (3,))
    points[..., : min(3, raw.shape[-1])] = raw[..., :3]
    points[..., 2] *= pose.header.dimensions.width
    # A point is seen when its confidence is a positive number and its coordinates are finite and
    # within a frame of any real camera (a million pixels out is garbage, and would overflow float32).
    seen = (conf > 0) & np.isfinite(conf) & ~mask & np.isfinite(points).all(axis=-1) \
        & (np.abs(points) < MAX_COORDINATE).all(axis=-1)

    left = layout.index("POSE_LANDMARKS", "LEFT_SHOULDER")
    right = layout.index("POSE_LANDMARKS", "RIGHT_SHOULDER")
    both = seen[:, left] & seen[:, right]
    if not both.any():
        raise PoseFileError(f"{label}: no frame shows both shoulders; cannot normalize")
    dims = pose.header.dimensions
    points[~seen] = 0.0
    points, turns, turned = upright(points, seen, layout, (dims.width, dims.height), label)
    notes += (turned,) if turned else ()
    center = np.median((points[both, left] + points[both, right]) / 2, axis=0)
    width = np.median(np.linalg.norm(points[both, left, :2] - points[both, right, :2], axis=-1))
    if not width > 0:
        raise PoseFileError(f"{label}: shoulders coincide; cannot normalize")

    scale = SHOULDER_WIDTH / width
    points = (points - center) * scale + np.array([*SHOULDER_CENTER, 0.0])
    points[~seen] = 0.0
    sequence = PoseSequence(
        points=points.astype(np.float32),
        confidence=np.where(seen, np.clip(conf, 0.0, 1.0), 0.0).astype(np.float32),
        fps=float(pose.body.fps),
        layout=layout,
        notes=tuple(f"{label}: {note}" for note in notes),
    )
    transform = NormalizationTransform(
        scale=float(scale),
        offset_x=float(SHOULDER_CENTER[0] - center[0] * scale),
        offset_y=float(SHOULDER_CENTER[1] - center[1] * scale),
        center_z=float(center[2]),
    )
    return sequence, transform, turns


def load_sequence(source: PoseSource | Pose, person: int = 0) -> PoseSequence:
    """Reduce to the app's 178 points, take one person, and normalize into the 512x512 frame.

    Shoulder midpoint -> (256, 256), shoulder width -> 204.8 px, using the median over frames where
    both shoulders are seen: one transform for the whole sequence, so normalizing adds no jitter.
    z (MediaPipe: in units of the image width) is scaled to pixels alongside x and y.
    """
    sequence = _normalize(source, person)[0]
    for note in sequence.notes:
        warnings.warn(note, PoseNoteWarning, stacklevel=2)
    return sequence


def normalization_transform(source: PoseSource | Pose, person: int = 0) -> NormalizationTransform:
    """The transform `load_sequence` applies to this pose's x, y: apply it to the source video's
    frames to crop and frame them exactly as the pose is normalized. A pose that `load_sequence`
    turns upright has no such transform (its video would need the same turn): `PoseFileError`."""
    _, transform, turns = _normalize(source, person)
    if turns:
        raise PoseFileError(f"{_label(source)}: the pose lies rotated by {90 * turns} degrees; framing its video needs "
                            f"the video turned too, which is not supported: turn the video upright and "
                            f"re-extract the pose")
    return transform
