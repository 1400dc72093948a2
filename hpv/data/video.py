"""Signer videos and their poses as training pairs: read a video, check it matches its `.pose`
file frame for frame, and crop each frame exactly as the pose is normalized (the app's 512x512 frame,
shoulder midpoint at the center), resampled to the training resolution.

PyAV is imported on first use, so `import hpv.data.video` stays light.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from hpv.data.signer import GREEN
from hpv.errors import ConfigError, DataError, MissingExtraError
from hpv.pose.reader import NormalizationTransform, load_sequence, normalization_transform, read_pose
from hpv.pose.sequence import FRAME_SIZE, PoseSequence

FPS_TOLERANCE = 0.5
_CHUNK_BYTES = 64 << 20  # float32 working set per chunk of frames while framing


def _av():
    try:
        import av
    except ImportError:
        raise MissingExtraError("av", "video") from None
    return av


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Decode every frame of the first video stream: (frames uint8 [T, H, W, 3] RGB, fps).

    A missing, empty, corrupt or non-video file, or one with no decodable frame, raises `DataError`
    naming the file and the cause.
    """
    av = _av()
    label = os.fspath(path)
    p = Path(label)
    if not p.exists():
        raise DataError(f"{label}: no such file")
    if not p.is_file():
        raise DataError(f"{label}: not a file")
    if p.stat().st_size == 0:
        raise DataError(f"{label}: empty file")
    frames: list[np.ndarray] = []
    opened = False
    try:
        with av.open(label) as container:
            opened = True
            if not container.streams.video:
                raise DataError(
                    f"{label}: no video stream (format {container.format.name!r}); truncated, or not a video?"
                )
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
    except DataError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        where = f"decoding frame {len(frames)}" if opened else "opening"
        cause = getattr(e, "strerror", None) or str(e)  # strerror: without av's repeat of the path
        raise DataError(
            f"{label}: corrupt or truncated video ({where}: {type(e).__name__}: {cause})"
        ) from None
    if not frames:
        raise DataError(f"{label}: no decodable video frame")
    if len({f.shape for f in frames}) > 1:
        raise DataError(f"{label}: frame size changes mid-stream ({sorted({f.shape[:2] for f in frames})})")
    if not rate or not float(rate) > 0:
        raise DataError(f"{label}: the video stream states no frame rate")
    return np.stack(frames), float(rate)


def _resample_matrix(resolution: int, offset: float, scale: float, size: int) -> np.ndarray:
    """[R, size] weights along one axis: output pixel r = sum_i M[r, i] * source pixel i.

    Each output pixel averages k bilinear samples spread evenly over it, k chosen so that samples are
    at most one source pixel apart (area averaging, no aliasing when the crop shrinks). Pixel i
    covers [i, i + 1), so its center is at i + 0.5. Weight that falls outside the source is dropped:
    a row sums to the share of that output pixel the video covers.
    """
    k = max(1, math.ceil(FRAME_SIZE / (resolution * scale)))
    centers = (np.arange(resolution * k) + 0.5) * (FRAME_SIZE / (resolution * k))
    f = (centers - offset) / scale - 0.5  # continuous index into the source's pixel centers
    f = np.clip(f, -1.0, size)  # index -1 and `size` stand for the background just outside
    i0 = np.minimum(np.floor(f).astype(np.intp), size - 1)
    w1 = f - i0
    out = np.arange(resolution * k) // k
    m = np.zeros((resolution, size + 2))  # columns shifted by one: column 0 is index -1
    np.add.at(m, (out, i0 + 1), (1 - w1) / k)
    np.add.at(m, (out, i0 + 2), w1 / k)
    return m[:, 1:-1]


