"""The cascade, trained on real and predicted data: the generator on ground truth (clips, state
carried, temporal term); then refinement step k on the estimates that the generator and steps
< k really produce; then the upscaler on predicted low-resolution frames against high-resolution
ground truth. The baseline (pix2pix_lstm + espcn_x3) trains the same way without refiners."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hpv.metrics import psnr
from hpv.pipelines import PIPELINES
from hpv.reference import LoadedPipeline, conditioning_key, conditioning_spec, load_pipeline, rescale
from hpv.stages import Role
from hpv.stages import Stage
from hpv.stages.checkpoint import save_weights
from hpv.training.config import Budget, TrainConfig
from hpv.training.data import Dataset, Resolutions, Sequence, build_dataset
from hpv.training.loop import Phase, Reporter, run_phase
from hpv.training.losses import PatchGAN, clip_and_step, gan_loss, hand_weight, image_loss, l1, scheduled_lr, temporal


def signed(u8: np.ndarray) -> torch.Tensor:
    """uint8 [...,H,W,3] -> float [...,3,H,W] in [-1,1] (the generator's input and output range)."""
    t = torch.from_numpy(np.ascontiguousarray(u8)).float()
    return (t / 127.5 - 1.0).movedim(-1, -3)


def unit(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(u8)).float().div(255.0).movedim(-1, -3)


def budget_key(b: Budget) -> str:
    """What a checkpoint must agree on to be resumed: the budget without its step count, so a run
    can be stopped and continued with more or fewer steps (the learning-rate schedule follows the
    new count from the step it resumes at)."""
    import dataclasses

    return repr(dataclasses.replace(b, steps=0))


def resolution_of(stage: Stage) -> int:
    """The stage's working resolution (its image output's side)."""
    return int(next(t for t in stage.interface().outputs if t.role is Role.IMAGE).shape[-1])


_RASTERS: dict[int, torch.nn.Module] = {}


def cond(stage: Stage, seq: Sequence, frames=slice(None)) -> torch.Tensor:
    """The stage's pose input for `frames` of `seq`: keypoints, the drawn conditioning image, or
    (for stages after the generator) the keypoint fields the generator draws."""
    spec = conditioning_spec(stage)
    if spec is not None:
        return torch.from_numpy(np.ascontiguousarray(seq.conditioning(conditioning_key(spec), frames)))
    spec = next(t for t in stage.interface().inputs if t.role is Role.FIELDS)
    r = int(spec.shape[-1])
    if r not in _RASTERS:
        from hpv.stages.raster import KeypointRaster

        _RASTERS[r] = KeypointRaster(r)
    kp = torch.from_numpy(np.ascontiguousarray(seq.conditioning("keypoints", frames)))
    one = kp.dim() == 2  # a single frame index
    with torch.no_grad():
        f = _RASTERS[r](kp[None] if one else kp)
    return f[0] if one else f


def condition_image(stage: Stage, pose: torch.Tensor) -> torch.Tensor:
    """What a discriminator sees of the pose: the drawn image, or the stage's own keypoint fields."""
    raster = getattr(stage, "raster", None)
    return raster(pose) if raster is not None and pose.dim() == 3 else pose  # keypoints -> fields


# --- generator -----------------------------------------------------------------------------

def rollout_generator(gen: Stage, poses: torch.Tensor) -> torch.Tensor:
    """poses [B,L,...] -> images [B,L,3,R,R], state carried from zeros."""
    from hpv.reference import run_generator

    state = gen.initial_state(poses.shape[0])
    name = conditioning_spec(gen).name
    outs = []
    for t in range(poses.shape[1]):
        image, state, _ = run_generator(gen, {name: poses[:, t]}, state)
        outs.append(image)
    return torch.stack(outs, dim=1)


@torch.no_grad()
def predict_generator(gen: Stage, seqs: list[Sequence]) -> list[torch.Tensor]:
    r = resolution_of(gen)
    return [rollout_generator(gen, cond(gen, s)[None])[0].half() for s in seqs]


def generator_phase(name: str, gen: Stage, data: Dataset, b: Budget, cfg: TrainConfig) -> Phase:
    r = resolution_of(gen)
    train = data.train
    opt = torch.optim.Adam(gen.parameters(), lr=b.lr, betas=(0.5, 0.999))
    models, optims = {"stage": gen}, {"stage": opt}
    disc = None
    if cfg.adversarial_weight > 0:
        disc = PatchGAN(in_ch=3 + condition_image(gen, cond(gen, train[0], slice(0, 1))).shape[1], width=32)
        models["disc"], optims["disc"] = disc, torch.optim.Adam(disc.parameters(), lr=b.lr, betas=(0.5, 0.999))

    def step(_i: int, g: torch.Generator) -> dict[str, float]:
        seq_idx = torch.randint(len(train), (b.batch,), generator=g).tolist()
        clips = []
        for k in seq_idx:
            T = train[k].num_frames
            start = int(torch.randint(max(1, T - b.clip + 1), (1,), generator=g))
            clips.append(slice(start, min(T, start + b.clip)))
        L = min(c.stop - c.start for c in clips)
        poses = torch.stack([cond(gen, train[k], c)[:L] for k, c in zip(seq_idx, clips)])
        target = torch.stack([signed(train[k].target[r][c][:L]) for k, c in zip(seq_idx, clips)])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))  # dropout masks
            pred = rollout_generator(gen, poses)
        loss_l1 = l1(pred, target)
        hands = _hands([hand_weight(train[k].keypoints, r, c)[:L] for k, c in zip(seq_idx, clips)
                        if train[k].keypoints is not None], b.batch)
        loss = image_loss(pred.flatten(0, 1), target.flatten(0, 1), cfg.loss, hands)
        loss = loss + (cfg.temporal_weight * temporal(pred, target) if L > 1 else 0.0)
        out = {"l1": loss_l1.item()}
        if disc is not None:
            c_img, fake = condition_image(gen, poses.flatten(0, 1)), pred.flatten(0, 1)
            loss = loss + cfg.adversarial_weight * gan_loss(disc(c_img, fake), True)
        out["grad_norm"] = clip_and_step(opt, gen, loss, scheduled_lr(b, _i), cfg.grad_clip)
        if disc is not None:
            d_loss = 0.5 * (gan_loss(disc(c_img, target.flatten(0, 1)), True) + gan_loss(disc(c_img, fake.detach()), False))
            optims["disc"].zero_grad()
            d_loss.backward()
            optims["disc"].step()
            out["d_loss"] = d_loss.item()
        return {"loss": loss.item(), **out}

    def validate() -> dict[str, float]:
        preds = predict_generator(gen, data.val)
        return {"val_psnr_db": _psnr_signed(preds, data.val, r)}

    return Phase(name, models, optims, b.steps, step, validate, {"budget": budget_key(b), "stage": gen.tag})


