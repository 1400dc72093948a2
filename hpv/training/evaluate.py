"""Quality of a whole pipeline on held-out sequences: the PyTorch reference run frame by frame
(state carried, k refinement steps) against the ground truth at the output resolution, scored on
what a viewer sees (`hpv.metrics.LooksAccumulator`: silhouette, person, hands, face, flicker)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpv.metrics import LooksAccumulator, LooksMetrics
from hpv.pose.sequence import PoseSequence
from hpv.reference import LoadedPipeline, conditioning_keys, rollout


def looks_db(person_psnr_db: float, hand_psnr_db: float) -> float:
    """The one figure the scheduler ranks by: the mean of person and hand-box PSNR (dB). The green
    background, which every model gets right, does not enter it; the hands weigh as much as the
    whole person, because sign language lives in them."""
    if not np.isfinite(hand_psnr_db):
        return float(person_psnr_db)
    return 0.5 * (float(person_psnr_db) + float(hand_psnr_db))


@dataclass(frozen=True)
class EvalCase:
    """One held-out sequence: its poses and ground truth frames [T,3,H,W] in [0,1]."""

    id: str
    seq: PoseSequence
    target: np.ndarray
    keypoints: np.ndarray


@dataclass(frozen=True)
class PipelineQuality:
    pipeline: str
    steps: int
    looks: LooksMetrics

    @property
    def looks_db(self) -> float:
        return looks_db(self.looks.person_psnr_db, self.looks.hand_psnr_db)

    def to_json(self) -> dict:
        return {"pipeline": self.pipeline, "steps": self.steps, "looks_db": round(self.looks_db, 3),
                **self.looks.to_json()}


def eval_cases(cfg, split: str, sequences: int, frames: int, resolution: int) -> list[EvalCase]:
    """`sequences` held-out sequences of the data config's `split` (the same split training used),
    their first `frames` frames, with ground truth drawn at `resolution`. Synthetic sequences (one
    per arm style: rest with the hands below the frame, at the face, crossing, wide) alternate with
    real ones, so the set covers the poses users send."""
    from hpv.data.signer import render_signer
    from hpv.pose.keypoints import keypoints
    from hpv.training.data import assign_splits, pose_sequences

    seqs = pose_sequences(cfg)
    splits = assign_splits([i for i, _ in seqs])
    held = sorted(((i, s) for i, s in seqs if splits[i] == split), key=lambda x: x[0])
    style_order = ("rest", "face", "cross", "wide", "mixed", "sign")

    def style_rank(sid: str) -> tuple:
        style = sid.split("#")[0].rsplit("/", 1)[-1]
        return ("#" in sid, style_order.index(style) if style in style_order else len(style_order), sid)

    synthetic = sorted((x for x in held if x[0].startswith("synthetic/")), key=lambda x: style_rank(x[0]))
    other = [x for x in held if not x[0].startswith("synthetic/")]
    picked = []
    while (synthetic or other) and len(picked) < sequences:
        for pool in (synthetic, other):
            if pool and len(picked) < sequences:
                picked.append(pool.pop(0))
    cases = []
    for sid, s in picked:
        s = s.frames(0, min(frames, s.num_frames))
        target = render_signer(s, resolution).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        cases.append(EvalCase(sid, s, target, keypoints(s)))
    return cases


def poses_of(seq: PoseSequence, keys) -> dict:
    """`seq`'s conditioning for `keys`, with the keypoints' depth (the stitched hands' order)."""
    from hpv.pose.conditioning import DEPTH, conditioning
    from hpv.pose.keypoints import depth

    return {**conditioning(seq, keys), DEPTH: depth(seq)}


def pipeline_frames(lp: LoadedPipeline, seq: PoseSequence, steps: int, parts: bool = True) -> np.ndarray:
    """The PyTorch pipeline's output frames [T,3,H,W] for `seq` at k = `steps` (its part stages
    stitched in, if it has them and `parts`)."""
    return np.stack(rollout(lp, poses_of(seq, conditioning_keys(lp)), steps=steps, fps=seq.fps,
                            with_parts=parts).frames)


def bicubic_frames(lp: LoadedPipeline, seq: PoseSequence, steps: int) -> np.ndarray:
    """The pipeline with its upscaler replaced by bicubic interpolation of the upscaler's own input:
    the bar the upscaler has to clear."""
    import torch
    import torch.nn.functional as F

    from hpv.pose.conditioning import conditioning

    r = rollout(lp, conditioning(seq, conditioning_keys(lp)), steps=steps)
    out_res = int(lp.upscaler.interface().outputs[0].shape[-1])
    low = torch.from_numpy(np.concatenate([d["image"] for d in r.inputs[lp.upscaler.name]]))
    return F.interpolate(low, size=(out_res, out_res), mode="bicubic", align_corners=False).clamp(0, 1).numpy()


def build_frames(pipe, seq: PoseSequence, steps: int, parts: bool = True) -> np.ndarray:
    """A compiled build's output frames [T,3,H,W] for `seq` at k = `steps` (a fresh state, its part
    stages stitched in if it has them and `parts`); `pipe` is a batch-1
    `hpv.runtime.pipeline.CompiledPipeline`."""
    cond = poses_of(seq, pipe.conditioning_keys)
    pipe.reset(fps=seq.fps)
    lo, hi = pipe.upscaler.output("upscaled").value_range or (0.0, 1.0)
    return np.stack([(pipe.frame({k: v[t:t + 1] for k, v in cond.items()}, steps, parts=parts)[0] - lo) / (hi - lo)
                     for t in range(seq.num_frames)])


def evaluate_frames(name: str, steps: int, cases: list[EvalCase], frames_of,
                    keep: dict[str, dict[int, np.ndarray | None]] | None = None) -> PipelineQuality:
    """Looks figures pooled over `cases`, `frames_of(seq)` giving the output frames [T,3,H,W].
    keep: case id -> {frame index: None}; the frames asked for are filled in (for a strip)."""
    acc = LooksAccumulator()
    for c in cases:
        pred = frames_of(c.seq)
        if pred.shape != c.target.shape:
            raise ValueError(f"case {c.id}: {name} made {pred.shape}, the ground truth is {c.target.shape}")
        acc.add(pred, c.target, c.keypoints)
        for t in (keep or {}).get(c.id, {}):
            keep[c.id][t] = pred[t]
    return PipelineQuality(name, steps, acc.result())


def evaluate_pipeline(lp: LoadedPipeline, cases: list[EvalCase], steps: int,
                      keep: dict[str, dict[int, np.ndarray | None]] | None = None) -> PipelineQuality:
    """Looks figures of the PyTorch pipeline (see `evaluate_frames`)."""
    return evaluate_frames(lp.pipeline.name, steps, cases, lambda seq: pipeline_frames(lp, seq, steps), keep)
