"""Losses: L1, person-weighted L1 + edge + SSIM terms, a temporal consistency term, and an optional
PatchGAN adversarial loss; the learning-rate schedule and the clipped optimizer step."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


def temporal(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Frame-to-frame change of the output against that of the ground truth, for clips [B,T,C,H,W]:
    penalizes flicker (change the target does not have) and lag (change it does)."""
    return ((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])).abs().mean()


class PatchGAN(nn.Module):
    """pix2pix's 70x70 PatchGAN discriminator on (condition, image) pairs; `width` scales it down."""

    def __init__(self, in_ch: int = 6, width: int = 64, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(in_ch, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = width
        for i in range(1, layers + 1):
            out = width * min(2**i, 8)
            mods += [nn.Conv2d(ch, out, 4, 2 if i < layers else 1, 1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
            ch = out
        mods.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1))


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))


# --- losses that see the person and its edges (no pretrained networks) -------------------------

def person_weight(target: torch.Tensor, extra: float, dilate: int = 2) -> torch.Tensor:
    """[N,1,H,W]: 1 on the background, 1 + extra on the person (the pixels the app's chroma key
    keeps in the ground truth, dilated by `dilate` px so that silhouette edges count fully).
    target in [-1, 1]."""
    u = (target + 1) * 0.5
    r, g, b = u[:, 0:1], u[:, 1:2], u[:, 2:3]
    person = ~((g > 0.5) & (g > 1.5 * r) & (g > 1.5 * b))
    person = F.max_pool2d(person.float(), 2 * dilate + 1, stride=1, padding=dilate)
    return 1.0 + extra * person


def _gauss(size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    w = w / w.sum()
    return (w[:, None] * w[None, :])[None, None]


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean SSIM (7x7 Gaussian window, sigma 1.5) of images in [-1, 1]."""
    c = pred.shape[1]
    w = _gauss().to(pred).repeat(c, 1, 1, 1)
    a, b = (pred + 1) * 0.5, (target + 1) * 0.5

    def f(x):
        return F.conv2d(x, w, groups=c)

    mu_a, mu_b = f(a), f(b)
    var_a, var_b, cov = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return 1.0 - s.mean()


def hand_weight(keypoints, resolution: int, frames=slice(None)) -> torch.Tensor:
    """[T,1,R,R]: 1 inside either hand's box (the boxes `hpv.metrics` scores, from the keypoints
    [T,178,3] in the 512 frame), 0 elsewhere; `frames` slices the result."""
    from hpv.metrics import hand_mask

    kp = np.asarray(keypoints)[frames]
    kp = kp[None] if kp.ndim == 2 else kp
    return torch.from_numpy(hand_mask(kp, resolution)[:, None].astype(np.float32))


def image_loss(pred: torch.Tensor, target: torch.Tensor, cfg, hands: torch.Tensor | None = None) -> torch.Tensor:
    """Person-weighted L1 + person-weighted L1 of the image gradients (edges, fingers) + SSIM term,
    for [N,3,H,W] images in [-1, 1]. `cfg` is a `hpv.training.config.LossConfig`; `hands` [N,1,H,W]
    (see `hand_weight`) adds cfg.hand_weight inside the hands' boxes."""
    w = person_weight(target, cfg.person_weight)
    if hands is not None and cfg.hand_weight:
        w = w + cfg.hand_weight * hands
    d = (pred - target).abs()
    loss = (w * d).mean() / w.mean()
    if cfg.gradient_weight:
        gx = lambda x: x[..., :, 1:] - x[..., :, :-1]  # noqa: E731
        gy = lambda x: x[..., 1:, :] - x[..., :-1, :]  # noqa: E731
        wx, wy = torch.maximum(w[..., :, 1:], w[..., :, :-1]), torch.maximum(w[..., 1:, :], w[..., :-1, :])
        edge = ((wx * (gx(pred) - gx(target)).abs()).mean() / wx.mean()
                + (wy * (gy(pred) - gy(target)).abs()).mean() / wy.mean())
        loss = loss + cfg.gradient_weight * edge
    if cfg.ssim_weight:
        loss = loss + cfg.ssim_weight * ssim_loss(pred, target)
    return loss


def scheduled_lr(budget, step: int) -> float:
    """Cosine decay from budget.lr to 5% of it over the phase, after a short linear warm-up: a pure
    function of the step, so a resumed run follows the same schedule."""
    import math

    warm = max(1, budget.steps // 50)
    if step < warm:
        return budget.lr * (step + 1) / warm
    p = (step - warm) / max(1, budget.steps - warm)
    return budget.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


def clip_and_step(opt: torch.optim.Optimizer, model: nn.Module, loss: torch.Tensor, lr: float, clip: float) -> float:
    """Backward, clip the gradient norm to `clip` (0: no clipping), step at `lr`; returns the
    gradient norm before clipping."""
    opt.zero_grad()
    loss.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
    for group in opt.param_groups:
        group["lr"] = lr
    opt.step()
    return float(norm)
