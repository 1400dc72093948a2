"""The conditioning image: a pose sequence drawn as the app's PoseVisualizer draws it, for all frames
at once in numpy.

Matches `PoseVisualizer._draw_frame`: point color = palette * conf + (1 - conf) * background
(truncated to int; conf clamped to [0, 1], a non-finite conf counts as 0), limb color = mean of its
two point colors (then saturated, like cv2), limbs only between points with conf > 0 and finite x, y,
every visible point as a dot, painter's order by z (larger = further, drawn first; ties keep the
visualizer's order: per component, points before limbs), thickness 1.
Lines are sampled DDA-style without anti-aliasing (cv2 uses LINE_AA at the app's size).
"""

from __future__ import annotations

import numpy as np

from hpv.errors import ConfigError
from hpv.pose.sequence import FRAME_SIZE, PoseSequence

APP_BACKGROUNDS = {"white": (255, 255, 255), "lavender": (200, 200, 255)}
_RGB = np.dtype((np.void, 3))
_TO_UNIT = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1)


def letterbox(width: float, height: float, resolution: int) -> tuple[float, float, float]:
    """(scale, offset_x, offset_y) fitting a width x height frame into a square, aspect kept."""
    scale = resolution / max(width, height)
    return scale, (resolution - width * scale) / 2, (resolution - height * scale) / 2


def _primitives(seq: PoseSequence) -> tuple[np.ndarray, np.ndarray]:
    """Endpoints [P] of every drawable in the visualizer's order: per component, dots then limbs."""
    layout = seq.layout
    bounds = [*layout.component_offsets, layout.num_points]
    a, b = [], []
    for k in range(len(layout.component_names)):
        dots = np.arange(bounds[k], bounds[k + 1])
        limbs = layout.limbs[layout.limb_component == k]
        a += [dots, limbs[:, 0]]
        b += [dots, limbs[:, 1]]
    return np.concatenate(a).astype(np.int64), np.concatenate(b).astype(np.int64)


