"""A compiled pipeline, run frame by frame: generator -> k refiner steps -> upscaler (-> part stages
stitched in, `hpv.runtime.parts`), from the
artifacts of one build (ONNX Runtime or LiteRT), with the generator's recurrent state carried.
The profiler times it and `hpv render` drives it, so both measure the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpv.artifacts.manifest import ArtifactRecord, Manifest
from hpv.errors import ConfigError, ManifestError, UnknownNameError
from hpv.pipelines import PIPELINES, Pipeline
from hpv.pose.conditioning import DEPTH
from hpv.runtime.build import RUNNABLE, Build, load_build

__all__ = ["RUNNABLE", "CompiledPipeline", "StageRunner", "batches", "pick_artifact", "precisions"]


def _rescale(x: np.ndarray, src: tuple[float, float] | None, dst: tuple[float, float] | None) -> np.ndarray:
    if src is None or dst is None or tuple(src) == tuple(dst):
        return x
    return ((x - src[0]) / (src[1] - src[0]) * (dst[1] - dst[0]) + dst[0]).astype(np.float32)


def _nchw(record, batch: int) -> list[int]:
    """A tensor's shape as the runners take it (NCHW: LiteRT records hold their NHWC shape)."""
    shape = [batch, *record.shape[1:]]
    if getattr(record, "layout", None) == "NHWC" and len(shape) == 4:
        shape = [shape[0], shape[3], shape[1], shape[2]]
    return shape


@dataclass
class StageRunner:
    record: ArtifactRecord
    run: object  # feeds -> outputs, NCHW float (hpv.compiler.verify.Runner)

    def input(self, name: str):
        return self._tensor("inputs", name)

    def output(self, name: str):
        return self._tensor("outputs", name)

    def _tensor(self, kind: str, name: str):
        tensors = getattr(self.record, kind)
        found = next((t for t in tensors if t.name == name), None)
        if found is None:
            raise ManifestError(f"{self.record.path}: the {self.record.stage} stage needs {kind[:-1]} {name!r}; "
                                f"its {kind} are {[t.name for t in tensors]}. Rebuild the build with hpv-compile")
        return found


def pick_artifact(manifest: Manifest, stage: str, precision: str, batch: int) -> ArtifactRecord:
    """The artifact of `stage` at `precision` that runs `batch` frames a call."""
    candidates = [a for a in manifest.artifacts if a.stage == stage and a.precision == precision]
    if not candidates:
        have = sorted({a.precision for a in manifest.artifacts if a.stage == stage})
        raise UnknownNameError(f"precision of {stage} in this build", precision, have)
    for a in candidates:
        if a.batch == "dynamic" or a.batch == batch:
            return a
    raise ConfigError(f"the build has {stage} {precision} only for batch {[a.batch for a in candidates]}, not {batch}")


def precisions(manifest: Manifest) -> list[str]:
    """Precisions every stage of the build has."""
    per_stage = [{a.precision for a in manifest.artifacts if a.stage == s}
                 for s in dict.fromkeys(a.stage for a in manifest.artifacts)]
    common = set.intersection(*per_stage) if per_stage else set()
    return [p for p in dict.fromkeys(a.precision for a in manifest.artifacts) if p in common]


def batches(manifest: Manifest) -> list[int | str]:
    return list(dict.fromkeys(a.batch for a in manifest.artifacts))


