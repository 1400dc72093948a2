"""Named pipelines: a generator, an optional refiner run k times, and an upscaler, with the
build parameters of each. The default pipeline is what `hpv-compile` builds when no stage is given."""

from __future__ import annotations

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
class Pipeline:
    name: str
    generator: StageRef
    upscaler: StageRef
    refiner: StageRef | None = None
    description: str = ""

    @property
    def stages(self) -> tuple[StageRef, ...]:
        return tuple(s for s in (self.generator, self.refiner, self.upscaler) if s is not None)

    @property
    def max_steps(self) -> int:
        return self.refiner.build_params().max_steps if self.refiner else 0

    def ref(self, stage: str) -> StageRef | None:
        return next((s for s in self.stages if s.stage == stage), None)


PIPELINES: Registry[Pipeline] = Registry("pipeline")
DEFAULT_PIPELINE = "default"

PIPELINES.add("default", Pipeline(
    "default",
    generator=StageRef("fire_gen", {"resolution": 128}),
    refiner=StageRef("refiner", {"resolution": 128, "max_steps": 2}),
    upscaler=StageRef("fire_upscaler", {"resolution": 128, "out_resolution": 768}),
    description="Fire generator at 128x128 + up to 2 refinement steps + upscaler to 768x768",
))
PIPELINES.add("mobile64", Pipeline(
    "mobile64",
    generator=StageRef("fire_gen", {"resolution": 64}),
    refiner=StageRef("refiner", {"resolution": 64, "max_steps": 2}),
    upscaler=StageRef("fire_upscaler", {"resolution": 64, "out_resolution": 512}),
    description="Fire generator at 64x64 + up to 2 refinement steps + upscaler to 512x512",
))
PIPELINES.add("baseline", Pipeline(
    "baseline",
    generator=StageRef("pix2pix_lstm", {"resolution": 256}),
    upscaler=StageRef("espcn_x3", {"resolution": 256}),
    description="today's viewer: pix2pix U-Net + LSTM at 256x256, ESPCN x3 to 768x768",
))
