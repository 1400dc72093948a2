"""The small generator: keypoints in, drawn as part fields inside the graph (`KeypointRaster`),
then a SqueezeNet-style (Fire modules) U-Net at low resolution with a convolutional GRU at 1/8
resolution as its recurrent state (32 KB at 128x128 in fp32). The fields are also an output: the
refiner and the upscaler take them, so the pose is drawn once per frame."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hpv.stages.base import Stage, check_positive, check_resolution, register_stage
from hpv.pose.fields import NUM_FIELDS
from hpv.stages.blocks import ConvGRUCell, Fire, UpFire, conv_relu
from hpv.stages.interface import BATCH, Role, StageInterface, StateBinding, TensorSpec, fields_spec, keypoints_spec
from hpv.stages.raster import KeypointRaster


@dataclass(frozen=True)
class FireGenParams:
    resolution: int = 128  # 64 or 128 on phones
    width: int = 24  # channels at full resolution; x2, x4, x6 at 1/2, 1/4, 1/8
    state: int = 32  # GRU channels at 1/8 resolution

    def __post_init__(self):
        check_positive("fire_gen", resolution=self.resolution, width=self.width, state=self.state)
        check_resolution("fire_gen", self.resolution, 8)


@register_stage(
    "fire_gen",
    small={"resolution": 32, "width": 8, "state": 8},
    description="small generator: keypoints -> in-graph part fields -> Fire-module U-Net + ConvGRU state at 1/8 resolution",
)
class FireGenerator(Stage):
    kind = "generator"
    Params = FireGenParams

    def __init__(self, params: FireGenParams):
        super().__init__(params)
        c, s = params.width, params.state
        self.raster = KeypointRaster(params.resolution)
        self.stem = conv_relu(NUM_FIELDS, c)
        self.down1 = torch.nn.Sequential(conv_relu(c, 2 * c, 2), Fire(2 * c, 2 * c))
        self.down2 = torch.nn.Sequential(conv_relu(2 * c, 4 * c, 2), Fire(4 * c, 4 * c))
        self.down3 = torch.nn.Sequential(conv_relu(4 * c, 6 * c, 2), Fire(6 * c, 6 * c))
        self.gru = ConvGRUCell(6 * c, s)
        self.mix = Fire(6 * c + s, 6 * c)
        self.up3 = UpFire(6 * c, 4 * c, 4 * c)
        self.up2 = UpFire(4 * c, 2 * c, 2 * c)
        self.up1 = UpFire(2 * c, c, c)
        self.head = torch.nn.Conv2d(c, 3, 3, padding=1)

    def interface(self) -> StageInterface:
        r, s = self.params.resolution, self.params.state
        return StageInterface(
            inputs=(
                keypoints_spec(),
                TensorSpec("h_in", (BATCH, s, r // 8, r // 8), Role.STATE),
            ),
            outputs=(
                TensorSpec("image", (BATCH, 3, r, r), Role.IMAGE),
                TensorSpec("h_out", (BATCH, s, r // 8, r // 8), Role.STATE),
                fields_spec(r),
            ),
            state=(StateBinding("h_in", "h_out"),),
        )

    def forward(self, keypoints, h_in):
        fields = self.raster(keypoints)
        x0 = self.stem(fields)
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        h = self.gru(x3, h_in)
        x = self.mix(torch.cat([x3, h], dim=1))
        x = self.up3(x, x2)
        x = self.up2(x, x1)
        x = self.up1(x, x0)
        return torch.tanh(self.head(x)), h, fields