def _clip_to_box(x0, y0, x1, y1, lo, hi):
    """Liang-Barsky: segments clipped to [lo, hi]^2, plus which ones keep any part.
    Bounds the samples a far off-frame point can cost."""
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = np.zeros_like(x0), np.ones_like(x0)
    keep = np.ones(x0.shape, bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for p, q in ((-dx, x0 - lo), (dx, hi - x0), (-dy, y0 - lo), (dy, hi - y0)):
            r = q / p
            keep &= ~((p == 0) & (q < 0))
            t0 = np.where(p < 0, np.maximum(t0, r), t0)
            t1 = np.where(p > 0, np.minimum(t1, r), t1)
    keep &= t0 <= t1
    return x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy, keep


def render(seq: PoseSequence, resolution: int = 256, background=(255, 255, 255)) -> np.ndarray:
    """uint8 [T, R, R, 3] images of `seq`, drawn from its 512x512 frame at R x R."""
    if resolution < 1:
        raise ConfigError(f"resolution must be >= 1; got {resolution}")
    T, R = seq.num_frames, resolution
    bg = np.asarray(background, dtype=np.float64)
    images = np.empty((T, R, R, 3), np.uint8)
    images.reshape(T, -1)[:] = np.tile(bg.astype(np.uint8), R * R)  # 30x faster than broadcasting (3,)
    if T == 0 or seq.layout.num_points == 0:
        return images

    # As keypoints() does: confidence outside [0, 1] is clamped, a non-finite one means missing;
    # otherwise an inf confidence makes the colors inf - inf = NaN.
    conf = seq.confidence.astype(np.float64)
    conf = np.where(np.isfinite(conf), np.clip(conf, 0.0, 1.0), 0.0)
    colors = np.trunc(seq.layout.colors * conf[..., None] + (1 - conf[..., None]) * bg)  # [T, N, 3]
    a, b = _primitives(seq)
    scale, ox, oy = letterbox(FRAME_SIZE, FRAME_SIZE, R)
    xy = seq.points[..., :2].astype(np.float64) * scale + [ox, oy]
    seen = (conf > 0) & np.isfinite(xy).all(axis=-1)
    z = seq.points[..., 2].astype(np.float64)
    z = np.where(np.isfinite(z), z, 0.0)

    # Visible primitives, as flat (frame, primitive) pairs sorted into drawing order.
    frame, prim = np.nonzero(seen[:, a] & seen[:, b])  # frame-major, primitives in visualizer order
    ia, ib = a[prim], b[prim]
    x0, y0, x1, y1 = *xy[frame, ia].T, *xy[frame, ib].T
    keep = np.ones(len(frame), bool)
    out = np.flatnonzero((np.minimum(np.minimum(x0, y0), np.minimum(x1, y1)) < 0)
                         | (np.maximum(np.maximum(x0, y0), np.maximum(x1, y1)) > R - 1))
    x0[out], y0[out], x1[out], y1[out], keep[out] = _clip_to_box(x0[out], y0[out], x1[out], y1[out], 0.0, R - 1.0)
    depth = (z[frame, ia] + z[frame, ib]) / 2
    kept = np.flatnonzero(keep)
    # One stable float sort by (frame, -depth), 2x faster than lexsort: depths are means of float32
    # values, so offsetting frames by a power of two above their span keeps comparisons exact.
    span = 2.0 ** np.ceil(np.log2(2 * np.abs(depth).max(initial=0) + 1))
    order = kept[np.argsort(frame[kept] * span - depth[kept], kind="stable")]  # ties: visualizer order
    frame, ia, ib = frame[order], ia[order], ib[order]
    x0, y0, x1, y1 = (np.rint(v[order]) for v in (x0, y0, x1, y1))
    color = np.rint((colors[frame, ia] + colors[frame, ib]) / 2)
    color = np.clip(color, 0, 255).astype(np.uint8)

    # ~1 px steps: n = max(|dx|, |dy|) + 1 samples per primitive, all primitives at once.
    n = (np.maximum(np.abs(x1 - x0), np.abs(y1 - y0)) + 1).astype(np.int64)
    owner = np.repeat(np.arange(len(n)), n)
    step = np.arange(len(owner)) - np.repeat(np.cumsum(n) - n, n)
    frac = step / np.maximum(n - 1, 1)[owner]
    px = np.rint(x0[owner] + frac * (x1 - x0)[owner]).astype(np.int64)
    py = np.rint(y0[owner] + frac * (y1 - y0)[owner]).astype(np.int64)
    pf = frame[owner]

    # Later samples are nearer, so each pixel takes its last sample. Found explicitly: fancy
    # assignment with repeated indices has no order guarantee.
    local = py * R + px
    last = _last_per_key(pf, local) if R * R <= 1 << 16 else _last_per_key(pf, py, px)
    pixels = images.reshape(-1, 3).view(_RGB).reshape(-1)  # one 3-byte item per pixel: 2x faster
    pixels[pf[last] * (R * R) + local[last]] = color.view(_RGB).reshape(-1)[owner[last]]
    return images


def _stable_sort(*keys: np.ndarray) -> np.ndarray:
    """Stable argsort by `keys` (most significant first), as an LSD sort: numpy sorts 16-bit
    integers stably by radix, several times faster than lexsort or sorting a combined int64 key."""
    perm = np.arange(len(keys[0]))
    for k in reversed(keys):
        k = k[perm]
        if k.dtype.kind in "iu" and len(k) and 0 <= k.min() and k.max() < 1 << 16:
            k = k.astype(np.uint16)
        perm = perm[np.argsort(k, kind="stable")]
    return perm


def _last_per_key(*keys: np.ndarray) -> np.ndarray:
    """Index of the last occurrence of each distinct key tuple."""
    perm = _stable_sort(*keys)
    is_last = np.ones(len(perm), bool)
    is_last[:-1] = np.any([k[perm[1:]] != k[perm[:-1]] for k in keys], axis=0)
    return perm[is_last]


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 [T, R, R, 3] -> float32 [T, 3, R, R] in [-1, 1], the generator's input."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ConfigError(f"expected uint8 [T, R, R, 3] images; got {images.dtype} {images.shape}")
    return _TO_UNIT[images.transpose(0, 3, 1, 2)]  # a 256-entry table: 4x faster than the arithmetic