class CompiledPipeline:
    """One build's generator, refiner, upscaler and part stages at one precision and batch size."""

    def __init__(self, build: str | Path | Build, precision: str, batch: int = 1, manifest: Manifest | None = None,
                 *, beside: bool = True):
        """`beside`: a frame's part stage runs (the face, the hands) go side by side, one thread
        each (`hpv.runtime.parts.PartsStep.draw`), where the pipeline has two part stages or more;
        False: one after the other, each on every core."""
        # Loaded and checked against the artifacts' own signatures once: pass a Build to reuse it.
        self.loaded = build if isinstance(build, Build) else load_build(build, manifest)
        self.build, self.manifest = self.loaded.folder, self.loaded.manifest
        self.pipeline: Pipeline = PIPELINES.get(self.manifest.pipeline)
        self.precision, self.batch = precision, batch
        names = {a.stage for a in self.manifest.artifacts}
        missing = [r.stage for r in self.pipeline.stages if r.stage not in names]
        if missing:
            raise ManifestError(f"{self.build} lacks {missing}: build the whole pipeline (no --stage) to run it")

        def load(stage: str, batch: int = batch, threads: int | None = None) -> StageRunner:
            record = pick_artifact(self.manifest, stage, precision, batch)
            return StageRunner(record, self.loaded.runner(record, threads))

        self.generator = load(self.pipeline.generator.stage)
        self.refiner = load(self.pipeline.refiner.stage) if self.pipeline.refiner else None
        self.upscaler = load(self.pipeline.upscaler.stage)
        # Part stages run one crop a call (a frame has 0..3 parts), so at batch 1 whatever the batch.
        self.part_runners = {p.stage.stage: load(p.stage.stage, 1) for p in self.pipeline.parts}
        # Those whose artifact takes any batch draw all their crops of a frame in one call.
        self._batched_parts = {s for s, r in self.part_runners.items() if r.record.batch == "dynamic"}
        # Side by side, a second session of each part stage at one thread: a frame's face and hands
        # then run at once instead of each taking both cores in turn.
        self._beside, self._pool = {}, None
        if beside and len(self.part_runners) > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._beside = {s: load(s, 1, threads=1) for s in self.part_runners}
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hpv-parts")
        # The build's own record of K (a build outlives a change of the registry's), else the pipeline's.
        self.max_steps = self.pipeline.max_steps if self.manifest.max_steps is None else self.manifest.max_steps
        built = self.refiner.record.params.get("max_steps", 0) if self.refiner is not None else 0
        if self.max_steps > built:
            raise ManifestError(f"{self.build}: its manifest says k <= {self.max_steps}, but its refiner was built for "
                                f"{built} steps; rebuild it with hpv-compile")
        self._require()
        self.reset()

    @property
    def has_parts(self) -> bool:
        return bool(self.part_runners)

    def _require(self) -> None:
        """The tensors `frame` passes between stages, present before the first frame runs."""
        self.generator.output("image")
        self.upscaler.input("image")
        self.upscaler.output("upscaled")
        if self.refiner is not None:
            for name in ("estimate", "previous", "step"):
                self.refiner.input(name)
            self.refiner.output("refined")
        for s in self.generator.record.state:
            self.generator.input(s.input)
            self.generator.output(s.output)
        for runner in self.part_runners.values():
            runner.input("keypoints")
            runner.output("color")
            runner.output("alpha")
        # each part stage's crop side (its context input's): the face's may differ from the hands'
        self.part_sizes = {s: int(_nchw(r.input("context"), 1)[-1]) for s, r in self.part_runners.items()}

    def _pose_input(self, runner: StageRunner):
        """(name, conditioning key) of a stage's pose input, or None."""
        from hpv.pose.conditioning import POSE_ROLES, conditioning_key

        spec = next((i for i in runner.record.inputs if i.role in POSE_ROLES), None)
        return None if spec is None else (spec.name, conditioning_key(spec))

    @property
    def conditioning_keys(self) -> list:
        """What the stages' pose inputs need: "keypoints" and/or drawn-image resolutions."""
        from hpv.pose.conditioning import KEYPOINTS

        runners = [r for r in (self.generator, self.refiner, self.upscaler) if r is not None]
        keys = {p[1] for p in map(self._pose_input, runners) if p is not None}
        return sorted(keys | ({KEYPOINTS} if self.part_runners else set()), key=str)  # parts crop the keypoints

    def _feed(self, runner: StageRunner, poses: dict, fields: np.ndarray | None = None) -> dict:
        """A stage's pose input: from `poses`, or the keypoint fields the generator drew this frame."""
        p = self._pose_input(runner)
        if p is not None:
            return {p[0]: poses[p[1]]}
        f = next((i.name for i in runner.record.inputs if i.role == "fields"), None)
        return {} if f is None else {f: fields}

    @property
    def resolution(self) -> int:
        return int(_nchw(self.upscaler.output("upscaled"), 1)[-1])

    def reset(self, fps: float | None = None) -> None:
        """Forget the recurrent state: the next frame starts a new sequence (whose part boxes are
        smoothed at `fps`; default `hpv.runtime.parts.DEFAULT_FPS`)."""
        self.state = {s.input: np.zeros(_nchw(self.generator.input(s.input), self.batch), np.float32)
                      for s in self.generator.record.state}
        self.previous: np.ndarray | None = None
        self.parts = []  # one PartsStep per batch item (its boxes' tracking), none without part stages
        if self.part_runners:
            from hpv.runtime.parts import DEFAULT_FPS, PartsStep

            self.parts = [PartsStep(self.pipeline.part_stages, self.part_sizes, fps or DEFAULT_FPS)
                          for _ in range(self.batch)]

    def frame(self, poses: dict, k: int, parts: bool = True) -> np.ndarray:
        """One frame of each of `batch` sequences: poses maps each conditioning key (see
        `conditioning_keys`) to its model inputs for this frame ([batch,178,3] keypoints,
        [batch,3,R,R] drawn images; optionally DEPTH [batch,178] z, which hides a hand behind the
        body). Returns [batch,3,H,W] in the upscaler's output range, with the
        part stages (if the pipeline has them and `parts`) stitched in. The part boxes are tracked
        either way, so parts can be switched on and off between frames without a jump."""
        if not 0 <= k <= self.max_steps:
            raise ConfigError(f"k = {k}: this pipeline refines 0..{self.max_steps} steps")
        g = self.generator
        out = g.run({**self._feed(g, poses), **self.state})
        self.state = {s.input: out[s.output] for s in g.record.state}
        est = out["image"]
        fields = next((out[o.name] for o in g.record.outputs if o.role == "fields"), None)
        if self.refiner is not None and k:
            r = self.refiner
            pose = self._feed(r, poses, fields)
            prev = self.previous if self.previous is not None else est
            for step in range(k):
                est = r.run({**pose, "estimate": est, "previous": prev,
                             "step": np.full((self.batch, 1), float(step), np.float32)})["refined"]
        self.previous = est
        u = self.upscaler
        up_in = _rescale(est, g.output("image").value_range, u.input("image").value_range)
        out = u.run({"image": up_in, **self._feed(u, poses, fields)})["upscaled"]
        if not self.part_runners:
            return out
        if out.dtype != np.float32 or not out.flags.writeable:  # a runtime's own buffer: stitch into a copy
            out = np.array(out, np.float32)
        for b, step in enumerate(self.parts):  # stitched into the upscaler's output, which only we hold
            kp, z = poses["keypoints"][b], poses[DEPTH][b] if DEPTH in poses else None
            if not parts:  # the boxes still follow the pose, so switching the parts back on does not jump
                step.track(kp, z)
                continue
            calls = step.crops(kp, out[b], z)
            step.draw(out[b], calls, lambda stage, feeds: self.part_runners[stage].run(feeds), self._batched_parts,
                      pool=self._pool, run_beside=lambda stage, feeds: self._beside[stage].run(feeds))
        return out
