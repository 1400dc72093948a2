"""Reading `.pose` files, and reducing and normalizing them as the sign-language app does.

pose-format parses with `struct` and `np.ndarray(buffer=...)` and trusts every count it reads, so a
bad file surfaces as struct.error, TypeError, UnicodeDecodeError, ... Here the sizes are checked
first, so the common faults get a precise message, and whatever else pose-format raises on a
corrupt file becomes a `PoseFileError` too.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np
from pose_format import Pose
from pose_format.pose_header import PoseHeader
from pose_format.utils.generic import reduce_holistic
from pose_format.utils.reader import BufferReader

from hpv.errors import ConfigError, PoseFileError
from hpv.pose.holistic import holistic_problem
from hpv.pose.layout import PoseLayout
from hpv.pose.sequence import SHOULDER_CENTER, SHOULDER_WIDTH, PoseSequence, fps_problem

PoseSource = str | os.PathLike | bytes


def _load_bytes(source: PoseSource) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    label = os.fspath(source)
    try:
        with open(label, "rb") as f:
            return f.read(), str(label)
    except FileNotFoundError:
        raise PoseFileError(f"{label}: no such file") from None
    except OSError as e:
        raise PoseFileError(f"{label}: cannot read: {e.strerror or e}") from None


def _body_layout(version: float, buffer: bytes, offset: int) -> tuple[int, int, int]:
    """(frames, people, bytes of frame data present) of the body that starts at `offset`."""
    if round(version, 3) == 0.2:  # fps float32, frames uint32, people uint16
        _, frames, people = struct.unpack_from("<fIH", buffer, offset)
        return frames, people, len(buffer) - offset - 10
    _, frames, people = struct.unpack_from("<HHH", buffer, offset)  # 0.1; pose-format ignores `frames`
    return frames, people, len(buffer) - offset - 6


def read_pose(source: PoseSource) -> Pose:
    """Read and check a holistic `.pose` file (a path, or its bytes). Raises `PoseFileError`."""
    buffer, label = _load_bytes(source)
    if not buffer:
        raise PoseFileError(f"{label}: empty file")
    if len(buffer) < 4:
        raise PoseFileError(f"{label}: not a .pose file ({len(buffer)} bytes)")
    (version,) = struct.unpack_from("<f", buffer)
    if round(version, 3) not in (0.1, 0.2):
        raise PoseFileError(f"{label}: not a .pose file (version field reads {version:.4g}; expected 0.1 or 0.2)")

    reader = BufferReader(buffer)
    try:
        header = PoseHeader.read(reader)
    except Exception as e:  # any parser failure on these bytes means a corrupt header
        raise PoseFileError(f"{label}: not a .pose file: header unreadable ({type(e).__name__}: {e})") from None
    problem = holistic_problem(header)
    if problem:
        raise PoseFileError(f"{label}: {problem}")

    try:
        frames, people, present = _body_layout(header.version, buffer, reader.read_offset)
    except struct.error:
        raise PoseFileError(f"{label}: truncated: file ends inside the body header") from None
    frame_bytes = people * header.total_points() * (header.num_dims() + 1) * 4
    if round(header.version, 3) == 0.1 and frame_bytes:
        frames = present // frame_bytes  # 0.1 stores frames as uint16; pose-format counts bytes instead
    if people == 0:
        raise PoseFileError(f"{label}: zero people")
    if frames == 0:
        raise PoseFileError(f"{label}: zero frames")
    expected = frames * frame_bytes
    if present < expected:
        raise PoseFileError(
            f"{label}: truncated: expected {expected} bytes of frame data "
            f"({frames} frames x {people} people x {header.total_points()} points), found {present}"
        )
    if present > expected:
        raise PoseFileError(f"{label}: corrupt: {present - expected} unexpected bytes after the frame data")

    try:
        pose = Pose.read(buffer)
    except Exception as e:  # sizes matched, so this is a fault we did not foresee; still the file's
        raise PoseFileError(f"{label}: corrupt .pose file ({type(e).__name__}: {e})") from None
    problem = fps_problem(float(pose.body.fps), "the header's fps")
    if problem:
        raise PoseFileError(f"{label}: {problem}")
    usable = np.isfinite(np.asarray(pose.body.data.data)).all(axis=-1) & (np.asarray(pose.body.confidence) > 0)
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


def _normalize(source: PoseSource | Pose, person: int) -> tuple[PoseSequence, NormalizationTransform]:
    label = "<pose>" if isinstance(source, Pose) else "<bytes>" if isinstance(source, bytes) else str(source)
    pose = source if isinstance(source, Pose) else read_pose(source)
    problem = holistic_problem(pose.header)
    if problem:
        raise PoseFileError(f"{label}: {problem}")
    people = pose.body.data.shape[1]
    if not 0 <= person < people:
        raise ConfigError(f"person must be in [0, {people}); {label} has {people} people")

    reduced = reduce_holistic(pose)
    layout = PoseLayout.from_header(reduced.header)
    raw = np.asarray(reduced.body.data.data, dtype=np.float64)[:, person]
    conf = np.asarray(reduced.body.confidence, dtype=np.float64)[:, person]
    mask = np.ma.getmaskarray(reduced.body.data)[:, person].any(axis=-1)
    points = np.zeros(raw.shape[:2] + (3,))
    points[..., : min(3, raw.shape[-1])] = raw[..., :3]
    points[..., 2] *= pose.header.dimensions.width
    seen = (conf > 0) & ~mask & np.isfinite(points).all(axis=-1)

    left = layout.index("POSE_LANDMARKS", "LEFT_SHOULDER")
    right = layout.index("POSE_LANDMARKS", "RIGHT_SHOULDER")
    both = seen[:, left] & seen[:, right]
    if not both.any():
        raise PoseFileError(f"{label}: no frame shows both shoulders; cannot normalize")
    center = np.median((points[both, left] + points[both, right]) / 2, axis=0)
    width = np.median(np.linalg.norm(points[both, left, :2] - points[both, right, :2], axis=-1))
    if not width > 0:
        raise PoseFileError(f"{label}: shoulders coincide; cannot normalize")

    scale = SHOULDER_WIDTH / width
    points = (points - center) * scale + np.array([*SHOULDER_CENTER, 0.0])
    points[~seen] = 0.0
    sequence = PoseSequence(
        points=points.astype(np.float32),
        confidence=np.where(seen, conf, 0.0).astype(np.float32),
        fps=float(pose.body.fps),
        layout=layout,
    )
    transform = NormalizationTransform(
        scale=float(scale),
        offset_x=float(SHOULDER_CENTER[0] - center[0] * scale),
        offset_y=float(SHOULDER_CENTER[1] - center[1] * scale),
        center_z=float(center[2]),
    )
    return sequence, transform


def load_sequence(source: PoseSource | Pose, person: int = 0) -> PoseSequence:
    """Reduce to the app's 178 points, take one person, and normalize into the 512x512 frame.

    Shoulder midpoint -> (256, 256), shoulder width -> 204.8 px, using the median over frames where
    both shoulders are seen: one transform for the whole sequence, so normalizing adds no jitter.
    z (MediaPipe: in units of the image width) is scaled to pixels alongside x and y.
    """
    return _normalize(source, person)[0]


def normalization_transform(source: PoseSource | Pose, person: int = 0) -> NormalizationTransform:
    """The transform `load_sequence` applies to this pose's x, y: apply it to the source video's
    frames to crop and frame them exactly as the pose is normalized."""
    return _normalize(source, person)[1]
