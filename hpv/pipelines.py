"""Named pipelines: a generator, an optional refiner run k <= K times, an upscaler and part stages
stitched in after it, with the build parameters of each and the pipeline's K. The default pipeline
is what `hpv-compile` builds when no stage is given."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hpv.registry import Registry


@dataclass(frozen=True)
class StageRef:
    stage: str
    params: dict[str, Any] = field(default_factory=dict)

    def build_params(self):
        from hpv.stages import STAGES

        return STAGES.get(self.stage).params(**self.params)


@dataclass(frozen=True)
class PartStep:
    """A part generator and the parts (`hpv.parts.PARTS` names) it draws: each part's crop of the
    upscaled frame goes through `stage` and is stitched back (`hpv.runtime.parts.PartsStep`)."""

    stage: StageRef
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Pipeline:
    name: str
    generator: StageRef
    upscaler: StageRef
    refiner: StageRef | None = None
    description: str = ""
    # Refinement steps the pipeline runs at most (None: all the refiner was built for). Steps that
    # do not earn their cost are cut here: each step must raise person PSNR by >= 0.1 dB.
    steps: int | None = None
    # Part generators run after the upscaler, in this order (their layers are blended back to front
    # by `hpv.runtime.stitch.layer_order`, not by this order).
    parts: tuple[PartStep, ...] = ()

    @property
    def stages(self) -> tuple[StageRef, ...]:
        return tuple(s for s in (self.generator, self.refiner, self.upscaler, *(p.stage for p in self.parts))
                     if s is not None)

    @property
    def part_stages(self) -> dict[str, str]:
        """Part name -> the stage that draws it."""
        return {name: p.stage.stage for p in self.parts for name in p.parts}

    @property
    def max_steps(self) -> int:
        if self.refiner is None:
            return 0
        built = self.refiner.build_params().max_steps
        return built if self.steps is None else min(built, self.steps)

    def ref(self, stage: str) -> StageRef | None:
        return next((s for s in self.stages if s.stage == stage), None)


PIPELINES: Registry[Pipeline] = Registry("pipeline")
DEFAULT_PIPELINE = "default"

_BODY = Pipeline(
    "body",
    generator=StageRef("fire_gen", {"resolution": 128}),
    refiner=StageRef("refiner", {"resolution": 128, "max_steps": 2}),
    # Width 16: its body's three 3x3 convs at 128x128 were a third of a frame's MACs at width 24.
    upscaler=StageRef("fire_upscaler", {"resolution": 128, "out_resolution": 768, "width": 16}),
    # The refiner was trained for 2 steps; the second gained +0.04 dB person PSNR on the test
    # split (bench/quality.py), under the 0.1 dB a step must earn, so the pipeline runs one.
    steps=1,
    description="keypoints -> Fire generator at 128x128 + 1 refinement step + upscaler to 768x768 "
                "(the default's whole-body frame, without the parts)",
)
# The default draws the hands and the face apart: in the 128x128 whole-body frame a hand is about
# 20 pixels across, and no generator draws five fingers there (hand-box PSNR 21.0 dB without the
# parts, 23.6 with them, bench/quality.py). The scheduler drops the parts first where time is short.
PIPELINES.add("default", dataclasses.replace(
    _BODY, name="default",
    parts=(PartStep(StageRef("hand_gen", {"resolution": 64, "width": 32}), ("left_hand", "right_hand")),
           # The face at 96: a perfect 64x64 face crop reaches only 26.9 dB in the face's box at
           # 768, a 96x96 one 29.5 (bench/parts_ceiling.py); the hands' 64 reach 29.2.
           PartStep(StageRef("face_gen", {"resolution": 96}), ("face",))),
    description="the body pipeline's frame, then both hands (64x64) and the face (96x96) drawn apart and stitched "
                "at 768x768",
))
PIPELINES.add("body", _BODY)
PIPELINES.add("mobile64", Pipeline(
    "mobile64",
    generator=StageRef("fire_gen", {"resolution": 64}),
    refiner=StageRef("refiner", {"resolution": 64, "max_steps": 2}),
    upscaler=StageRef("fire_upscaler", {"resolution": 64, "out_resolution": 512}),
    steps=1,
    description="keypoints -> Fire generator at 64x64 + 1 refinement step + upscaler to 512x512",
))
PIPELINES.add("baseline", Pipeline(
    "baseline",
    generator=StageRef("pix2pix_lstm", {"resolution": 256}),
    upscaler=StageRef("espcn_x3", {"resolution": 256}),
    description="today's viewer: pix2pix U-Net + LSTM at 256x256, ESPCN x3 to 768x768",
))