def frame_video(frames: np.ndarray, transform: NormalizationTransform, resolution: int,
                background: tuple[int, int, int] = GREEN) -> np.ndarray:
    """Map video frames [T, H, W, 3] into the normalized frame at `resolution`: uint8 [T, R, R, 3].

    For each output pixel, the inverse of `transform` gives its source position; it is the mean of
    bilinear samples taken at most one source pixel apart (see `_resample_matrix`), a separable
    linear map applied as two matrix products. Outside the video: `background` (the green screen by
    default, as the synthetic signer uses).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ConfigError(f"frame_video wants frames [T, H, W, 3]; got {frames.shape}")
    if not (isinstance(resolution, int) and resolution >= 1):
        raise ConfigError(f"resolution must be a positive int; got {resolution!r}")
    t, h, w, _ = frames.shape
    my = _resample_matrix(resolution, transform.offset_y, transform.scale, h)
    mx = _resample_matrix(resolution, transform.offset_x, transform.scale, w)
    # Only the source rows and columns that carry weight take part in the products.
    rows, cols = np.flatnonzero(my.any(axis=0)), np.flatnonzero(mx.any(axis=0))
    out = np.empty((t, resolution, resolution, 3), np.uint8)
    if not len(rows) or not len(cols):
        out[:] = background
        return out
    ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    my_in, mx_in = my[:, ys].astype(np.float32), mx[:, xs].astype(np.float32)
    # Separable weights: the share of each output pixel off the video is 1 - (row share x column share).
    off = (1.0 - np.outer(my.sum(axis=1), mx.sum(axis=1)))[..., None] * np.asarray(background, np.float64)
    off = off.astype(np.float32)
    hh, ww = ys.stop - ys.start, xs.stop - xs.start
    chunk = max(1, _CHUNK_BYTES // (4 * 3 * (hh * ww + resolution * ww + resolution**2)))
    for s in range(0, t, chunk):
        part = np.ascontiguousarray(frames[s : s + chunk, ys, xs].transpose(0, 3, 1, 2), dtype=np.float32)
        image = (my_in @ part @ mx_in.T).transpose(0, 2, 3, 1)  # [t, 3, h', w'] -> [t, R, R, 3]
        out[s : s + chunk] = np.clip(np.rint(image + off), 0, 255).astype(np.uint8)
    return out


def load_pairs(video_path: str | os.PathLike, pose_path: str | os.PathLike, resolution: int,
               person: int = 0) -> tuple[PoseSequence, np.ndarray]:
    """A pose sequence and its video frames, paired by frame index: (sequence, uint8 [T, R, R, 3]).

    Frames are framed as the pose is normalized (`frame_video`). The video and the pose must come
    from each other: same frame count, fps within 0.5, and the pose's stated size equal to the video's;
    anything else raises `DataError` (never a silent truncation). Pose faults raise `PoseFileError`.
    """
    if not (isinstance(resolution, int) and resolution >= 1):
        raise ConfigError(f"resolution must be a positive int; got {resolution!r}")
    video, pose_label = os.fspath(video_path), os.fspath(pose_path)
    pose = read_pose(pose_path)
    frames, fps = read_video(video_path)
    fix = "re-export the pose from this same video (e.g. with pose-format's video_to_pose)"

    pose_frames, pose_fps = pose.body.data.shape[0], float(pose.body.fps)
    if len(frames) != pose_frames:
        raise DataError(
            f"{video} has {len(frames)} frames but {pose_label} has {pose_frames}; frames pair with poses "
            f"by index, so the counts must match: {fix}"
        )
    if abs(fps - pose_fps) > FPS_TOLERANCE:
        raise DataError(
            f"{video} runs at {fps:.3g} fps but {pose_label} at {pose_fps:.3g} fps (more than "
            f"{FPS_TOLERANCE} apart): {fix}"
        )
    dims = pose.header.dimensions
    if (dims.width, dims.height) != (frames.shape[2], frames.shape[1]):
        raise DataError(
            f"{video} is {frames.shape[2]}x{frames.shape[1]} but {pose_label} states "
            f"{dims.width}x{dims.height}, so its pixel coordinates are not this video's: {fix}"
        )
    sequence = load_sequence(pose, person)
    return sequence, frame_video(frames, normalization_transform(pose, person), resolution)
