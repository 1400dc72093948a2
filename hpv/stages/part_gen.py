"""The part generators (issue 14): a hand or the face drawn apart in a small square crop (in the
default pipeline 64x64 a hand, 96x96 the face), then stitched into the whole-body frame at the
output resolution (`hpv.runtime.stitch`).

Inputs: the frame's keypoints in the crop's own 512 frame (`hpv.parts.PartBox.model_keypoints`: a
mirrored left hand arrives as a right hand, so one set of hand weights draws both), rasterized in
the graph at the crop's resolution by `KeypointRaster` with the part's field groups
(`hpv.pose.fields.HAND_CROP_GROUPS` / `FACE_CROP_GROUPS`); and `context`, the pipeline's output frame
sampled into the crop (what lies under the part: its colours, the sleeve, the face behind a hand).
Outputs: `color`, the context plus a learned residual, and a soft `alpha`, zero at the crop's edge
by a fixed taper, so the stitch leaves no seam where the crop ends. No recurrent state: the crop
box is smoothed over time (`hpv.parts.BoxTracker`) and the context comes from the pipeline's
temporally consistent frame."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hpv.pose.fields import FACE_CROP_GROUPS, HAND_CROP_GROUPS, FieldGroup
from hpv.stages.base import Stage, check_positive, check_resolution, register_stage
from hpv.stages.blocks import Fire, UpFire, conv_relu
from hpv.stages.interface import BATCH, Role, StageInterface, TensorSpec, keypoints_spec
from hpv.stages.raster import KeypointRaster

EDGE_TAPER = 4  # crop pixels over which alpha falls to 0 at the crop's edge (at 64; scaled with it)


@dataclass(frozen=True)
class PartGenParams:
    resolution: int = 64
    width: int = 16

    def __post_init__(self):
        check_positive("part generator", resolution=self.resolution, width=self.width)
        check_resolution("part generator", self.resolution, 4)


def edge_window(resolution: int) -> torch.Tensor:
    """[1, 1, R, R]: 1 inside, falling linearly to 0 over the outer EDGE_TAPER x R / 64 pixels."""
    band = max(1.0, EDGE_TAPER * resolution / 64)
    i = torch.arange(resolution, dtype=torch.float32) + 0.5
    w = torch.clamp(torch.minimum(i, resolution - i) / band, 0.0, 1.0)
    return (w[:, None] * w[None, :])[None, None]


class PartGen(Stage):
    kind = "part"
    Params = PartGenParams
    groups: tuple[FieldGroup, ...] = ()
    part_names: tuple[str, ...] = ()  # the parts (hpv.parts.PARTS) this stage draws
    int8_first_layer = True  # its stem feeds only the residual and alpha; the context's skip stays float

    def __init__(self, params: PartGenParams):
        super().__init__(params)
        c, r = params.width, params.resolution
        self.raster = KeypointRaster(r, self.groups)
        self.stem = conv_relu(self.raster.channels + 3, c)
        self.down1 = nn.Sequential(conv_relu(c, 2 * c, 2), Fire(2 * c, 2 * c))
        self.down2 = nn.Sequential(conv_relu(2 * c, 4 * c, 2), Fire(4 * c, 4 * c))
        self.mid = Fire(4 * c, 4 * c)
        self.up2 = UpFire(4 * c, 2 * c, 2 * c)
        self.up1 = UpFire(2 * c, c, c)
        self.head = nn.Conv2d(c, 4, 3, padding=1)
        with torch.no_grad():  # start as the context, half blended
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
        self.register_buffer("window", edge_window(r), persistent=False)

    def interface(self) -> StageInterface:
        r = self.params.resolution
        return StageInterface(
            inputs=(keypoints_spec(), TensorSpec("context", (BATCH, 3, r, r), Role.IMAGE, value_range=(0.0, 1.0))),
            outputs=(TensorSpec("color", (BATCH, 3, r, r), Role.IMAGE, value_range=(0.0, 1.0)),
                     TensorSpec("alpha", (BATCH, 1, r, r), Role.IMAGE, value_range=(0.0, 1.0))),
            notes=(f"keypoints are in the crop's own 512 frame (hpv.parts.PartBox.model_keypoints); "
                   f"draws {', '.join(self.part_names)}",),
        )

    def forward(self, keypoints, context):
        fields = self.raster(keypoints)
        x0 = self.stem(torch.cat([fields, context], dim=1))
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        x = self.up2(self.mid(x2), x1)
        x = self.up1(x, x0)
        out = self.head(x)
        color = (context + out[:, :3]).clamp(0.0, 1.0)
        alpha = torch.sigmoid(out[:, 3:]) * self.window
        return color, alpha


@register_stage("hand_gen", small={"resolution": 16, "width": 8},
                description="hand generator at 64x64: one set of weights for both hands (the left mirrored), colour + alpha")
class HandGen(PartGen):
    groups = HAND_CROP_GROUPS
    part_names = ("left_hand", "right_hand")


@register_stage("face_gen", small={"resolution": 16, "width": 8},
                description="face generator (96x96 in the default pipeline): the face's contours and the hands in front of it, colour + alpha")
class FaceGen(PartGen):
    groups = FACE_CROP_GROUPS
    part_names = ("face",)
