"""Today's generator: the pix2pix U-Net with an LSTM over its 1x1 bottleneck (the baseline)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from hpv.errors import ConfigError
from hpv.stages.base import Stage, check_positive, register_stage
from hpv.stages.blocks import LSTMCell
from hpv.stages.interface import BATCH, Role, StageInterface, StateBinding, TensorSpec


@dataclass(frozen=True)
class Pix2PixParams:
    resolution: int = 256  # 8 down blocks to 1x1 at 256
    ngf: int = 64

    def __post_init__(self):
        check_positive("pix2pix_lstm", resolution=self.resolution, ngf=self.ngf)
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise ConfigError(f"pix2pix_lstm: resolution must be a power of two >= 8, got {self.resolution}")

    @property
    def depth(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def bottleneck(self) -> int:
        return self.ngf * 8


@register_stage(
    "pix2pix_lstm",
    small={"resolution": 32, "ngf": 8},
    description="baseline: pix2pix U-Net (8 down / 7 up at 256) + LSTM(512) at the bottleneck",
)
class Pix2PixLSTM(Stage):
    kind = "generator"
    Params = Pix2PixParams

    def __init__(self, params: Pix2PixParams):
        super().__init__(params)
        n, ngf = params.depth, params.ngf
        chans = [ngf * min(2**i, 8) for i in range(n)]  # 64,128,256,512,512,512,512,512
        self.down = nn.ModuleList()
        for i, out in enumerate(chans):
            inp = 3 if i == 0 else chans[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(inp, out, 4, stride=2, padding=1, bias=False))
            if 0 < i < n - 1:  # no norm on the outermost and innermost convs (as pix2pix)
                layers.append(nn.BatchNorm2d(out))
            self.down.append(nn.Sequential(*layers))
        self.lstm = LSTMCell(params.bottleneck, params.bottleneck)
        self.up = nn.ModuleList()
        for i in reversed(range(n)):  # mirror of down; input doubles from the skip, except innermost
            inp = chans[i] if i == n - 1 else chans[i] * 2
            out = 3 if i == 0 else chans[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(inp, out, 4, stride=2, padding=1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(out))
                if i >= n - 3:
                    layers.append(nn.Dropout(0.5))  # identity in eval; kept for trained parity
            else:
                layers.append(nn.Tanh())
            self.up.append(nn.Sequential(*layers))

    def interface(self) -> StageInterface:
        r, b = self.params.resolution, self.params.bottleneck
        return StageInterface(
            inputs=(
                TensorSpec("pose", (BATCH, 3, r, r), Role.POSE),
                TensorSpec("h_in", (BATCH, b), Role.STATE, layout="NC"),
                TensorSpec("c_in", (BATCH, b), Role.STATE, layout="NC", value_range=None),
            ),
            outputs=(
                TensorSpec("image", (BATCH, 3, r, r), Role.IMAGE),
                TensorSpec("h_out", (BATCH, b), Role.STATE, layout="NC"),
                TensorSpec("c_out", (BATCH, b), Role.STATE, layout="NC", value_range=None),
            ),
            state=(StateBinding("h_in", "h_out"), StateBinding("c_in", "c_out")),
        )

    def forward(self, pose, h_in, c_in):
        skips = []
        x = pose
        for block in self.down:
            x = block(x)
            skips.append(x)
        h, c = self.lstm(x.flatten(1), h_in, c_in)
        x = x + h.reshape(x.shape)
        for i, block in enumerate(self.up):
            if i > 0:
                x = torch.cat([x, skips[-1 - i]], dim=1)
            x = block(x)
        return x, h, c
