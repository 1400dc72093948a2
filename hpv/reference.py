"""The pipeline run in PyTorch, frame by frame, with recurrent state carried: the reference that
calibration draws realistic stage inputs from and that artifacts are verified against."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hpv.pipelines import Pipeline
from hpv.pose.conditioning import DEPTH, conditioning, conditioning_key  # noqa: F401  (re-exported)
from hpv.stages import Role, Stage, build_stage
from hpv.stages.checkpoint import load_default_weights


def rescale(x, src: tuple[float, float], dst: tuple[float, float]):
    """Map values from one declared range to another (e.g. tanh [-1,1] -> [0,1])."""
    if tuple(src) == tuple(dst):
        return x
    return (x - src[0]) * ((dst[1] - dst[0]) / (src[1] - src[0])) + dst[0]


@dataclass
class LoadedPipeline:
    pipeline: Pipeline
    stages: dict[str, Stage]  # by stage name
    weights: dict[str, str]  # stage name -> sha256 or "untrained"

    @property
    def generator(self) -> Stage:
        return self.stages[self.pipeline.generator.stage]

    @property
    def refiner(self) -> Stage | None:
        return self.stages[self.pipeline.refiner.stage] if self.pipeline.refiner else None

    @property
    def upscaler(self) -> Stage:
        return self.stages[self.pipeline.upscaler.stage]


def load_pipeline(pipeline: Pipeline, weights: dict[str, str] | None = None, *, small: bool = False,
                  shipped: bool = True) -> LoadedPipeline:
    """Build every stage of `pipeline`; load `weights[stage]` where given, else shipped defaults.
    small: every stage at its registered small size (tests, smoke builds); the small sizes of the
    stages of one pipeline fit together. shipped=False: seeded initialisation (training starts there)."""
    from hpv.errors import ConfigError
    from hpv.stages import STAGES
    from hpv.stages.checkpoint import UNTRAINED, load_weights

    names = [ref.stage for ref in pipeline.stages]
    for name in weights or {}:  # weights for a stage not built here would be dropped unseen
        STAGES.get(name)  # a misspelt name: UnknownNameError with the closest stage
        if name not in names:
            raise ConfigError(f"weights given for stage {name!r}, which pipeline {pipeline.name!r} does not hold; "
                              f"its stages are {', '.join(names)}")
    stages, shas = {}, {}
    for ref in pipeline.stages:
        params = STAGES.get(ref.stage).small if small else ref.build_params()
        stage = build_stage(ref.stage, params)
        path = (weights or {}).get(ref.stage)
        if path:
            shas[ref.stage] = load_weights(stage, path)
        else:
            shas[ref.stage] = load_default_weights(stage) if shipped else UNTRAINED
        stages[ref.stage] = stage
    return LoadedPipeline(pipeline, stages, shas)


@dataclass
class Rollout:
    """Every stage's inputs, frame by frame, and the pipeline's output frames."""

    inputs: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)
    frames: list[np.ndarray] = field(default_factory=list)


def conditioning_spec(stage: Stage):
    """The stage's pose input (a drawn image or keypoints), or None for a stage without one."""
    return next((t for t in stage.interface().inputs if t.role in (Role.POSE, Role.KEYPOINTS)), None)


