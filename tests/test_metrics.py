import numpy as np
import pytest

from hpv.errors import ConfigError
from hpv.metrics import (
    FrameMetrics, evaluate_sequence, flicker, gaussian_window, max_abs_error, psnr, ssim, temporal_change,
)


def _ssim_reference(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Wang et al. 2004, written out window by window: the slow, obvious version."""
    g = gaussian_window()
    w = np.outer(g, g)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for t in range(a.shape[0]):
        for c in range(a.shape[1]):
            for i in range(a.shape[2] - 10):
                for j in range(a.shape[3] - 10):
                    x, y = a[t, c, i : i + 11, j : j + 11], b[t, c, i : i + 11, j : j + 11]
                    mx, my = (w * x).sum(), (w * y).sum()
                    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
                    cxy = (w * (x - mx) * (y - my)).sum()
                    values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_matches_the_window_by_window_reference():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (2, 3, 16, 14))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    assert ssim(a, b, 1.0) == pytest.approx(_ssim_reference(a, b, 1.0), abs=1e-12)


def test_ssim_of_constant_images_is_the_luminance_term():
    # Constant images: zero variance and covariance, so SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1).
    a, b = np.full((1, 3, 12, 12), 0.2), np.full((1, 3, 12, 12), 0.6)
    c1 = (0.01 * 1.0) ** 2
    assert ssim(a, b, 1.0) == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1), rel=1e-12)


def test_ssim_identical_is_one_and_noise_lowers_it_monotonically():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (3, 3, 32, 32))
    assert ssim(a, a, 255.0) == pytest.approx(1.0, abs=1e-12)
    noise = rng.normal(0, 1, a.shape)
    scores = [ssim(a, a + s * noise, 255.0) for s in (1, 4, 16, 64, 256)]
    assert all(x > y for x, y in zip(scores, scores[1:])), scores
    assert scores[-1] < 0.5


def test_ssim_is_symmetric_and_scale_free_in_data_range():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 1, (2, 3, 20, 20)), rng.uniform(0, 1, (2, 3, 20, 20))
    assert ssim(a, b, 1.0) == pytest.approx(ssim(b, a, 1.0))
    assert ssim(a, b, 1.0) == pytest.approx(ssim(255 * a, 255 * b, 255.0))


@pytest.mark.parametrize("shape_a, shape_b", [((3, 16, 16), (3, 16, 16)), ((1, 3, 16, 16), (1, 3, 16, 15))])
def test_ssim_rejects_wrong_shapes(shape_a, shape_b):
    with pytest.raises(ConfigError, match=r"\[T, C, H, W\]"):
        ssim(np.zeros(shape_a), np.zeros(shape_b), 1.0)


def test_ssim_rejects_frames_smaller_than_the_window():
    with pytest.raises(ConfigError, match="11x11"):
        ssim(np.zeros((1, 3, 10, 32)), np.zeros((1, 3, 10, 32)), 1.0)


def test_flicker_sign_says_who_changes_more():
    rng = np.random.default_rng(3)
    target = np.repeat(rng.uniform(0, 1, (1, 3, 8, 8)), 5, axis=0)  # a still frame
    target[2:] += 0.1  # one real change of 0.1 between frames 1 and 2
    jitter = target + rng.normal(0, 0.05, target.shape)
    assert temporal_change(target) == pytest.approx(0.1 / 4)
    assert flicker(target, target) == 0.0
    assert flicker(jitter, target) > 0
    assert flicker(np.repeat(target[:1], 5, axis=0), target) == pytest.approx(-0.1 / 4)


def test_flicker_needs_two_frames():
    with pytest.raises(ConfigError, match="T >= 2"):
        flicker(np.zeros((1, 3, 4, 4)), np.zeros((1, 3, 4, 4)))


def test_evaluate_sequence_reports_every_figure():
    rng = np.random.default_rng(4)
    target = rng.uniform(0, 1, (4, 3, 16, 16))
    pred = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1)
    m = evaluate_sequence(pred, target, 1.0)
    assert isinstance(m, FrameMetrics)
    assert m.psnr_db == psnr(pred, target, 1.0)
    assert m.ssim == ssim(pred, target, 1.0)
    assert m.flicker == pytest.approx(m.pred_change - m.target_change)
    assert m.pred_change == temporal_change(pred) and m.target_change == temporal_change(target)


def test_psnr_and_max_abs_error_unchanged():
    a = np.zeros((2, 2))
    assert psnr(a, a, 1.0) == 200.0
    assert psnr(a, a + 0.1, 1.0) == pytest.approx(20.0)
    assert max_abs_error(a, a - 0.5) == 0.5


def test_psnr_of_nan_is_nan_not_the_cap():
    """`min(200, nan)` is 200: a NaN output must not read as a perfect match."""
    a = np.zeros((2, 2))
    assert np.isnan(psnr(a, np.full((2, 2), np.nan), 1.0))
    assert psnr(a, np.full((2, 2), np.inf), 1.0) == -np.inf


def test_chroma_key_in_kept_work_arrays_is_the_same():
    from hpv.metrics import chroma_foreground

    rng = np.random.default_rng(0)
    work: dict = {}
    for shape in ((2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 5, 7)):  # reused, then a new shape
        f = rng.uniform(0, 1, shape).astype(np.float32)
        f[:, 1, :3] = 0.9
        np.testing.assert_array_equal(chroma_foreground(f, work), chroma_foreground(f))
