"""Stitching the parts into the frame (issue 14): each part generator's crop (colour [3, S, S] in
[0, 1] and a soft alpha [1, S, S]) is resampled into the frame at the output resolution by its crop
transform (`hpv.parts.PartBox.transform`) and blended over it by alpha, back to front in the order
`layer_order` gives. Runs in the runtime, not in a compiled graph: the three formats have no common
resampling op with the same half-pixel rule, and this is a few multiply-adds per covered pixel.
docs/stitching.md is the contract for app teams; tests/parts/stitch_vectors.json its test vectors.

Sampling: a frame pixel (i, j) has its centre at (x, y) = (j + 0.5, i + 0.5); its crop coordinates
(u, v) = frame_to_crop(x, y), read bilinearly at array position (u - 0.5, v - 0.5) from the crop's
premultiplied colour (alpha x colour) and its alpha, both zero outside the crop. Blend ("over", on
premultiplied colour): frame = P + (1 - A) x frame, for each layer in order. numpy: the resampling
is separable (each frame row reads two crop rows, each column two columns: four gathers a layer),
no per-pixel loop.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hpv.errors import ConfigError
from hpv.parts.crops import HANDS, CropTransform, PartBox
from hpv.pose.keypoints import index

BEHIND_BODY = 0.25  # a wrist this many shoulder widths further than the shoulders is behind the body


@dataclass(frozen=True)
class PartLayer:
    """One part's generated crop and where it goes: colour [3, S, S], alpha [1, S, S], both in [0, 1]."""

    name: str
    color: np.ndarray
    alpha: np.ndarray
    transform: CropTransform

    def __post_init__(self):
        s = self.transform.size
        if np.shape(self.color) != (3, s, s) or np.shape(self.alpha) != (1, s, s):
            raise ConfigError(f"part {self.name!r}: colour must be [3, {s}, {s}] and alpha [1, {s}, {s}] for its "
                              f"transform's crop size {s}; got {np.shape(self.color)} and {np.shape(self.alpha)}")


def _covered(t: CropTransform) -> tuple[slice, slice]:
    """Rows and columns of the frame that can receive a non-zero sample of the crop (its square grown
    by one crop pixel for the bilinear border), clipped to the frame."""
    x0, y0, x1, y1 = t.frame_extent()
    k = abs(t.sx)
    cols = slice(max(0, int(np.floor(x0 - k - 0.5))), min(t.resolution, int(np.ceil(x1 + k + 0.5))))
    rows = slice(max(0, int(np.floor(y0 - k - 0.5))), min(t.resolution, int(np.ceil(y1 + k + 0.5))))
    return rows, cols


