"""Quality metrics, one implementation for the whole project.

Image sequences are float arrays [T, C, H, W] (frames, channels, rows, columns; NCHW, as the stages
emit them), with values spanning `data_range` (1.0 for [0, 1], 2.0 for tanh output, 255 for uint8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpv.errors import ConfigError

PSNR_CAP_DB = 200.0  # identical outputs: a finite figure keeps manifests valid JSON

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr_from_mse(mse: float, data_range: float) -> float:
    """PSNR in dB of a mean squared error, capped at PSNR_CAP_DB; NaN when the error is NaN (a NaN
    output must never read as a perfect match, as `min(PSNR_CAP_DB, nan)` would)."""
    if mse == 0.0:
        return PSNR_CAP_DB
    return float(np.minimum(PSNR_CAP_DB, 10.0 * np.log10(data_range**2 / mse)))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB over all elements, for values spanning `data_range`."""
    return psnr_from_mse(float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)), data_range)


def max_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _sequences(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 4 or a.shape != b.shape:
        raise ConfigError(
            f"{what} wants two arrays of the same shape [T, C, H, W]; got {a.shape} and {b.shape}. "
            f"Add a frame axis with x[None] for one image; move channels first with x.transpose(0, 3, 1, 2)"
        )
    return a, b


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalized 1-D Gaussian whose outer product is SSIM's 2-D window."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    w = np.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _filter_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of the last two axes: [..., H, W] -> [..., H-k+1, W-k+1]."""
    k = len(w)
    h, v = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    rows = sum(w[i] * x[..., i : i + h, :] for i in range(k))
    return sum(w[i] * rows[..., :, i : i + v] for i in range(k))


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float) -> np.ndarray:
    """Per-pixel SSIM [T, C, H-10, W-10] of two [T, C, H, W] sequences (Wang et al. 2004).

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population (weighted) moments, 'valid'
    borders only: equal to skimage's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)` map, which crops the same 5-pixel border.
    """
    a, b = _sequences(a, b, "ssim")
    if not data_range > 0:
        raise ConfigError(f"data_range must be positive; got {data_range}")
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise ConfigError(f"ssim needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}; got {a.shape[-2:]}")
    w = gaussian_window()
    mu_a, mu_b = _filter_valid(a, w), _filter_valid(b, w)
    var_a = _filter_valid(a * a, w) - mu_a**2
    var_b = _filter_valid(b * b, w) - mu_b**2
    cov = _filter_valid(a * b, w) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Mean SSIM over pixels, channels and frames of two [T, C, H, W] sequences; 1.0 when identical."""
    return float(np.mean(ssim_map(a, b, data_range)))


def temporal_change(frames: np.ndarray) -> float:
    """Mean absolute frame-to-frame change of a [T, C, H, W] sequence, in the units of its values."""
    frames = np.asarray(frames, np.float64)
    if frames.ndim != 4 or len(frames) < 2:
        raise ConfigError(f"temporal change wants [T, C, H, W] with T >= 2; got {frames.shape}")
    return float(np.mean(np.abs(np.diff(frames, axis=0))))


def flicker(pred: np.ndarray, target: np.ndarray) -> float:
    """Temporal flicker: `temporal_change(pred) - temporal_change(target)`, in the units of the values.

    Positive: the output changes more between frames than the ground truth does (jitter, shimmer);
    zero: as much as the ground truth; negative: less (frozen or over-smoothed output).
    """
    pred, target = _sequences(pred, target, "flicker")
    return temporal_change(pred) - temporal_change(target)


@dataclass(frozen=True)
class FrameMetrics:
    """Quality of a predicted sequence against its ground truth. `pred_change` and `target_change`
    are each sequence's mean absolute frame-to-frame change; `flicker` is their difference (positive:
    the output flickers more than the truth); all three in the units of the values."""

    psnr_db: float
    ssim: float
    flicker: float
    pred_change: float
    target_change: float


def evaluate_sequence(pred: np.ndarray, target: np.ndarray, data_range: float) -> FrameMetrics:
    """PSNR, SSIM and flicker of a predicted [T, C, H, W] sequence (T >= 2) against its target."""
    pred, target = _sequences(pred, target, "evaluate_sequence")
    pred_change, target_change = temporal_change(pred), temporal_change(target)
    return FrameMetrics(
        psnr_db=psnr(pred, target, data_range),
        ssim=ssim(pred, target, data_range),
        flicker=pred_change - target_change,
        pred_change=pred_change,
        target_change=target_change,
    )


# --- looks: figures that see the person, not the green background -------------------------------
#
# Frames here are [T, 3, H, W] in [0, 1] at the output resolution. Keypoints are [T, 178, 3] in the
# 512 normalized frame (x, y, confidence), as `hpv.pose.keypoints.keypoints` gives them.

PERSON_DILATE_PX = 4  # the person region: both silhouettes' union, dilated this much (at 768)
BOX_PAD = 1.3  # a part's box side: BOX_PAD x its keypoints' extent + BOX_MARGIN
BOX_MARGIN = 12.0  # in 512-frame units


def chroma_foreground(frames: np.ndarray, work: dict | None = None) -> np.ndarray:
    """bool [T, H, W]: pixels the app's chroma key keeps (not g > 0.5, g > 1.5 r, g > 1.5 b).
    With `work` (a dict kept by the caller), its temporaries and the result live in arrays kept
    there from call to call (the result then valid until the next such call): the same values
    without the page faults of fresh frame-sized arrays."""
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[1] != 3:
        raise ConfigError(f"chroma_foreground wants [T, 3, H, W] frames in [0, 1]; got {f.shape}")
    r, g, b = f[:, 0], f[:, 1], f[:, 2]
    if work is None:
        return ~((g > 0.5) & (g > 1.5 * r) & (g > 1.5 * b))

    def held(name: str, dtype) -> np.ndarray:
        a = work.get(name)
        if a is None or a.shape != g.shape or a.dtype != dtype:
            a = work[name] = np.empty(g.shape, dtype)
        return a

    scaled, keyed, test = held("scaled", f.dtype), held("keyed", bool), held("test", bool)
    np.greater(g, np.multiply(r, 1.5, out=scaled), out=keyed)
    keyed &= np.greater(g, np.multiply(b, 1.5, out=scaled), out=test)
    keyed &= np.greater(g, 0.5, out=test)
    return np.logical_not(keyed, out=keyed)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square dilation of bool [..., H, W] by `radius` pixels (separable running max)."""
    out = np.asarray(mask, bool)
    for axis in (-2, -1):
        acc = out.copy()
        for k in range(1, radius + 1):
            fwd = np.zeros_like(out)
            bwd = np.zeros_like(out)
            src = [slice(None)] * out.ndim
            dst = [slice(None)] * out.ndim
            src[axis], dst[axis] = slice(0, -k), slice(k, None)
            fwd[tuple(dst)] = out[tuple(src)]
            bwd[tuple(src)] = out[tuple(dst)]
            acc |= fwd | bwd
        out = acc
    return out


