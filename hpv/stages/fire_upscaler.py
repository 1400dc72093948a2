"""The small upscaler: low resolution (64/128) -> 512/768. Every layer runs at the low resolution;
one depth-to-space places the sub-pixels. Two parts sum before it: a fixed-start 3x3 grouped conv
that begins as exact bilinear interpolation of the input (so the base is smooth, not blocky, without
a Resize, whose sampling conventions differ between runtimes), and a residual from features of the
image and of the generator's keypoint fields at the low resolution (they carry sub-pixel positions
of edges and fingers). The full-resolution graph is just DepthToSpace + Clip."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hpv.errors import ConfigError
from hpv.stages.base import Stage, check_positive, register_stage
from hpv.pose.fields import NUM_FIELDS
from hpv.stages.interface import BATCH, Role, StageInterface, TensorSpec, fields_spec


@dataclass(frozen=True)
class FireUpscalerParams:
    resolution: int = 128
    out_resolution: int = 768
    width: int = 24

    def __post_init__(self):
        check_positive("fire_upscaler", resolution=self.resolution,
                       out_resolution=self.out_resolution, width=self.width)
        if self.out_resolution % self.resolution or self.out_resolution <= self.resolution:
            raise ConfigError(
                f"fire_upscaler: out_resolution must be an integer multiple (>1) of resolution, "
                f"got {self.resolution} -> {self.out_resolution}"
            )

    @property
    def scale(self) -> int:
        return self.out_resolution // self.resolution


@register_stage(
    "fire_upscaler",
    small={"resolution": 32, "out_resolution": 96, "width": 8},
    description="small upscaler: bilinear base + residual from image and keypoint fields, via depth-to-space",
)
class FireUpscaler(Stage):
    kind = "upscaler"
    Params = FireUpscalerParams

    def __init__(self, params: FireUpscalerParams):
        super().__init__(params)
        c, s = params.width, params.scale
        self.body = nn.Sequential(
            nn.Conv2d(3 + NUM_FIELDS, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(),
        )
        self.residual = nn.Conv2d(16, 3 * s * s, 1)
        with torch.no_grad():
            self.residual.weight.mul_(0.1)
            self.residual.bias.zero_()
        # Input channel k -> sub-pixel channels k*s*s .. (k+1)*s*s - 1, weights of bilinear sampling
        # (align_corners=False) from the 3x3 neighbourhood.
        self.base = nn.Conv2d(3, 3 * s * s, 3, padding=1, groups=3, bias=False)
        with torch.no_grad():
            self.base.weight.copy_(bilinear_subpixel_kernel(s).repeat(3, 1, 1, 1))
        self.shuffle = nn.PixelShuffle(s)

    def interface(self) -> StageInterface:
        p = self.params
        return StageInterface(
            inputs=(TensorSpec("image", (BATCH, 3, p.resolution, p.resolution), Role.IMAGE,
                               value_range=(0.0, 1.0)), fields_spec(p.resolution)),
            outputs=(TensorSpec("upscaled", (BATCH, 3, p.out_resolution, p.out_resolution),
                                Role.IMAGE, value_range=(0.0, 1.0)),),
            scale=p.scale,
        )

    def forward(self, image, fields):
        features = self.body(torch.cat([image, fields], dim=1))
        return (self.shuffle(self.base(image) + self.residual(features)).clamp(0.0, 1.0),)


def bilinear_subpixel_kernel(s: int) -> torch.Tensor:
    """[s*s, 1, 3, 3]: sub-pixel (i, j) of an s-times upscale as a 3x3 weighting of the input pixel's
    neighbourhood, equal to bilinear interpolation with align_corners=False (away from the border)."""
    w1 = torch.zeros(s, 3)
    for i in range(s):
        pos = (i + 0.5) / s - 0.5  # offset from the input pixel's centre, in input pixels
        if pos < 0:
            w1[i, 0], w1[i, 1] = -pos, 1 + pos
        else:
            w1[i, 1], w1[i, 2] = 1 - pos, pos
    k = w1[:, None, :, None] * w1[None, :, None, :]  # [s, s, 3, 3]: rows i, cols j
    return k.reshape(s * s, 1, 3, 3)
