"""Training the part generators (issue 14) on real and predicted data: crops of the output-resolution
ground truth (the target) and of what the real pipeline draws there (the `context` input), cut by the
same tracked boxes and the same sampling the runtime uses (`hpv.runtime.parts.PartsStep`).

The loss is taken on the stitched result inside the crop, alpha x colour + (1 - alpha) x context,
against the ground truth's crop: alpha grows where the part generator beats what the pipeline
already drew, and the fixed edge taper keeps it 0 at the crop's border; with
`LossConfig.colour_weight`, also on the colour alone, so the colour learns where alpha is low."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hpv.metrics import psnr
from hpv.reference import LoadedPipeline, conditioning_keys, part_sizes, rollout
from hpv.stages import Stage
from hpv.training.config import Budget, DataConfig, LossConfig
from hpv.training.loop import Phase
from hpv.training.losses import clip_and_step, hand_weight, image_loss, scheduled_lr

VAL_CROPS = 512  # validation crops per part stage scored at each evaluation
CACHE_VERSION = 3  # 2: hands behind the body are left out, as the runtime leaves them; 3: crop sizes in the key


@dataclass
class PartCrops:
    """One part stage's training crops: keypoints [N, 178, 3] (crop frame), context and target
    [N, 3, S, S] uint8."""

    keypoints: np.ndarray
    context: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.keypoints)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def sequences_for(cfg: DataConfig, split: str, limit: int) -> list:
    """(id, PoseSequence) of `split` (the training data's own split by sequence), at most `limit`."""
    from hpv.training.data import assign_splits, pose_sequences

    seqs = pose_sequences(cfg)
    splits = assign_splits([i for i, _ in seqs])
    return [x for x in seqs if splits[x[0]] == split][:limit]


def part_crops(lp: LoadedPipeline, seqs: list, steps: int, progress=None) -> dict[str, PartCrops]:
    """Crops for each part stage of `lp` from sequences `seqs`, the pipeline run at k = `steps`
    without its parts (what the part stages are stitched over)."""
    from hpv.data.signer import render_signer
    from hpv.pose.conditioning import conditioning
    from hpv.pose.keypoints import depth, keypoints
    from hpv.runtime.parts import PartsStep
    from hpv.runtime.stitch import sample_crop

    keys = conditioning_keys(lp)
    sizes = part_sizes(lp)
    got: dict[str, list[tuple]] = {p.stage.stage: [] for p in lp.pipeline.parts}
    for n, (_sid, seq) in enumerate(seqs):
        frames = rollout(lp, conditioning(seq, keys), steps=steps, with_parts=False).frames
        truth = render_signer(seq, frames[0].shape[-1])
        kp, z = keypoints(seq), depth(seq)
        step = PartsStep(lp.pipeline.part_stages, sizes, seq.fps)
        for t, frame in enumerate(frames):
            gt = truth[t].transpose(2, 0, 1).astype(np.float32) / 255.0
            for call in step.crops(kp[t], frame, z[t]):
                got[call.stage].append((call.feeds["keypoints"][0], _u8(call.feeds["context"][0]),
                                        _u8(sample_crop(gt, call.transform))))
        if progress:
            progress(n + 1, len(seqs))
    out = {}
    for stage, items in got.items():
        if not items:
            raise ValueError(f"no crops for {stage}: none of {len(seqs)} sequences shows its parts")
        k, c, y = zip(*items)
        out[stage] = PartCrops(np.stack(k), np.stack(c), np.stack(y))
    return out


def cached_part_crops(lp: LoadedPipeline, cfg: DataConfig, split: str, limit: int, steps: int, cache_dir: Path,
                      progress=None) -> dict[str, PartCrops]:
    """`part_crops` of the split's first `limit` sequences, cached in `cache_dir` by the data config,
    the split, the step count and the weights of the whole-frame stages (what the crops are cut from;
    the part stages' own weights do not change them)."""
    parts = {p.stage.stage for p in lp.pipeline.parts}
    weights = {s: w for s, w in lp.weights.items() if s not in parts}
    key = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "cfg": asdict(cfg), "split": split, "limit": limit,
                                     "steps": steps, "weights": weights, "sizes": part_sizes(lp)},
                                    sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"parts-{split}-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            stages = sorted({k.split("/")[0] for k in z.files})
            return {s: PartCrops(z[f"{s}/keypoints"], z[f"{s}/context"], z[f"{s}/target"]) for s in stages}
    crops = part_crops(lp, sequences_for(cfg, split, limit), steps, progress)
    import io

    from hpv.atomic import write_bytes

    buf = io.BytesIO()
    np.savez(buf, **{f"{s}/{field}": getattr(c, field) for s, c in crops.items()
                     for field in ("keypoints", "context", "target")})
    write_bytes(path, buf.getvalue())
    return crops


def _unit(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(u8)).float().div(255.0)


def composite(stage: Stage, keypoints: torch.Tensor, context: torch.Tensor, with_colour: bool = False):
    """The stitched result inside the crop: alpha x colour + (1 - alpha) x context (and the colour
    itself, with `with_colour`)."""
    color, alpha = stage(keypoints, context)
    blended = alpha * color + (1.0 - alpha) * context
    return (blended, color) if with_colour else blended


def part_loss(stage: Stage, keypoints: torch.Tensor, context: torch.Tensor, target: torch.Tensor,
              cfg: LossConfig) -> torch.Tensor:
    """The image loss of the stitched crop against the target (images in [0, 1]; the hands' boxes,
    from the keypoints in the crop's 512 frame, weigh cfg.hand_weight more), plus cfg.colour_weight
    times the same loss of the colour alone, which then learns whatever alpha blends it by."""
    pred, colour = composite(stage, keypoints, context, with_colour=True)
    hands = hand_weight(keypoints.numpy(), context.shape[-1])
    loss = image_loss(pred * 2 - 1, target * 2 - 1, cfg, hands)
    if cfg.colour_weight:
        loss = loss + cfg.colour_weight * image_loss(colour * 2 - 1, target * 2 - 1, cfg, hands)
    return loss


def part_phase(name: str, stage: Stage, train: PartCrops, val: PartCrops, b: Budget, loss_cfg: LossConfig,
               grad_clip: float) -> Phase:
    opt = torch.optim.Adam(stage.parameters(), lr=b.lr)

    def step(i: int, g: torch.Generator) -> dict[str, float]:
        idx = torch.randint(len(train), (b.batch,), generator=g).numpy()
        kp = torch.from_numpy(train.keypoints[idx])
        ctx, tgt = _unit(train.context[idx]), _unit(train.target[idx])
        loss = part_loss(stage, kp, ctx, tgt, loss_cfg)
        grad = clip_and_step(opt, stage, loss, scheduled_lr(b, i), grad_clip)
        return {"loss": loss.item(), "grad_norm": grad}

    @torch.no_grad()
    def validate() -> dict[str, float]:
        n = min(len(val), VAL_CROPS)
        preds = [composite(stage, torch.from_numpy(val.keypoints[s:s + 64]), _unit(val.context[s:s + 64])).numpy()
                 for s in range(0, n, 64)]
        tgt = val.target[:n].astype(np.float32) / 255.0
        return {"val_psnr_db": psnr(np.concatenate(preds), tgt, 1.0),
                "val_context_psnr_db": psnr(val.context[:n].astype(np.float32) / 255.0, tgt, 1.0)}

    from hpv.training.cascade import budget_key

    return Phase(name, {"stage": stage}, {"stage": opt}, b.steps, step, validate,
                 {"budget": budget_key(b), "stage": stage.tag})

