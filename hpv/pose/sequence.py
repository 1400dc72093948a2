"""`PoseSequence`: one signer's normalized pose over time, the input every stage consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpv.errors import ConfigError
from hpv.pose.layout import PoseLayout

FRAME_SIZE = 512  # the app's normalized square frame, in pixels
SHOULDER_CENTER = (256.0, 256.0)
SHOULDER_WIDTH = 0.4 * FRAME_SIZE


@dataclass(frozen=True, eq=False)
class PoseSequence:
    """`points` [T, N, 3] float32: x, y in the 512x512 frame, z on the same scale (larger = further;
    only its order matters). `confidence` [T, N] float32; 0 marks a missing point."""

    points: np.ndarray
    confidence: np.ndarray
    fps: float
    layout: PoseLayout

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
        if not self.fps > 0:
            raise ConfigError(f"fps must be positive; got {self.fps}")

    @property
    def num_frames(self) -> int:
        return len(self.points)

    def frames(self, start: int, stop: int | None = None) -> PoseSequence:
        """Frames [start, stop), as a view."""
        s = slice(start, stop)
        return PoseSequence(self.points[s], self.confidence[s], self.fps, self.layout)