def _psnr_signed(preds: list[torch.Tensor], seqs: list[Sequence], r: int) -> float:
    p = torch.cat([x.float() for x in preds]).numpy()
    t = torch.cat([signed(s.target[r]) for s in seqs]).numpy()
    return psnr(p, t, 2.0)


def _hands(maps: list[torch.Tensor], batch: int) -> torch.Tensor | None:
    """The batch's hand-box weights [N,1,H,W] (None unless every item has keypoints)."""
    if len(maps) != batch:
        return None
    m = torch.stack(maps)
    return m.flatten(0, 1) if m.dim() == 5 else m


# --- refiner -------------------------------------------------------------------------------

@torch.no_grad()
def refine(ref: Stage, seqs: list[Sequence], est: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Apply refinement step k to every frame's estimate (the previous frame's estimate at the
    same step stands in for the previous output, as at run time)."""
    r = resolution_of(ref)
    out = []
    for s, e in zip(seqs, est):
        e = e.float()
        prev = torch.cat([e[:1], e[:-1]])
        step = torch.full((len(e), 1), float(k))
        (new,) = ref(cond(ref, s), e, step, prev)
        out.append(new.half())
    return out


def refiner_phase(name: str, ref: Stage, data: Dataset, train_est: list[list[torch.Tensor]],
                  val_est: list[torch.Tensor], k: int, b: Budget, opt: torch.optim.Optimizer,
                  loss_cfg, grad_clip: float) -> Phase:
    """Step k: inputs are the estimates after steps 0..k (replayed so earlier steps are kept)."""
    r = resolution_of(ref)
    train = data.train

    def step(_i: int, g: torch.Generator) -> dict[str, float]:
        seq_idx = torch.randint(len(train), (b.batch,), generator=g).tolist()
        # Mostly step k itself (what this phase adds), with earlier steps replayed so they are kept.
        steps = [k if torch.rand((), generator=g) < 0.6 else int(torch.randint(k + 1, (), generator=g))
                 for _ in range(b.batch)]
        pose, est, prev, tgt, hands = [], [], [], [], []
        for s, j in zip(seq_idx, steps):
            t = int(torch.randint(train[s].num_frames, (1,), generator=g))
            e = train_est[j][s]
            if train[s].keypoints is not None:
                hands.append(hand_weight(train[s].keypoints, r, t))
            pose.append(cond(ref, train[s], t))
            est.append(e[t].float())
            prev.append(e[max(t - 1, 0)].float())
            tgt.append(signed(train[s].target[r][t]))
        (pred,) = ref(torch.stack(pose), torch.stack(est), torch.tensor(steps, dtype=torch.float32)[:, None],
                      torch.stack(prev))
        loss = image_loss(pred, torch.stack(tgt), loss_cfg, _hands(hands, b.batch))
        grad = clip_and_step(opt, ref, loss, scheduled_lr(b, _i), grad_clip)
        return {"loss": loss.item(), "grad_norm": grad}

    def validate() -> dict[str, float]:
        return {"val_psnr_db": _psnr_signed(refine(ref, data.val, val_est, k), data.val, r)}

    return Phase(name, {"stage": ref}, {"stage": opt}, b.steps, step, validate, {"budget": budget_key(b), "stage": ref.tag})


VAL_SEQUENCES_HR, VAL_FRAMES_HR = 2, 8  # scored at the output resolution during training (cost)

# --- upscaler ------------------------------------------------------------------------------

def _takes_pose(stage: Stage) -> bool:
    return conditioning_spec(stage) is not None or any(t.role is Role.FIELDS for t in stage.interface().inputs)


def upscale_frame(up: Stage, image: torch.Tensor, seq: Sequence, t: int) -> torch.Tensor:
    """The upscaler on one frame's image [1,3,r,r], with its pose input when it takes one."""
    return up(image, cond(up, seq, slice(t, t + 1)))[0] if _takes_pose(up) else up(image)[0]