def silhouette_iou(pred: np.ndarray, target: np.ndarray) -> float:
    """IoU of the keyed foregrounds of two [T, 3, H, W] sequences (1.0 when both are empty)."""
    a, b = chroma_foreground(pred), chroma_foreground(target)
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def part_boxes(kp: np.ndarray, indices, resolution: int) -> np.ndarray:
    """int [T, 4] square boxes (x0, y0, x1, y1, end exclusive, clipped to the frame) around the
    seen keypoints `indices` of each frame, at `resolution`; all -1 where fewer than 3 points are
    seen or the box lies outside the frame."""
    kp = np.asarray(kp, np.float64)
    pts = kp[:, list(indices)]
    seen = pts[..., 2] > 0
    out = np.full((len(kp), 4), -1, np.int64)
    s = resolution / 512.0
    for t in range(len(kp)):
        if seen[t].sum() < 3:
            continue
        xy = pts[t, seen[t], :2]
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        c, side = (lo + hi) / 2, BOX_PAD * (hi - lo).max() + BOX_MARGIN
        x0, y0 = np.floor((c - side / 2) * s).astype(int)
        x1, y1 = np.ceil((c + side / 2) * s).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, resolution), min(y1, resolution)
        if x1 > x0 and y1 > y0:
            out[t] = (x0, y0, x1, y1)
    return out


def boxes_mask(boxes: np.ndarray, resolution: int) -> np.ndarray:
    """bool [T, R, R]: inside each frame's box (none where the box is -1)."""
    m = np.zeros((len(boxes), resolution, resolution), bool)
    for t, (x0, y0, x1, y1) in enumerate(boxes):
        if x0 >= 0:
            m[t, y0:y1, x0:x1] = True
    return m


def _part_indices():
    from hpv.pose.keypoints import OFFSETS

    hands = [list(range(OFFSETS[c], OFFSETS[c] + 21)) for c in ("LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS")]
    face = list(range(OFFSETS["FACE_LANDMARKS"], OFFSETS["LEFT_HAND_LANDMARKS"]))
    return hands, face


def hand_mask(keypoints: np.ndarray, resolution: int) -> np.ndarray:
    """bool [T, R, R]: inside either hand's box, from keypoints [T, 178, 3] (512 frame)."""
    hands_idx, _face = _part_indices()
    m = np.zeros((len(keypoints), resolution, resolution), bool)
    for idx in hands_idx:
        m |= boxes_mask(part_boxes(keypoints, idx, resolution), resolution)
    return m


@dataclass
class _SE:
    """Squared error and element count over a region, pooled across sequences."""

    se: float = 0.0
    n: int = 0

    def add(self, sq: np.ndarray, mask: np.ndarray, channels: int) -> None:
        """sq [T, H, W]: per-pixel squared error summed over channels."""
        self.se += float(sq[mask].sum(dtype=np.float64))
        self.n += int(np.count_nonzero(mask)) * channels

    def psnr(self, data_range: float = 1.0) -> float:
        if self.n == 0:
            return float("nan")
        return psnr_from_mse(self.se / self.n, data_range)


