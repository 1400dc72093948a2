"""Losses: L1, a temporal consistency term, and an optional PatchGAN adversarial loss."""

from __future__ import annotations

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
