"""Crop boxes for the parts (left hand, right hand, face) and their transforms (issue 14).

A part's box is a square in the 512x512 normalized frame (centre `cx`, `cy`, side `side`), made from
the part's keypoints of the app's reduced 178-point layout with the same rule the looks metrics use
for their hand and face boxes (`hpv.metrics.BOX_PAD`, `BOX_MARGIN`): centre = middle of the seen
keypoints' extent, side = BOX_PAD x the larger extent + BOX_MARGIN; then grown by `CROP_SLACK` (room
for the smoothing's lag) and at least the part's `min_side`. Each frame's raw box is smoothed over
time by a one-euro filter with a dead-band (`Smoothing`); the smoothed box is then moved and grown
as little as it takes to hold the frame's metric box (a jump the filter lags behind never cuts the
part off), and last kept inside the frame (side at most 512, centre shifted inwards).

The crop of a box at `size` x `size` pixels (64 by default) maps to the output frame at `resolution`
by a scale and an offset (`CropTransform`); the left hand's is mirrored (x flipped) so that one set
of hand weights draws both hands as right hands. docs/stitching.md is the contract for app teams.
numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from hpv.errors import ConfigError, UnknownNameError
from hpv.metrics import BOX_MARGIN, BOX_PAD, _part_indices
from hpv.pose.sequence import FRAME_SIZE

CROP_SIZE = 64  # the part generators' crop, pixels
CROP_SLACK = 1.15  # the crop box's side over the metric box's: room for the smoothing's lag
MIN_SEEN = 3  # fewer seen keypoints than this: the part is missing this frame (as in hpv.metrics)


@dataclass(frozen=True)
class PartSpec:
    """A part: its keypoint indices in the 178-point layout, whether its crop is mirrored, and the
    smallest side its box may have (512-frame units), so that a foreshortened hand is not blown up."""

    name: str
    indices: tuple[int, ...]
    mirror: bool
    min_side: float


def _parts() -> dict[str, PartSpec]:
    (left, right), face = _part_indices()
    return {
        "left_hand": PartSpec("left_hand", tuple(left), mirror=True, min_side=40.0),
        "right_hand": PartSpec("right_hand", tuple(right), mirror=False, min_side=40.0),
        "face": PartSpec("face", tuple(face), mirror=False, min_side=64.0),
    }


PARTS: dict[str, PartSpec] = _parts()
HANDS = ("left_hand", "right_hand")


def part(name: str) -> PartSpec:
    if name not in PARTS:
        raise UnknownNameError("part", name, PARTS)
    return PARTS[name]


class BoxState(str, Enum):
    """SEEN: the part's keypoints are in this frame; HELD: they are missing, and the box is the last
    seen one (for at most `Smoothing.hold_frames` frames: a detector's dropout does not blink the part
    away); ABSENT: missing for longer, or never seen; its box holds zeros and the part is not drawn."""

    SEEN = "seen"
    HELD = "held"
    ABSENT = "absent"


@dataclass(frozen=True)
class CropTransform:
    """Crop pixel coordinates (u, v) -> frame pixel coordinates (x, y) at `resolution`:
    x = sx * u + ox, y = sy * v + oy. Continuous coordinates: pixel i covers [i, i + 1), its centre
    is i + 0.5, in the crop and in the frame alike. `sx = -sy` when mirrored (u grows to the left)."""

    sx: float
    sy: float
    ox: float
    oy: float
    size: int
    resolution: int

    @property
    def mirror(self) -> bool:
        return self.sx < 0

    def crop_to_frame(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, np.float64)
        return np.stack([self.sx * uv[..., 0] + self.ox, self.sy * uv[..., 1] + self.oy], axis=-1)

    def frame_to_crop(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, np.float64)
        return np.stack([(xy[..., 0] - self.ox) / self.sx, (xy[..., 1] - self.oy) / self.sy], axis=-1)

    def matrix(self) -> np.ndarray:
        """[2, 3] affine crop -> frame (for cv2.warpAffine-style APIs: add the half-pixel shifts)."""
        return np.array([[self.sx, 0.0, self.ox], [0.0, self.sy, self.oy]])

    def frame_extent(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the crop's square in the frame, x0 < x1."""
        xa, xb = self.ox, self.ox + self.sx * self.size
        return min(xa, xb), self.oy, max(xa, xb), self.oy + self.sy * self.size