def _taps(positions: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(i0 [N] int, weights [2, N] float32) of linear interpolation at `positions` over `size`
    samples: position p reads samples i0 and i0 + 1 with weights (1 - f, f); i0 is clamped to
    [-1, size - 1] and a tap outside [0, size) has weight 0 (it reads zero)."""
    p = np.asarray(positions, np.float64)
    i0 = np.floor(p).astype(np.int64)
    f = p - i0
    w = np.stack([1.0 - f, f]).astype(np.float32)
    w[0, (i0 < 0) | (i0 >= size)] = 0.0
    w[1, (i0 + 1 < 0) | (i0 + 1 >= size)] = 0.0
    return np.clip(i0, -1, size - 1), w


class Scratch:
    """Work arrays reused from call to call, by name: a paste's temporaries are a few hundred KB,
    and a fresh array that size is mapped anew by the allocator each time, its page faults costing
    more than its arithmetic (a face paste at 768 took 0.98 ms in a frame, 0.47 ms with the
    allocator keeping its memory). One per thread (`_scratch`)."""

    def __init__(self):
        self._flat: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 array of `shape` (contents undefined), valid until the next `get` of `name`."""
        n = int(np.prod(shape))
        flat = self._flat.get(name)
        if flat is None or flat.size < n:
            flat = self._flat[name] = np.empty(n, np.float32)
        return flat[:n].reshape(shape)


_local = threading.local()


def _scratch() -> Scratch:
    if not hasattr(_local, "scratch"):
        _local.scratch = Scratch()
    return _local.scratch


def _lerp(src: np.ndarray, axis: int, taps: tuple[np.ndarray, np.ndarray], out: np.ndarray | None = None,
          far: np.ndarray | None = None) -> np.ndarray:
    """`src` read at the taps (`_taps`) along `axis`: two gathers and their weighted sum, into
    `out` (and `far`, a work array) when given. A tap outside `src` has weight 0, so its index is
    only clamped to a valid one (the gathers' mode)."""
    i0, w = taps
    shape = [1] * src.ndim
    shape[axis] = -1
    out = np.take(src, i0, axis=axis, mode="clip", out=out)
    out *= w[0].reshape(shape)
    far = np.take(src, i0 + 1, axis=axis, mode="clip", out=far)
    far *= w[1].reshape(shape)
    out += far
    return out


def _resample(src: np.ndarray, ty: tuple[np.ndarray, np.ndarray], tx: tuple[np.ndarray, np.ndarray],
              scratch: Scratch | None = None) -> np.ndarray:
    """[C, Ny, Nx]: `src` [C, H, W] read bilinearly at the rows and columns of the taps `ty`, `tx`
    (`_taps`), taps outside `src` reading zero; in `scratch`'s arrays when given (then valid until
    its next use). Separable, as gathers: the columns first when the rows are upsampled (the
    gather along the last axis, the slow one, then makes the smaller array). Gathers rather than
    the two interpolation matrices' products: those do ~30x the multiply-adds, and OpenBLAS's
    threads spin after them and take a core from the next stage's ONNX Runtime session
    (`python bench/parts_speed.py`)."""
    c, h, w = src.shape
    ny, nx = len(ty[0]), len(tx[0])
    first, second = ((2, tx, (c, h, nx)), (1, ty, (c, ny, nx))) if h < ny else ((1, ty, (c, ny, w)), (2, tx, (c, ny, nx)))
    get = (lambda name, shape: scratch.get(name, shape)) if scratch is not None else (lambda name, shape: None)
    half = _lerp(src, first[0], first[1], get("half", first[2]), get("half_far", first[2]))
    return _lerp(half, second[0], second[1], get("out", second[2]), get("out_far", second[2]))


def paste(frame: np.ndarray, layer: PartLayer) -> np.ndarray:
    """`frame` [3, R, R] with one layer blended over it, in place; returns it.

    Bilinear resampling by an axis-aligned scale and offset is separable: each covered frame row
    reads two crop rows and each column two crop columns (`_resample`, the figures of the
    four-tap formula). Its work arrays are this thread's `Scratch`."""
    t = layer.transform
    rows, cols = _covered(t)
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return frame
    u = (np.arange(cols.start, cols.stop) + 0.5 - t.ox) / t.sx - 0.5
    v = (np.arange(rows.start, rows.stop) + 0.5 - t.oy) / t.sy - 0.5
    scratch = _scratch()
    alpha = np.asarray(layer.alpha, np.float32)
    src = scratch.get("src", (4, t.size, t.size))  # premultiplied colour + alpha
    np.multiply(np.asarray(layer.color, np.float32), alpha, out=src[:3])
    src[3:] = alpha
    sampled = _resample(src, _taps(v, t.size), _taps(u, t.size), scratch)  # [4, rows, cols]
    np.subtract(1.0, sampled[3:], out=sampled[3:])
    region = frame[:, rows, cols]  # a view: the frame is blended in place
    region *= sampled[3:]
    region += sampled[:3]
    return frame


def stitch(frame: np.ndarray, layers: Mapping[str, PartLayer] | Sequence[PartLayer],
           order: Sequence[str] | None = None, *, in_place: bool = False) -> np.ndarray:
    """A new frame [3, R, R] float32: `frame` with the layers blended over it, back to front in
    `order` (part names; a name not in `order` is not drawn). `order` None: the layers' own order.
    `in_place`: blend into `frame` itself (float32) and return it, as the runtime does with the
    upscaler's output, which nothing else holds."""
    if in_place and not (isinstance(frame, np.ndarray) and frame.dtype == np.float32):
        raise ConfigError(f"stitch in place wants a float32 array; got {getattr(frame, 'dtype', type(frame))}")
    frame = np.asarray(frame, np.float32)
    if frame.ndim != 3 or frame.shape[0] != 3 or frame.shape[1] != frame.shape[2]:
        raise ConfigError(f"stitch wants a square frame [3, R, R]; got {frame.shape}")
    by_name = dict(layers) if isinstance(layers, Mapping) else {layer.name: layer for layer in layers}
    out = frame if in_place else frame.copy()
    for name in (order if order is not None else list(by_name)):
        if name not in by_name:
            raise ConfigError(f"order names {name!r}, which has no layer; layers: {sorted(by_name)}")
        layer = by_name[name]
        if layer.transform.resolution != frame.shape[-1]:
            raise ConfigError(f"part {name!r}: its transform is for a {layer.transform.resolution} frame; "
                              f"the frame is {frame.shape[-1]}")
        paste(out, layer)
    return out


def tent_matrix(positions: np.ndarray, size: int, support: float) -> np.ndarray:
    """float32 [N, size]: row n holds the weights max(0, 1 - |i - positions[n]| / support) over the
    samples i in [0, size), normalized to sum 1. `support` 1 is linear interpolation; a larger one
    averages over the footprint of a coarser output pixel (a downscale without aliasing)."""
    d = np.abs(np.arange(size, dtype=np.float64)[None] - np.asarray(positions, np.float64)[:, None])
    w = np.maximum(0.0, 1.0 - d / support)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def sample_crop(frame: np.ndarray, transform: CropTransform, antialias: bool = False) -> np.ndarray:
    """The crop [C, S, S] of `frame` [C, R, R] under `transform` (the inverse of pasting), for training
    the part generators on crops of the ground truth: each crop pixel centre's frame position (clamped
    to the frame's edge pixels), read bilinearly; with `antialias`, with a tent filter as wide as a
    crop pixel is in the frame, so that a downscaled crop does not alias. Measured (ground truth at
    768, crops pasted back by `stitch`): the bilinear crop round-trips about 1 dB better in the hand
    and face boxes (64 px: hands 30.6 vs 29.5 dB); the antialiased one does not shimmer as a box moves."""
    frame = np.asarray(frame, np.float32)
    if frame.ndim != 3 or frame.shape[-1] != transform.resolution or frame.shape[-2] != transform.resolution:
        raise ConfigError(f"sample_crop wants a frame [C, {transform.resolution}, {transform.resolution}] for its "
                          f"transform; got {frame.shape}")
    r = transform.resolution
    centres = np.arange(transform.size, dtype=np.float64) + 0.5
    x = np.clip(transform.sx * centres + transform.ox - 0.5, 0.0, r - 1)
    y = np.clip(transform.sy * centres + transform.oy - 0.5, 0.0, r - 1)
    if not antialias:  # two taps a row and a column, read inside the frame (positions are clamped)
        (y0, y1), (x0, x1) = ((int(np.floor(p.min())), min(r, int(np.floor(p.max())) + 2)) for p in (y, x))
        return _resample(frame[:, y0:y1, x0:x1], _taps(y - y0, y1 - y0), _taps(x - x0, x1 - x0))
    support = max(1.0, abs(transform.sx))
    (x0, x1), (y0, y1) = ((max(0, int(np.floor(p.min() - support))), min(r, int(np.ceil(p.max() + support)) + 1))
                          for p in (x, y))
    wx, wy = tent_matrix(x - x0, x1 - x0, support), tent_matrix(y - y0, y1 - y0, support)
    return wy @ frame[:, y0:y1, x0:x1] @ wx.T


def _torso_contains(keypoints: np.ndarray, point: np.ndarray) -> bool:
    """Whether `point` lies inside the quadrilateral shoulders-hips (all four seen)."""
    ids = [index("POSE_LANDMARKS", p) for p in ("LEFT_SHOULDER", "RIGHT_SHOULDER", "RIGHT_HIP", "LEFT_HIP")]
    quad = np.asarray(keypoints, np.float64)[ids]
    if not (quad[:, 2] > 0).all():
        return False
    poly = quad[:, :2]
    def side_of(a, b):  # sign of the 2-D cross product (b - a) x (point - a)
        return np.sign((b[0] - a[0]) * (point[1] - a[1]) - (b[1] - a[1]) * (point[0] - a[0]))

    signs = [side_of(poly[k], poly[(k + 1) % 4]) for k in range(4)]
    return all(s >= 0 for s in signs) or all(s <= 0 for s in signs)


def layer_order(keypoints: np.ndarray, boxes: Mapping[str, PartBox], z: np.ndarray | None = None) -> tuple[str, ...]:
    """The parts to draw, back to front, for one frame's keypoints [178, 3] (512 frame) and boxes.

    1. Absent parts are not drawn.
    2. The face goes first (at the back): a hand near the face while signing is in front of it.
    3. A hand is hidden (not drawn: the body in the frame stays in front) when `z` [178] (the pose's
       z, larger = further, as `PoseSequence.points[t, :, 2]`) is given, its wrist is further than
       the shoulders' mean z by more than BEHIND_BODY shoulder widths, and its box centre lies inside
       the torso (the shoulders-hips quadrilateral); behind the body but beside it, it is drawn.
    4. The hands in front of the face, the further first: by wrist z when given (both wrists seen),
       else the smaller box first (at equal size, the nearer hand looks larger); ties: left first.
    """
    kp = np.asarray(keypoints, np.float64)
    order = [name for name in ("face",) if name in boxes and boxes[name].drawn]
    hands = [h for h in HANDS if h in boxes and boxes[h].drawn]
    wrist = {h: index("POSE_LANDMARKS", f"{h.split('_')[0].upper()}_WRIST") for h in HANDS}
    use_z = z is not None
    if use_z:
        z = np.asarray(z, np.float64)
        ls, rs = index("POSE_LANDMARKS", "LEFT_SHOULDER"), index("POSE_LANDMARKS", "RIGHT_SHOULDER")
        if kp[ls, 2] > 0 and kp[rs, 2] > 0:
            width = float(np.linalg.norm(kp[ls, :2] - kp[rs, :2]))
            shoulders_z = (z[ls] + z[rs]) / 2
            hands = [h for h in hands if not (
                kp[wrist[h], 2] > 0 and z[wrist[h]] - shoulders_z > BEHIND_BODY * width
                and _torso_contains(kp, np.array([boxes[h].cx, boxes[h].cy])))]
        use_z = all(kp[wrist[h], 2] > 0 for h in hands)
    if use_z:
        hands.sort(key=lambda h: -z[wrist[h]])  # stable: ties keep left first
    else:
        hands.sort(key=lambda h: boxes[h].side)
    return tuple(order + hands)

