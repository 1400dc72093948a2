"""Keypoint fields: the conditioning the keypoint stages draw inside their own graph.

Each part of the 178-point layout (torso, each upper arm and forearm, the face oval, eyes and brows,
lips, and per hand the palm and each finger) is one channel. A channel is the sum of Gaussian splats
sampled densely along its segments, so it is anti-aliased by construction, and it is computed as one
matrix product per channel (splats are separable: field = Gy^T @ (w * Gx)), which every runtime
runs fast. Splats are spaced at most `SPACING` sigmas apart and weighted so that a long segment
peaks near 1; the sum is clipped to [0, 1]. Splat tails floor at e^-EXP_FLOOR (no denormals). A segment is drawn only when both its points have
confidence > 0 (the procedural signer draws any point it sees, whatever its confidence).

Depth order is fixed by part (the layout carries no reliable z): hands are nearest, then the arms,
then the face, then the torso; a farther channel is multiplied by (1 - coverage of the nearer
parts), so a hand in front of the face hides the face's lines under it.

This module is the NumPy reference; `hpv.stages.raster.KeypointRaster` is the in-graph version and
is tested against it. Both read `FIELD_GROUPS`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hpv.pose.holistic import FACE_CONTOURS
from hpv.pose.keypoints import NUM_KEYPOINTS, index

FRAME = 512.0
SPACING = 1.5  # splats at most 1.5 sigmas apart along a segment (ripple of the sum < 0.1%)
SQRT_2PI = math.sqrt(2 * math.pi)
# A splat's exponent is capped at this (its value floors at e^-16 ~ 1e-7, 5.7 sigmas out): an
# uncapped Gaussian tail underflows through the denormal floats, which make x86 CPUs run the
# matrix products and every convolution after them 2-2.5x slower (measured: 51 -> 20 ms a frame).
EXP_FLOOR = 16.0


@dataclass(frozen=True)
class FieldGroup:
    """One channel: segments (pairs of keypoint indices), the splat sigma in output pixels, the
    longest segment expected (in 512-frame units, sets the sample count) and the depth layer
    (0 nearest)."""

    name: str
    segments: tuple[tuple[int, int], ...]
    sigma_px: float
    max_length: float
    depth: int

    def samples(self, resolution: int) -> int:
        """Splats per segment at `resolution`: spaced at most SPACING sigmas at max_length."""
        return max(2, math.ceil(self.max_length * resolution / FRAME / (SPACING * self.sigma_px)) + 1)


def _face(*contours: str) -> tuple[tuple[int, int], ...]:
    return tuple((index("FACE_LANDMARKS", a), index("FACE_LANDMARKS", b))
                 for c in contours for a, b in FACE_CONTOURS[c])


def _hand(side: str, chains: tuple[tuple[str, ...], ...]) -> tuple[tuple[int, int], ...]:
    comp = f"{side}_HAND_LANDMARKS"
    return tuple((index(comp, a), index(comp, b)) for chain in chains for a, b in zip(chain, chain[1:]))


_FINGERS = {
    "thumb": ("WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP"),
    "index": ("INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP"),
    "middle": ("MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP"),
    "ring": ("RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP"),
    "pinky": ("PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP"),
}
_PALM = (("WRIST", "INDEX_FINGER_MCP", "MIDDLE_FINGER_MCP", "RING_FINGER_MCP", "PINKY_MCP", "WRIST"),)


def _body(*pairs: tuple[str, str]) -> tuple[tuple[int, int], ...]:
    return tuple((index("POSE_LANDMARKS", a), index("POSE_LANDMARKS", b)) for a, b in pairs)


def _groups() -> tuple[FieldGroup, ...]:
    groups = []
    for side in ("LEFT", "RIGHT"):
        s = side.lower()
        groups.append(FieldGroup(f"{s}_palm", _hand(side, _PALM), 1.0, 80.0, 0))
        groups += [FieldGroup(f"{s}_{f}", _hand(side, (chain,)), 1.0, 40.0, 0) for f, chain in _FINGERS.items()]
    for side in ("LEFT", "RIGHT"):
        s = side.lower()
        groups.append(FieldGroup(f"{s}_forearm", _body((f"{side}_ELBOW", f"{side}_WRIST")), 1.5, 260.0, 1))
        groups.append(FieldGroup(f"{s}_upper_arm", _body((f"{side}_SHOULDER", f"{side}_ELBOW")), 1.5, 260.0, 1))
    groups.append(FieldGroup("face_oval", _face("FACE_OVAL"), 1.0, 16.0, 2))
    groups.append(FieldGroup("eyes_brows", _face("LEFT_EYE", "RIGHT_EYE", "LEFT_EYEBROW", "RIGHT_EYEBROW"), 1.0, 12.0, 2))
    groups.append(FieldGroup("lips", _face("LIPS"), 1.0, 8.0, 2))
    groups.append(FieldGroup("torso", _body(("LEFT_SHOULDER", "RIGHT_SHOULDER"), ("LEFT_SHOULDER", "LEFT_HIP"),
                                            ("RIGHT_SHOULDER", "RIGHT_HIP"), ("LEFT_HIP", "RIGHT_HIP")), 1.5, 340.0, 3))
    return tuple(groups)


FIELD_GROUPS: tuple[FieldGroup, ...] = _groups()
NUM_FIELDS = len(FIELD_GROUPS)  # 20

# A part crop's keypoints are in the crop's own 512 frame (`hpv.parts.PartBox.model_keypoints`):
# a hand box of ~64 frame units is magnified ~8x, so segments are ~8x longer there than in the frame.
CROP_MAGNIFICATION = 8.0


def _crop_groups(names: tuple[str, ...]) -> tuple[FieldGroup, ...]:
    by_name = {g.name: g for g in FIELD_GROUPS}
    return tuple(FieldGroup(n, by_name[n].segments, by_name[n].sigma_px,
                            by_name[n].max_length * CROP_MAGNIFICATION, by_name[n].depth) for n in names)


_HANDS = tuple(g.name for g in FIELD_GROUPS if g.depth == 0)
# The hand crop: both hands (the other one may cross it) and the forearms entering it; the face crop:
# the face's contours and both hands (a hand in front of the face). The crop's colour input carries
# the rest (torso, upper arms, the part behind).
HAND_CROP_GROUPS: tuple[FieldGroup, ...] = _crop_groups(_HANDS + ("left_forearm", "right_forearm"))
FACE_CROP_GROUPS: tuple[FieldGroup, ...] = _crop_groups(_HANDS + ("face_oval", "eyes_brows", "lips"))


def splat_table(resolution: int, groups: tuple[FieldGroup, ...] = FIELD_GROUPS):
    """Per channel, padded to the longest: endpoint indices a, b [C, P], position t along the segment
    [C, P], validity [C, P] (0 for padding), samples per segment n [C], sigma [C]."""
    per = []
    for g in groups:
        n = g.samples(resolution)
        t = np.linspace(0.0, 1.0, n)
        a = np.repeat([s[0] for s in g.segments], n)
        b = np.repeat([s[1] for s in g.segments], n)
        per.append((a, b, np.tile(t, len(g.segments)), n))
    P = max(len(a) for a, *_ in per)
    C = len(groups)
    ia, ib = np.zeros((C, P), np.int64), np.zeros((C, P), np.int64)
    tt, valid = np.zeros((C, P), np.float32), np.zeros((C, P), np.float32)
    for c, (a, b, t, _n) in enumerate(per):
        ia[c, :len(a)], ib[c, :len(a)], tt[c, :len(a)], valid[c, :len(a)] = a, b, t, 1.0
    n = np.array([p[3] for p in per], np.float32)
    sigma = np.array([g.sigma_px for g in groups], np.float32)
    return ia, ib, tt, valid, n, sigma


def keypoint_fields(kp: np.ndarray, resolution: int, groups: tuple[FieldGroup, ...] = FIELD_GROUPS) -> np.ndarray:
    """float32 [T, C, R, R] fields of keypoints [T, 178, 3] (x, y in the 512 frame, confidence), in
    float64 arithmetic: the reference the in-graph rasterizer is tested against."""
    kp = np.asarray(kp, np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must be [T, {NUM_KEYPOINTS}, 3]; got {kp.shape}")
    R = resolution
    grid = np.arange(R, dtype=np.float64)
    out = np.zeros((len(kp), len(groups), R, R))
    for c, g in enumerate(groups):
        n = g.samples(R)
        t = np.linspace(0.0, 1.0, n)
        for a, b in g.segments:
            pa, pb = kp[:, a], kp[:, b]
            on = ((pa[:, 2] > 0) & (pb[:, 2] > 0)).astype(np.float64)  # [T]
            pa_px, pb_px = pa[:, :2] * (R / FRAME) - 0.5, pb[:, :2] * (R / FRAME) - 0.5
            length = np.linalg.norm(pb_px - pa_px, axis=-1)
            w = on * np.clip(length / (n - 1) / (SQRT_2PI * g.sigma_px), 1.0 / n, 1.0)  # [T]
            pts = pa_px[:, None] + t[None, :, None] * (pb_px - pa_px)[:, None]  # [T, n, 2]
            gx = np.exp(-np.minimum((grid[None, None] - pts[..., :1]) ** 2 / (2 * g.sigma_px**2), EXP_FLOOR))
            gy = np.exp(-np.minimum((grid[None, None] - pts[..., 1:]) ** 2 / (2 * g.sigma_px**2), EXP_FLOOR))
            out[:, c] += w[:, None, None] * np.einsum("tpy,tpx->tyx", gy, gx)
    out = np.clip(out, 0.0, 1.0)
    depths = np.array([g.depth for g in groups])
    occluded = out.copy()
    for d in sorted(set(depths.tolist()))[1:]:
        cover = np.clip(out[:, depths < d].sum(axis=1, keepdims=True), 0.0, 1.0)
        occluded[:, depths == d] = out[:, depths == d] * (1.0 - cover)
    return occluded.astype(np.float32)
