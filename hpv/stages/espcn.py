"""Today's upscaler: ESPCN, 256 -> 768 by depth-to-space x3."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from hpv.stages.base import Stage, check_positive, register_stage
from hpv.stages.interface import BATCH, Role, StageInterface, TensorSpec


@dataclass(frozen=True)
class ESPCNParams:
    resolution: int = 256
    scale: int = 3

    def __post_init__(self):
        check_positive("espcn_x3", resolution=self.resolution, scale=self.scale)


@register_stage(
    "espcn_x3",
    small={"resolution": 32},
    description="baseline upscaler: ESPCN 5x5-64, 3x3-64, 3x3-32, 3x3-27, depth-to-space x3",
)
class ESPCN(Stage):
    kind = "upscaler"
    Params = ESPCNParams

    def __init__(self, params: ESPCNParams):
        super().__init__(params)
        s = params.scale
        self.body = nn.Sequential(
            nn.Conv2d(3, 64, 5, padding=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 3 * s * s, 3, padding=1),
            nn.PixelShuffle(s),
        )

    def interface(self) -> StageInterface:
        r, o = self.params.resolution, self.params.resolution * self.params.scale
        return StageInterface(
            inputs=(TensorSpec("image", (BATCH, 3, r, r), Role.IMAGE, value_range=(0.0, 1.0)),),
            outputs=(TensorSpec("upscaled", (BATCH, 3, o, o), Role.IMAGE, value_range=(0.0, 1.0)),),
            scale=self.params.scale,
        )

    def forward(self, image):
        return (self.body(image).clamp(0.0, 1.0),)