def _pose_feed(stage: Stage, poses: dict, t: int, fields: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The stage's pose input for frame t: from `poses`, or the generator's fields of this frame."""
    spec = conditioning_spec(stage)
    if spec is not None:
        return {spec.name: torch.from_numpy(poses[conditioning_key(spec)][t : t + 1])}
    spec = next((i for i in stage.interface().inputs if i.role is Role.FIELDS), None)
    if spec is None:
        return {}
    if fields is None:
        raise ValueError(f"{stage.name} takes keypoint fields, but its pipeline's generator does not draw them")
    return {spec.name: fields}


def run_generator(gen: Stage, feed: dict, state: dict) -> tuple[torch.Tensor, dict, torch.Tensor | None]:
    """One generator call: (image, next state by state input name, keypoint fields or None)."""
    itf = gen.interface()
    outs = dict(zip(itf.output_names, gen(*feed.values(), *state.values())))
    fields = next((outs[t.name] for t in itf.outputs if t.role is Role.FIELDS), None)
    return outs["image"], {b.input: outs[b.output] for b in itf.state}, fields


@torch.no_grad()
def rollout(lp: LoadedPipeline, poses: dict, steps: int | list[int] | None = None, fps: float | None = None,
            with_parts: bool = True) -> Rollout:
    """Run the pipeline over a pose sequence given as every conditioning it needs.

    poses: conditioning key (see `conditioning_keys`) -> float32 model inputs over T frames
    ([T,3,R,R] drawn images, [T,178,3] keypoints; optionally DEPTH [T,178] for the parts' order). steps: refinement steps per frame (an int for all
    frames, a list per frame; default: cycle 0..K so every step count is represented).
    The generator's inputs are recorded with the state it was given (state is carried, not sampled).
    A pipeline with part stages draws and stitches them after the upscaler (unless `with_parts` is False),
    its crop boxes smoothed at `fps` (default: `hpv.runtime.parts.DEFAULT_FPS`)."""
    gen, ref, up = lp.generator, lp.refiner, lp.upscaler
    g_itf, u_itf = gen.interface(), up.interface()
    n = len(poses[conditioning_key(conditioning_spec(gen))])
    K = lp.pipeline.max_steps
    if steps is None:
        steps = [t % (K + 1) for t in range(n)]
    elif isinstance(steps, int):
        steps = [steps] * n
    out = Rollout({name: [] for name in lp.stages})
    state = gen.initial_state(1)
    previous = None
    img_range = g_itf.output("image").value_range
    up_image = next(t for t in u_itf.inputs if t.role is Role.IMAGE)
    parts = None
    if lp.pipeline.parts and with_parts:
        from hpv.runtime.parts import DEFAULT_FPS, PartsStep

        parts = PartsStep(lp.pipeline.part_stages, part_sizes(lp), fps or DEFAULT_FPS)
    for t in range(n):
        g_feed = _pose_feed(gen, poses, t)
        out.inputs[gen.name].append({**{k: v.numpy() for k, v in g_feed.items()}, **{k: v.numpy() for k, v in state.items()}})
        image, state, fields = run_generator(gen, g_feed, state)
        est = image
        if ref is not None:
            r_feed = _pose_feed(ref, poses, t, fields)
            (r_name, r_pose), = r_feed.items()
            prev = previous if previous is not None else est
            for k in range(steps[t]):
                step = torch.full((1, 1), float(k))
                out.inputs[ref.name].append(
                    {r_name: r_pose.numpy(), "estimate": est.numpy(), "step": step.numpy(), "previous": prev.numpy()}
                )
                (est,) = ref(r_pose, est, step, prev)
        previous = est
        up_in = rescale(est, img_range, up_image.value_range)
        u_feed = {up_image.name: up_in, **_pose_feed(up, poses, t, fields)}
        out.inputs[up.name].append({k: v.numpy() for k, v in u_feed.items()})
        (frame,) = up(*(u_feed[i.name] for i in u_itf.inputs))
        frame = frame[0].numpy()
        if parts is not None:
            z = poses[DEPTH][t] if DEPTH in poses else None
            frame = _run_parts(lp, parts, poses["keypoints"][t], z, frame, out)
        out.frames.append(frame)
    return out


def _run_parts(lp: LoadedPipeline, parts, keypoints: np.ndarray, z: np.ndarray | None, frame: np.ndarray,
               out: Rollout) -> np.ndarray:
    """The part stages of one frame (`hpv.runtime.parts.PartsStep`), their inputs recorded."""
    def run(name: str, feeds: dict) -> dict:
        out.inputs[name].append(feeds)
        stage = lp.stages[name]
        result = stage(*(torch.from_numpy(feeds[i]) for i in stage.interface().input_names))
        return {k: v.numpy() for k, v in zip(stage.interface().output_names, result)}

    return parts(keypoints, frame, run, z)[0]


def part_sizes(lp: LoadedPipeline) -> dict[str, int]:
    """Each part stage's crop side (its `context` input's)."""
    return {p.stage.stage: int(lp.stages[p.stage.stage].interface().input("context").shape[-1])
            for p in lp.pipeline.parts}


def stage_rollout_inputs(lp: LoadedPipeline, stage: Stage, poses: dict) -> list[dict[str, np.ndarray]]:
    """Per-frame external inputs of one stage, from a reference rollout of its pipeline."""
    return rollout(lp, poses).inputs[stage.name]


def conditioning_keys(lp: LoadedPipeline) -> list[int | str]:
    """Every conditioning the pipeline's stages take: drawn-image resolutions and/or "keypoints"."""
    keys = {conditioning_key(s) for s in map(conditioning_spec, lp.stages.values()) if s is not None}
    return sorted(keys, key=str)