@dataclass(frozen=True)
class LooksMetrics:
    """What a viewer sees, against the ground truth. PSNRs in dB over their regions (pooled squared
    error across frames and sequences; NaN where a region never appears); `flicker` is the mean
    frame-to-frame change of the output minus that of the truth over the person region (positive:
    shimmer)."""

    silhouette_iou: float
    person_psnr_db: float
    person_ssim: float
    hand_psnr_db: float
    face_psnr_db: float
    flicker: float
    psnr_db: float  # the whole frame, background included (kept for comparison only)
    frames: int

    def to_json(self) -> dict:
        from dataclasses import asdict

        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


class LooksAccumulator:
    """Adds sequences one at a time (a 768x768 sequence is large) and pools their figures."""

    def __init__(self):
        self.inter = self.union = 0
        self.person, self.hands, self.face, self.full = _SE(), _SE(), _SE(), _SE()
        self.ssim_sum, self.ssim_n = 0.0, 0
        self.flicker_sum, self.flicker_n = 0.0, 0
        self.frames = 0

    def add(self, pred: np.ndarray, target: np.ndarray, keypoints: np.ndarray) -> None:
        pred, target = (np.asarray(x, np.float32) for x in _sequences(pred, target, "looks"))
        if not (np.isfinite(pred).all() and np.isfinite(target).all()):
            raise ConfigError("looks: frames hold NaN or infinite values; a model that emits them has failed")
        T, _, H, W = pred.shape
        if H != W or len(keypoints) != T:
            raise ConfigError(f"looks wants square frames and one keypoint set per frame; got {pred.shape}, "
                              f"{len(keypoints)} keypoint frames")
        fa, fb = chroma_foreground(pred), chroma_foreground(target)
        self.inter += np.count_nonzero(fa & fb)
        self.union += np.count_nonzero(fa | fb)
        person = dilate(fa | fb, max(1, round(PERSON_DILATE_PX * H / 768)))
        sq = np.square(pred - target).sum(axis=1)  # [T, H, W]
        self.person.add(sq, person, 3)
        self.full.add(sq, np.ones_like(person), 3)
        _hands, face_idx = _part_indices()
        self.hands.add(sq, hand_mask(keypoints, H), 3)
        self.face.add(sq, boxes_mask(part_boxes(keypoints, face_idx, H), H), 3)
        if min(H, W) >= SSIM_WINDOW:
            self._add_ssim(pred, target, person)
        if T >= 2:
            region = person[1:] | person[:-1]
            change = np.abs(np.diff(pred, axis=0)).mean(axis=1) - np.abs(np.diff(target, axis=0)).mean(axis=1)
            self.flicker_sum += float(change[region].sum())
            self.flicker_n += int(region.sum())
        self.frames += T

    def _add_ssim(self, pred, target, person) -> None:
        """SSIM over the person pixels (those whose 11x11 window lies in the frame), computed on
        each frame's person bounding box grown by the window's half-width: the same figure as the
        whole frame's map restricted to the person, at a fraction of the cost."""
        h = SSIM_WINDOW // 2
        H, W = person.shape[1:]
        valid = np.zeros_like(person)
        valid[:, h:H - h, h:W - h] = person[:, h:H - h, h:W - h]
        for t in range(len(person)):
            ys, xs = np.nonzero(valid[t])
            if not len(ys):
                continue
            y0, y1 = ys.min() - h, ys.max() + h + 1
            x0, x1 = xs.min() - h, xs.max() + h + 1
            smap = ssim_map(pred[t:t + 1, :, y0:y1, x0:x1], target[t:t + 1, :, y0:y1, x0:x1], 1.0)[0].mean(axis=0)
            m = valid[t, y0 + h:y1 - h, x0 + h:x1 - h]
            self.ssim_sum += float(smap[m].sum(dtype=np.float64))
            self.ssim_n += int(m.sum())

    def result(self) -> LooksMetrics:
        return LooksMetrics(
            silhouette_iou=1.0 if self.union == 0 else float(self.inter / self.union),
            person_psnr_db=float(self.person.psnr()), person_ssim=self.ssim_sum / self.ssim_n if self.ssim_n else float("nan"),
            hand_psnr_db=float(self.hands.psnr()), face_psnr_db=float(self.face.psnr()),
            flicker=self.flicker_sum / self.flicker_n if self.flicker_n else float("nan"),
            psnr_db=float(self.full.psnr()), frames=self.frames)


def evaluate_looks(pred: np.ndarray, target: np.ndarray, keypoints: np.ndarray) -> LooksMetrics:
    """Looks figures of one [T, 3, H, W] sequence in [0, 1] against its ground truth."""
    acc = LooksAccumulator()
    acc.add(pred, target, keypoints)
    return acc.result()
