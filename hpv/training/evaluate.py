"""Quality of a whole pipeline on held-out sequences: the PyTorch reference run frame by frame
(state carried, k refinement steps) against the ground truth at the output resolution."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hpv.metrics import evaluate_sequence
from hpv.reference import LoadedPipeline, conditioning_keys, rollout
from hpv.training.data import Sequence


@dataclass(frozen=True)
class PipelineQuality:
    pipeline: str
    steps: int
    psnr_db: float
    ssim: float
    flicker: float
    frames: int

    def to_json(self) -> dict:
        return asdict(self)


def evaluate_pipeline(lp: LoadedPipeline, seqs: list[Sequence], steps: int) -> PipelineQuality:
    """Frame-weighted mean of per-sequence PSNR / SSIM / flicker at the pipeline's output size."""
    from hpv.pose import to_model_input

    out_res = int(lp.upscaler.interface().output("upscaled").shape[-1])
    rows, weights = [], []
    for s in seqs:
        if out_res not in s.target:
            raise ValueError(f"sequence {s.id} has no {out_res}x{out_res} ground truth")
        poses = {r: to_model_input(s.pose[r]) for r in pose_resolutions(lp)}
        pred = np.stack(rollout(lp, poses, steps=steps).frames)
        target = s.target[out_res].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        rows.append(evaluate_sequence(pred, target, 1.0))
        weights.append(len(pred))
    w = np.asarray(weights, float)
    mean = lambda field: float(np.average([getattr(r, field) for r in rows], weights=w))  # noqa: E731
    return PipelineQuality(lp.pipeline.name, steps, mean("psnr_db"), mean("ssim"), mean("flicker"), int(w.sum()))
