"""Calibration and held-out data for a stage: rendered poses run through the reference pipeline,
so every stage sees what the stages before it really produce, with recurrent state rolled out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpv.pose.conditioning import conditioning
from hpv.reference import LoadedPipeline, conditioning_keys, rollout

CALIBRATION_SEED = 1
HELDOUT_SEED = 2


@dataclass(frozen=True)
class PoseSource:
    """Where poses come from: a `.pose` file, or the seeded synthetic generator."""

    path: Path | None = None
    seed: int = CALIBRATION_SEED
    frames: int = 24

    def describe(self) -> str:
        return str(self.path) if self.path else f"synthetic seed {self.seed}, {self.frames} frames"

    def rendered(self, keys: list) -> dict:
        """The model inputs for each conditioning key (see `hpv.reference.conditioning_keys`)."""
        from hpv.pose import default_sequence, load_sequence

        if self.path is not None:
            seq = load_sequence(self.path)
            seq = seq.frames(0, min(seq.num_frames, self.frames))
        else:
            seq = default_sequence(num_frames=self.frames, seed=self.seed)
        return conditioning(seq, keys)


@dataclass
class StageData:
    """Inputs of every stage, per frame in sequence order (state inputs of recurrent stages are
    included as the reference carried them)."""

    source: str
    inputs: dict[str, list[dict[str, np.ndarray]]]


def stage_data(lp: LoadedPipeline, source: PoseSource) -> StageData:
    poses = source.rendered(conditioning_keys(lp))
    return StageData(source.describe(), rollout(lp, poses).inputs)
