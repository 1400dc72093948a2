"""The small upscaler: low resolution (64/128) -> 512/768. Every layer runs at the low resolution;
one depth-to-space places the sub-pixels. The last 1x1 conv also sees the input image and starts
out copying it to every sub-pixel (a nearest-neighbour base the residual is learned on), so the
full-resolution graph is just DepthToSpace + Clip: no Resize, whose sampling conventions differ
between runtimes, and no full-resolution add."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hpv.errors import ConfigError
from hpv.stages.base import Stage, check_positive, register_stage
from hpv.stages.interface import BATCH, Role, StageInterface, TensorSpec


@dataclass(frozen=True)
class FireUpscalerParams:
    resolution: int = 128
    out_resolution: int = 768
    width: int = 32

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
    description="small upscaler: bilinear base + low-resolution residual via depth-to-space",
)
class FireUpscaler(Stage):
    kind = "upscaler"
    Params = FireUpscalerParams

    def __init__(self, params: FireUpscalerParams):
        super().__init__(params)
        c, s = params.width, params.scale
        self.body = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(),
        )
        self.subpixels = nn.Conv2d(16 + 3, 3 * s * s, 1)
        with torch.no_grad():  # input channel k -> sub-pixel channels k*s*s .. (k+1)*s*s - 1
            self.subpixels.weight[:, 16:].zero_()
            for k in range(3):
                self.subpixels.weight[k * s * s:(k + 1) * s * s, 16 + k] = 1.0
        self.shuffle = nn.PixelShuffle(s)

    def interface(self) -> StageInterface:
        p = self.params
        return StageInterface(
            inputs=(TensorSpec("image", (BATCH, 3, p.resolution, p.resolution), Role.IMAGE,
                               value_range=(0.0, 1.0)),),
            outputs=(TensorSpec("upscaled", (BATCH, 3, p.out_resolution, p.out_resolution),
                                Role.IMAGE, value_range=(0.0, 1.0)),),
            scale=p.scale,
        )

    def forward(self, image):
        x = self.subpixels(torch.cat([self.body(image), image], dim=1))
        return (self.shuffle(x).clamp(0.0, 1.0),)
