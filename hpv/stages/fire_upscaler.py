"""The small upscaler: low resolution (64/128) -> 512/768. Every layer but the last runs at the low
resolution; one stride-s transposed convolution (kernel s, so the sub-pixel blocks do not overlap)
paints each input pixel's s x s block of the output. It sums two parts: a fixed-start bilinear base,
read from each input pixel's 3x3 neighbourhood (so the base is smooth, not blocky, without a Resize,
whose sampling conventions differ between runtimes), and a residual from features of the image and
of the generator's keypoint fields at the low resolution (they carry sub-pixel positions of edges and
fingers). The full-resolution graph is just ConvTranspose + Clip: the same function as a 1x1 conv to
3*s*s channels and a depth-to-space, without the depth-to-space, which ONNX Runtime runs slowly in
channel-first layout (bench/upscaler_tail.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
    description="small upscaler: bilinear base + residual from image and keypoint fields, one stride-s transposed conv",
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
            nn.Conv2d(c, FEATURES, 3, padding=1), nn.ReLU(),
        )
        # Fixed: each image channel's 3x3 neighbourhood as 9 channels, plus a constant-1 channel
        # (zero weights, bias 1) that carries the per-sub-pixel bias into the transposed conv.
        neighbour = torch.zeros(NEIGHBOURS, 3, 3, 3)
        for ch in range(3):
            for n in range(9):
                neighbour[ch * 9 + n, ch, n // 3, n % 3] = 1.0
        bias = torch.zeros(NEIGHBOURS)
        bias[-1] = 1.0
        self.register_buffer("neighbour_weight", neighbour, persistent=False)
        self.register_buffer("neighbour_bias", bias, persistent=False)
        self.out = nn.ConvTranspose2d(FEATURES + NEIGHBOURS, 3, s, stride=s, bias=False)
        with torch.no_grad():
            self.out.weight.copy_(transposed_weight(torch.randn(3 * s * s, FEATURES) * 0.1 / FEATURES**0.5,
                                                    torch.zeros(3 * s * s),
                                                    bilinear_subpixel_kernel(s).repeat(3, 1, 1, 1), s))

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
        neighbours = F.conv2d(image, self.neighbour_weight, self.neighbour_bias, padding=1)
        return (self.out(torch.cat([features, neighbours], dim=1)).clamp(0.0, 1.0),)

    def upgrade_state(self, state: dict, prefix: str) -> None:
        """Weights of the earlier layout (a 1x1 `residual` conv and a grouped 3x3 `base` conv to
        3*s*s channels, then a pixel shuffle) become the transposed conv's weight, exactly."""
        keys = [prefix + k for k in ("residual.weight", "residual.bias", "base.weight")]
        if all(k in state for k in keys) and prefix + "out.weight" not in state:
            w, b, base = (state.pop(k) for k in keys)
            state[prefix + "out.weight"] = transposed_weight(w.flatten(1), b, base, self.params.scale)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.upgrade_state(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


FEATURES = 16  # body channels the residual reads
NEIGHBOURS = 3 * 9 + 1  # each colour's 3x3 neighbourhood, and the constant channel


def transposed_weight(residual: torch.Tensor, bias: torch.Tensor, base: torch.Tensor, s: int) -> torch.Tensor:
    """[FEATURES + NEIGHBOURS, 3, s, s] ConvTranspose2d weight equal to `PixelShuffle(s)` of
    `residual @ features + bias + base * image` (sub-pixel channel c*s*s + i*s + j, as PixelShuffle
    orders them). residual: [3*s*s, FEATURES]; bias: [3*s*s]; base: [3*s*s, 1, 3, 3], grouped per colour."""
    w = torch.zeros(FEATURES + NEIGHBOURS, 3, s, s, dtype=residual.dtype)
    sub = residual.reshape(3, s, s, FEATURES)
    w[:FEATURES] = sub.permute(3, 0, 1, 2)
    w[-1] = bias.reshape(3, s, s)
    taps = base.reshape(3, s, s, 9)  # colour, i, j, neighbour
    for ch in range(3):
        w[FEATURES + ch * 9: FEATURES + ch * 9 + 9, ch] = taps[ch].permute(2, 0, 1)
    return w


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
