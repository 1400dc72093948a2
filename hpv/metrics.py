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


def psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB over all elements, for values spanning `data_range`."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * np.log10(data_range**2 / mse))


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