@dataclass(frozen=True)
class PartBox:
    """One part's box in one frame: centre and side in the 512 frame (inside it), its state, and
    whether its crop is mirrored."""

    part: str
    cx: float
    cy: float
    side: float
    state: BoxState
    mirror: bool

    @property
    def drawn(self) -> bool:
        return self.state is not BoxState.ABSENT

    def transform(self, size: int = CROP_SIZE, resolution: int = FRAME_SIZE) -> CropTransform:
        """The crop -> frame transform of this box for a `size` crop placed in a `resolution` frame
        (resolution 512: frame coordinates are the keypoints' own)."""
        if not self.drawn:
            raise ConfigError(f"{self.part} is absent in this frame: it has no crop transform")
        if size < 1 or resolution < 1:
            raise ConfigError(f"crop size and resolution must be positive; got {size}, {resolution}")
        r = resolution / FRAME_SIZE
        k = self.side * r / size
        x0, y0 = (self.cx - self.side / 2) * r, (self.cy - self.side / 2) * r
        if self.mirror:
            return CropTransform(-k, k, x0 + self.side * r, y0, size, resolution)
        return CropTransform(k, k, x0, y0, size, resolution)

    def crop_points(self, keypoints: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
        """Keypoints [..., 3] (x, y, confidence in the 512 frame) in this crop's pixel coordinates,
        confidence kept: what the part generator rasterizes."""
        kp = np.asarray(keypoints, np.float32)
        uv = self.transform(size, FRAME_SIZE).frame_to_crop(kp[..., :2])
        seen = kp[..., 2:3] > 0
        return np.concatenate([np.where(seen, uv, 0.0), kp[..., 2:3]], axis=-1).astype(np.float32)

    def model_keypoints(self, keypoints: np.ndarray) -> np.ndarray:
        """A part generator's keypoint input [178, 3]: the frame's keypoints (512 frame) in this crop's
        own 512 frame (crop pixel x 512 / size, so the crop's square is [0, 512)^2, the frame the
        in-graph rasterizer draws), confidence kept, unseen points at 0. A mirrored crop also swaps
        left and right (`hpv.pose.augment.mirror_order`), so the left hand lies in the right
        hand's slots and one set of hand weights draws both."""
        from hpv.pose.augment import mirror_order

        kp = self.crop_points(keypoints, CROP_SIZE)
        kp[..., :2] *= FRAME_SIZE / CROP_SIZE
        return kp[..., mirror_order(), :] if self.mirror else kp

    def to_json(self) -> dict:
        return {"part": self.part, "cx": self.cx, "cy": self.cy, "side": self.side, "state": self.state.value,
                "mirror": self.mirror}


def metric_box(keypoints: np.ndarray, spec: PartSpec) -> tuple[float, float, float] | None:
    """(cx, cy, side) of the looks metrics' box of a part in one frame's keypoints [178, 3] (middle
    of the seen points' extent; BOX_PAD x the larger extent + BOX_MARGIN), unrounded and unclipped;
    None when fewer than MIN_SEEN of its points are seen."""
    pts = np.asarray(keypoints, np.float64)[list(spec.indices)]
    seen = pts[:, 2] > 0
    if seen.sum() < MIN_SEEN:
        return None
    xy = pts[seen, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    cx, cy = (lo + hi) / 2
    return float(cx), float(cy), BOX_PAD * float((hi - lo).max()) + BOX_MARGIN


def raw_box(keypoints: np.ndarray, spec: PartSpec) -> tuple[float, float, float] | None:
    """(cx, cy, side) of a part's crop box in one frame, before smoothing and before keeping it
    inside the frame: the metric box grown by CROP_SLACK, at least `min_side`; None when the part's
    points are missing (`metric_box`) or the box lies wholly outside the frame."""
    m = metric_box(keypoints, spec)
    if m is None:
        return None
    cx, cy, side = m[0], m[1], max(spec.min_side, CROP_SLACK * m[2])
    h = side / 2
    if cx + h <= 0 or cy + h <= 0 or cx - h >= FRAME_SIZE or cy - h >= FRAME_SIZE:
        return None
    return cx, cy, side


def holding(c: np.ndarray, side: float, need: tuple[float, float, float]) -> tuple[np.ndarray, float]:
    """The box (centre c, side) moved and grown as little as it takes to hold the box `need`."""
    side = max(side, need[2])
    slack = (side - need[2]) / 2
    return np.clip(c, np.array(need[:2]) - slack, np.array(need[:2]) + slack), side


def inside_frame(cx: float, cy: float, side: float, frame: float = FRAME_SIZE) -> tuple[float, float, float]:
    """The box shrunk to the frame's side and shifted inwards until it lies inside [0, frame]^2."""
    side = min(side, frame)
    h = side / 2
    return min(max(cx, h), frame - h), min(max(cy, h), frame - h), side


@dataclass(frozen=True)
class Smoothing:
    """The one-euro filter (Casiez et al. 2012) with a dead-band, on a part box's centre and side.

    Per frame (dt = 1 / fps), for the centre c (a 2-vector) and, separately, the side s, with the
    previous output y and derivative estimate d (both start at the first seen raw box):
      e = x - y;  x' = y + e * max(0, 1 - band * side / |e|)   (soft dead-band; side = previous side)
      d = d + a(d_cutoff_hz) * ((x' - y) / dt - d)
      cutoff = min_cutoff_hz + beta * |d| / side                   (speed in box sides per second)
      y = y + a(cutoff) * (x' - y),  a(f) = 1 / (1 + 1 / (2 pi f dt))
    Slow drifts and noise see min_cutoff_hz (heavy smoothing); real motion raises the cutoff, so the
    box follows with little lag. The dead-bands swallow changes smaller than `deadband` sides (the
    centre) and `side_deadband` sides (the side), which CROP_SLACK leaves room for.
    """

    min_cutoff_hz: float = 0.25
    beta: float = 3.0
    d_cutoff_hz: float = 1.0
    deadband: float = 0.02
    side_deadband: float = 0.05
    hold_frames: int = 5

    def __post_init__(self):
        for name in ("min_cutoff_hz", "d_cutoff_hz"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"Smoothing.{name} must be positive; got {getattr(self, name)}")
        for name in ("beta", "deadband", "side_deadband"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"Smoothing.{name} must be >= 0; got {getattr(self, name)}")
        if self.hold_frames < 0:
            raise ConfigError(f"Smoothing.hold_frames must be >= 0; got {self.hold_frames}")


def _alpha(cutoff_hz: float, dt: float) -> float:
    return 1.0 / (1.0 + 1.0 / (2 * math.pi * cutoff_hz * dt))


def _shrink(e: np.ndarray, band: float) -> np.ndarray:
    n = float(np.linalg.norm(e))
    return e * max(0.0, 1.0 - band / n) if n > 0 else e


class BoxTracker:
    """One part's box over a sequence, frame by frame. Deterministic: its boxes are a function of the
    keypoints alone. `reset()` before a new sequence."""

    def __init__(self, spec: PartSpec | str, fps: float, smoothing: Smoothing | None = None):
        self.spec = part(spec) if isinstance(spec, str) else spec
        if not (math.isfinite(fps) and fps > 0):
            raise ConfigError(f"fps must be positive; got {fps}")
        self.dt = 1.0 / fps
        self.smoothing = smoothing or Smoothing()
        self.reset()

    def reset(self) -> None:
        self._c = self._dc = None  # centre [2] and its derivative
        self._s = self._ds = 0.0
        self._missing = 0

    def update(self, keypoints: np.ndarray) -> PartBox:
        """The box for the next frame's keypoints [178, 3]."""
        raw = raw_box(keypoints, self.spec)
        need = metric_box(keypoints, self.spec) if raw is not None else None
        if raw is None:
            self._missing += 1
            if self._c is None or self._missing > self.smoothing.hold_frames:
                self.reset()
                return PartBox(self.spec.name, 0.0, 0.0, 0.0, BoxState.ABSENT, self.spec.mirror)
            return self._box(BoxState.HELD)
        self._missing = 0
        c, s = np.array(raw[:2]), raw[2]
        if self._c is None:
            self._c, self._dc, self._s, self._ds = c, np.zeros(2), s, 0.0
            return self._box(BoxState.SEEN)
        st, dt, side = self.smoothing, self.dt, self._s
        c = self._c + _shrink(c - self._c, st.deadband * side)
        self._dc = self._dc + _alpha(st.d_cutoff_hz, dt) * ((c - self._c) / dt - self._dc)
        a = _alpha(st.min_cutoff_hz + st.beta * float(np.linalg.norm(self._dc)) / side, dt)
        self._c = self._c + a * (c - self._c)
        s = self._s + float(_shrink(np.array([s - self._s]), st.side_deadband * side)[0])
        self._ds = self._ds + _alpha(st.d_cutoff_hz, dt) * ((s - self._s) / dt - self._ds)
        a = _alpha(st.min_cutoff_hz + st.beta * abs(self._ds) / side, dt)
        self._s = self._s + a * (s - self._s)
        # A jump faster than the filter follows: the box moves (and grows) just enough to keep holding
        # the part's metric box, and the filter carries on from there.
        self._c, self._s = holding(self._c, self._s, need)
        return self._box(BoxState.SEEN)

    def _box(self, state: BoxState) -> PartBox:
        cx, cy, side = inside_frame(float(self._c[0]), float(self._c[1]), self._s)
        return PartBox(self.spec.name, cx, cy, side, state, self.spec.mirror)


class PartTracker:
    """The three parts' trackers together: `update(keypoints)` -> {part name: PartBox}."""

    def __init__(self, fps: float, smoothing: Smoothing | None = None, parts=tuple(PARTS)):
        self.trackers = {name: BoxTracker(name, fps, smoothing) for name in parts}

    def reset(self) -> None:
        for t in self.trackers.values():
            t.reset()

    def update(self, keypoints: np.ndarray) -> dict[str, PartBox]:
        kp = np.asarray(keypoints)
        if kp.ndim != 2 or kp.shape[-1] != 3:
            raise ConfigError(f"PartTracker.update wants one frame's keypoints [178, 3]; got {kp.shape}")
        return {name: t.update(kp) for name, t in self.trackers.items()}


def track_boxes(keypoints: np.ndarray, fps: float, smoothing: Smoothing | None = None,
                parts=tuple(PARTS)) -> list[dict[str, PartBox]]:
    """Boxes of every frame of one sequence's keypoints [T, 178, 3], from fresh trackers."""
    kp = np.asarray(keypoints)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ConfigError(f"track_boxes wants a sequence's keypoints [T, 178, 3]; got {kp.shape}")
    tracker = PartTracker(fps, smoothing, parts)
    return [tracker.update(frame) for frame in kp]


def box_array(boxes: list[dict[str, PartBox]], name: str) -> np.ndarray:
    """float [T, 4] (cx, cy, side, drawn) of one part over a tracked sequence."""
    return np.array([[b[name].cx, b[name].cy, b[name].side, float(b[name].drawn)] for b in boxes])
