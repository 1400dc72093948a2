"""`PoseSequence`: one signer's normalized pose over time, the input every stage consumes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hpv.errors import ConfigError
from hpv.pose.layout import PoseLayout

FRAME_SIZE = 512  # the app's normalized square frame, in pixels
SHOULDER_CENTER = (256.0, 256.0)
SHOULDER_WIDTH = 0.4 * FRAME_SIZE
# Frame rates a pose sequence or a video may have; outside these, a header is broken or a typo.
MIN_FPS, MAX_FPS = 0.001, 1000.0


def fps_problem(fps: float, what: str = "fps") -> str | None:
    """What is wrong with a frame rate (NaN, infinite, <= 0, absurdly large), or None."""
    if math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS:
        return None
    return f"{what} must be positive, between {MIN_FPS:g} and {MAX_FPS:g} frames a second; got {float(fps):g}"


@dataclass(frozen=True, eq=False)
class PoseSequence:
    """`points` [T, N, 3] float32: x, y in the 512x512 frame, z on the same scale (larger = further;
    only its order matters). `confidence` [T, N] float32; 0 marks a missing point. `notes`: what the
    reader changed or could not map (points an input layout lacks, a turn upright), for a user to see."""

    points: np.ndarray
    confidence: np.ndarray
    fps: float
    layout: PoseLayout
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        t, n = self.confidence.shape if self.confidence.ndim == 2 else (None, None)
        if self.points.shape != (t, n, 3) or n != self.layout.num_points:
            raise ConfigError(
                f"PoseSequence wants points [T, {self.layout.num_points}, 3] and confidence "
                f"[T, {self.layout.num_points}]; got {self.points.shape} and {self.confidence.shape}"
            )
        if self.points.dtype != np.float32 or self.confidence.dtype != np.float32:
            raise ConfigError(
                f"PoseSequence arrays must be float32; got {self.points.dtype} and {self.confidence.dtype}"
            )
        problem = fps_problem(self.fps)
        if problem:
            raise ConfigError(problem)

    @property
    def num_frames(self) -> int:
        return len(self.points)

    def frames(self, start: int, stop: int | None = None) -> PoseSequence:
        """Frames [start, stop), as a view."""
        s = slice(start, stop)
        return PoseSequence(self.points[s], self.confidence[s], self.fps, self.layout, self.notes)