def crop_origin(keypoints, t: int, r: int, c: int, hand_share: float, g: torch.Generator) -> tuple[int, int]:
    """(y0, x0) of a c x c crop of an r x r frame: with probability `hand_share` centred (with a
    jitter of a quarter crop) on a pixel inside a hand's box of frame t, else uniform."""
    focus = hand_share > 0 and keypoints is not None and float(torch.rand((), generator=g)) < hand_share
    if focus:
        ys, xs = np.nonzero(hand_weight(keypoints, r, slice(t, t + 1))[0, 0].numpy())
        if len(ys):
            i = int(torch.randint(len(ys), (1,), generator=g))
            jy, jx = (int(v) for v in torch.randint(-(c // 4), c // 4 + 1, (2,), generator=g))
            return (min(max(int(ys[i]) + jy - c // 2, 0), r - c), min(max(int(xs[i]) + jx - c // 2, 0), r - c))
    y0, x0 = (int(v) for v in torch.randint(r - c + 1, (2,), generator=g))
    return y0, x0


def upscaler_phase(name: str, up: Stage, data: Dataset, train_est: list[list[torch.Tensor]],
                   val_est: list[torch.Tensor], b: Budget, src_range, loss_cfg, grad_clip: float) -> Phase:
    itf = up.interface()
    keyed = _takes_pose(up)  # crops of the image and of its keypoint fields
    r_in, s = int(itf.input("image").shape[-1]), itf.scale
    r_out = r_in * s
    dst_range = itf.input("image").value_range
    hr = [i for i, q in enumerate(data.train) if r_out in q.target]
    if not hr:
        raise ValueError(f"no training sequence has {r_out}x{r_out} ground truth for {up.name}")
    opt = torch.optim.Adam(up.parameters(), lr=b.lr)
    c = b.crop or r_in

    def step(_i: int, g: torch.Generator) -> dict[str, float]:
        xs, fs, ys, hands = [], [], [], []
        for _ in range(b.batch):
            q = hr[int(torch.randint(len(hr), (1,), generator=g))]
            j = int(torch.randint(len(train_est), (1,), generator=g))
            t = int(torch.randint(data.train[q].num_frames, (1,), generator=g))
            y0, x0 = crop_origin(data.train[q].keypoints, t, r_in, c, b.hand_crops, g)
            lr = rescale(train_est[j][q][t].float(), src_range, dst_range)
            xs.append(lr[:, y0:y0 + c, x0:x0 + c])
            if keyed:
                fs.append(cond(up, data.train[q], slice(t, t + 1))[0, :, y0:y0 + c, x0:x0 + c])
            ys.append(unit(data.train[q].target[r_out][t, y0 * s:(y0 + c) * s, x0 * s:(x0 + c) * s]))
            if data.train[q].keypoints is not None:
                hands.append(hand_weight(data.train[q].keypoints, r_out, t)[0, :, y0 * s:(y0 + c) * s,
                                                                            x0 * s:(x0 + c) * s])
        pred = (up(torch.stack(xs), torch.stack(fs)) if keyed else up(torch.stack(xs)))[0]
        loss = image_loss(pred * 2 - 1, torch.stack(ys) * 2 - 1, loss_cfg, _hands(hands, b.batch))  # in the generator's [-1, 1] units
        grad = clip_and_step(opt, up, loss, scheduled_lr(b, _i), grad_clip)
        return {"loss": loss.item(), "grad_norm": grad}

    @torch.no_grad()
    def validate() -> dict[str, float]:
        # Streamed, a few sequences: full-resolution outputs of every val frame do not fit in memory.
        seqs = [(q, e[:VAL_FRAMES_HR]) for q, e in zip(data.val, val_est) if r_out in q.target][:VAL_SEQUENCES_HR]
        if not seqs:
            return {}
        se, n = 0.0, 0
        for q, e in seqs:
            for t in range(len(e)):
                pred = upscale_frame(up, rescale(e[t:t + 1].float(), src_range, dst_range), q, t)
                diff = pred[0] - unit(q.target[r_out][t])
                se += float((diff * diff).sum())
                n += diff.numel()
        return {"val_psnr_db": 10.0 * float(np.log10(1.0 / max(se / n, 1e-20)))}

    return Phase(name, {"stage": up}, {"stage": opt}, b.steps, step, validate, {"budget": budget_key(b), "stage": up.tag})


# --- the whole cascade ---------------------------------------------------------------------

@dataclass
class TrainResult:
    pipeline: LoadedPipeline
    weights: dict[str, Path]
    history: list[dict] = field(default_factory=list)


def resolutions_for(lp: LoadedPipeline) -> Resolutions:
    gen_r = resolution_of(lp.generator)
    up_itf = lp.upscaler.interface()
    drawn = tuple(sorted({int(s.shape[-1]) for s in map(conditioning_spec, lp.stages.values())
                          if s is not None and s.role is Role.POSE}))  # keypoint stages draw their own
    return Resolutions(pose=drawn, target=(gen_r,), hr=int(up_itf.output("upscaled").shape[-1]))


def phase_done(ckpt: Path, steps: int) -> bool:
    """Whether a phase's checkpoint holds its last step (read from the header, no tensors)."""
    if not ckpt.is_file():
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(ckpt), framework="pt") as f:
            return int((f.metadata() or {}).get("step", -1)) >= steps
    except Exception:
        return False  # a corrupt checkpoint is reported when the phase loads it


def shared_resolutions(*pipelines: str, small: bool = False) -> Resolutions:
    """One dataset serving several pipelines (the default and the baseline train on the same pairs)."""
    rs = [resolutions_for(load_pipeline(PIPELINES.get(p), shipped=False, small=small))
          for p in dict.fromkeys(pipelines)]
    hrs = {r.hr for r in rs}
    if len(hrs) > 1:
        raise ValueError(f"pipelines {pipelines} have different output sizes {sorted(hrs)}")
    return Resolutions(pose=tuple(sorted({x for r in rs for x in r.pose})),
                       target=tuple(sorted({x for r in rs for x in r.target})), hr=hrs.pop())


def train_pipeline(pipeline: str, cfg: TrainConfig, out: Path, *, dataset: Dataset | None = None,
                   cache_dir: Path | None = None, pairs=(), reporter: Reporter | None = None,
                   small: bool = False) -> TrainResult:
    """Train every stage of `pipeline` in cascade order; resumable from `out` (a run stopped at
    any point and started again with the same arguments ends with the same weights).
    small: the stages at their small sizes (tests)."""
    reporter = reporter or Reporter()
    # Denormal floats (tails of Gaussians, decaying activations) make x86 kernels several times
    # slower; flushed, results differ below 1e-38.
    torch.set_flush_denormal(True)
    out = Path(out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    # Seeded initialisation, or (cfg.init == "shipped") the package's weights to continue from.
    reporter.stage(f"setting up the {pipeline} pipeline's stages ({cfg.init} weights)")
    lp = load_pipeline(PIPELINES.get(pipeline), shipped=cfg.init == "shipped" and not small, small=small)
    if cfg.init == "shipped" and not small:
        from hpv.stages.checkpoint import UNTRAINED, load_overlapping_shipped

        for name, stage in lp.stages.items():
            src = load_overlapping_shipped(stage) if lp.weights[name] == UNTRAINED else None
            if src:
                reporter.stage(f"{name}: no shipped weights at {stage.tag}; starting from the leading slices of {src}")
    torch.manual_seed(cfg.seed)
    hist_path = out / "history.json"
    history: list[dict] = json.loads(hist_path.read_text()) if hist_path.is_file() else []
    ck = out / "checkpoints"
    kw = {"eval_every": cfg.eval_every, "checkpoint_every": cfg.checkpoint_every, "reporter": reporter,
          "history": history, "history_path": hist_path}
    baseline = lp.refiner is None and pipeline == "baseline"
    if cfg.trains_cascade(baseline):
        if dataset is None:
            reporter.stage("rendering training data")
            dataset = build_dataset(cfg.data, resolutions_for(lp), pairs=pairs, cache_dir=cache_dir)
        _train_cascade(lp, pipeline, cfg, dataset, ck, kw, reporter, baseline)
    if lp.pipeline.parts and cfg.parts.steps:
        _train_parts(lp, cfg, out, ck, kw, reporter)

    weights = {}
    for name, stage in lp.stages.items():
        path = out / "weights" / f"{name}-{stage.tag}.safetensors"
        lp.weights[name] = save_weights(stage, path)
        weights[name] = path
    from hpv.atomic import write_json

    seen, dedup = set(), []
    for h in history:
        if (h["phase"], h["step"]) not in seen:
            seen.add((h["phase"], h["step"]))
            dedup.append(h)
    write_json(hist_path, dedup)
    return TrainResult(lp, weights, dedup)


def _train_cascade(lp: LoadedPipeline, pipeline: str, cfg: TrainConfig, dataset: Dataset, ck: Path, kw: dict,
                   reporter: Reporter, baseline: bool) -> None:
    """The whole-frame stages: generator, refinement steps on its estimates, upscaler."""
    gb = cfg.baseline_generator if baseline else cfg.generator
    ub = cfg.baseline_upscaler if baseline else cfg.upscaler

    gen = lp.generator
    run_phase(generator_phase("generator", gen, dataset, gb, cfg), ck, cfg.seed, **kw)
    # train_est[j][i]: estimates of training sequence i after j refinement steps. Without refiners
    # only the upscaler needs them, and only for sequences with high-resolution ground truth.
    hr_res = resolutions_for(lp).hr
    need = (range(len(dataset.train)) if lp.refiner is not None
            else [i for i, q in enumerate(dataset.train) if hr_res in q.target])
    est0: list[torch.Tensor | None] = [None] * len(dataset.train)
    reporter.stage(f"generator estimates of {len(need)} training and {len(dataset.val)} validation sequences "
                   "(what the next phases train on)")
    for i, e in zip(need, predict_generator(gen, [dataset.train[i] for i in need])):
        est0[i] = e
    train_est = [est0]
    val0 = predict_generator(gen, dataset.val)
    val_est = val0
    if lp.refiner is not None:
        ref = lp.refiner
        opt = torch.optim.Adam(ref.parameters(), lr=cfg.refiner.lr)
        for k in range(lp.pipeline.max_steps):
            run_phase(refiner_phase(f"refiner-step{k}", ref, dataset, train_est, val_est, k, cfg.refiner, opt,
                                    cfg.loss, cfg.grad_clip),
                      ck, cfg.seed + 1 + k, **kw)
            last = k == lp.pipeline.max_steps - 1
            if not last and phase_done(ck / f"refiner-step{k + 1}.ckpt.safetensors", cfg.refiner.steps):
                continue  # resuming: step k+1 is already trained, so its inputs are not needed
            # What steps 0..k now really produce (the weights changed): step k+1 trains on it.
            reporter.stage(f"estimates after refinement steps 0..{k} of {len(dataset.train)} training sequences")
            train_est, val_est = train_est[:1], val0
            for j in range(k + 1):
                train_est.append(refine(ref, dataset.train, train_est[j], j))
                val_est = refine(ref, dataset.val, val_est, j)
    src = gen.interface().output("image").value_range
    run_phase(upscaler_phase("upscaler", lp.upscaler, dataset, train_est, val_est, ub, src, cfg.loss, cfg.grad_clip), ck,
              cfg.seed + 100, **kw)


def _train_parts(lp: LoadedPipeline, cfg: TrainConfig, out: Path, ck: Path, kw: dict, reporter: Reporter) -> None:
    """The part generators, on crops of what the whole-frame stages (trained or shipped) draw at the
    pipeline's K, against the ground truth's crops (`hpv.training.parts`)."""
    from hpv.training.parts import cached_part_crops, part_phase

    n_val = max(2, cfg.part_sequences // 8)
    crops = {}
    for split, limit in (("train", cfg.part_sequences), ("val", n_val)):
        reporter.stage(f"part crops of {limit} {split} sequences (the pipeline run at k = {lp.pipeline.max_steps} "
                       "and the ground truth drawn at its output resolution)")
        crops[split] = cached_part_crops(lp, cfg.data, split, limit, lp.pipeline.max_steps, out / "part-crops")
    for k, p in enumerate(lp.pipeline.parts):
        name = p.stage.stage
        if cfg.part_stages and name not in cfg.part_stages:
            continue
        reporter.stage(f"{name}: {len(crops['train'][name])} training and {len(crops['val'][name])} validation crops")
        run_phase(part_phase(name, lp.stages[name], crops["train"][name], crops["val"][name], cfg.parts, cfg.loss,
                             cfg.grad_clip), ck, cfg.seed + 200 + k, **kw)
