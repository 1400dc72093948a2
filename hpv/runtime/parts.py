"""The parts half of a frame (issue 14), written once for every runner: the PyTorch reference
(`hpv.reference.rollout`), the compiled runtime (`hpv.runtime.pipeline.CompiledPipeline`) and
training data (`hpv.training.parts`) all call it, so they crop, draw and stitch alike.

Per frame, from the keypoints [178, 3] (512 frame), optionally their depth [178] (a hand behind the
body is then left to the whole-body frame), and the upscaled frame [3, R, R] in [0, 1]:
1. each part's box is tracked (`hpv.parts.PartTracker`, smoothed over the sequence at `fps`);
2. for every part whose keypoints are seen this frame (state SEEN; a held or absent part is not
   drawn: the whole-body frame shows it), its stage gets the keypoints in the crop's frame
   (`PartBox.model_keypoints`) and the frame's crop under the box (`sample_crop`, bilinear) as
   `context`;
3. the stage's colour and alpha are blended into the frame back to front (`layer_order`, `stitch`);
   `draw` runs the stages side by side where the caller gives it a pool and one-thread sessions.
numpy only; the stage calls are the caller's (`run(stage, feeds) -> outputs`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from hpv.errors import ConfigError
from hpv.parts.crops import CROP_SIZE, BoxState, CropTransform, PartBox, PartTracker
from hpv.runtime.stitch import PartLayer, layer_order, sample_crop, stitch

DEFAULT_FPS = 25.0  # the tracker's rate when the caller does not know the sequence's (the app's usual)


@dataclass(frozen=True)
class PartInput:
    """One part stage call of one frame: which part, its stage, where its crop lies, its feeds."""

    part: str
    stage: str
    transform: CropTransform
    feeds: dict[str, np.ndarray]  # "keypoints" [1, 178, 3], "context" [1, 3, S, S] (S: the stage's crop side)


class PartsStep:
    """The parts of one sequence, frame by frame; `reset()` before the next sequence."""

    def __init__(self, part_stages: Mapping[str, str], size: int | Mapping[str, int] = CROP_SIZE,
                 fps: float = DEFAULT_FPS):
        """`size`: the crop side of every stage, or per stage (the face's crop may be larger than
        the hands')."""
        if not part_stages:
            raise ConfigError("PartsStep needs at least one part -> stage")
        self.part_stages = dict(part_stages)
        stages = set(self.part_stages.values())
        self.sizes = {s: int(size) for s in stages} if isinstance(size, int) else {s: int(size[s]) for s in stages
                                                                                    if s in size}
        if set(self.sizes) != stages:
            raise ConfigError(f"PartsStep needs a crop size for each of its stages {sorted(stages)}; "
                              f"got {sorted(self.sizes)}")
        self.tracker = PartTracker(fps, parts=tuple(self.part_stages))

    def reset(self, fps: float | None = None) -> None:
        if fps is not None:
            self.tracker = PartTracker(fps, parts=tuple(self.part_stages))
        self.tracker.reset()

    def track(self, keypoints: np.ndarray, z: np.ndarray | None = None) -> list[PartBox]:
        """The boxes of the parts to draw this frame, back to front (advances the trackers by one
        frame; all a frame with the parts switched off needs). With the keypoints' depth `z` [178]
        a hand behind the body is not drawn (`layer_order`)."""
        kp = np.asarray(keypoints, np.float32)
        boxes = self.tracker.update(kp)
        return [boxes[n] for n in layer_order(kp, boxes, z) if boxes[n].state is BoxState.SEEN]

    def crops(self, keypoints: np.ndarray, frame: np.ndarray, z: np.ndarray | None = None) -> list[PartInput]:
        """The frame's part stage calls, back to front (`track`, then each part's feeds)."""
        kp = np.asarray(keypoints, np.float32)
        calls = []
        for box in self.track(kp, z):
            name = box.part
            t = box.transform(self.sizes[self.part_stages[name]], frame.shape[-1])
            calls.append(PartInput(name, self.part_stages[name], t, {
                "keypoints": box.model_keypoints(kp)[None],
                "context": sample_crop(frame, t)[None].astype(np.float32)}))
        return calls

    @staticmethod
    def groups(calls: list[PartInput], batched: Collection[str] = ()) -> list[tuple[str, list[int]]]:
        """The stage runs a frame's calls take: (stage, indices of its calls), in the calls' order
        of first appearance. The calls of a stage in `batched` (one whose artifact takes any batch
        size) go in one run, their feeds stacked: both hands in one run (measured: 0.83-0.90 of
        two runs' time at 64x64 on ONNX Runtime); other calls one run each."""
        out = []
        for stage in dict.fromkeys(c.stage for c in calls):
            mine = [i for i, c in enumerate(calls) if c.stage == stage]
            out += [(stage, mine)] if stage in batched else [(stage, [i]) for i in mine]
        return out

    @staticmethod
    def _run_group(calls: list[PartInput], group: tuple[str, list[int]],
                   run: Callable[[str, dict[str, np.ndarray]], Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        stage, idx = group
        feeds = {k: np.concatenate([calls[i].feeds[k] for i in idx]) for k in calls[idx[0]].feeds}
        out = run(stage, feeds)
        return [{k: np.asarray(v)[j:j + 1] for k, v in out.items()} for j in range(len(idx))]

    @staticmethod
    def outputs(calls: list[PartInput], run: Callable[[str, dict[str, np.ndarray]], Mapping[str, np.ndarray]],
                batched: Collection[str] = ()) -> list[dict[str, np.ndarray]]:
        """Each call's outputs, from `run(stage, feeds)`, one run per group (`groups`)."""
        results: list[dict[str, np.ndarray] | None] = [None] * len(calls)
        for group in PartsStep.groups(calls, batched):
            for i, o in zip(group[1], PartsStep._run_group(calls, group, run)):
                results[i] = o
        return results

    @staticmethod
    def draw(frame: np.ndarray, calls: list[PartInput],
             run: Callable[[str, dict[str, np.ndarray]], Mapping[str, np.ndarray]], batched: Collection[str] = (),
             *, pool: Executor | None = None,
             run_beside: Callable[[str, dict[str, np.ndarray]], Mapping[str, np.ndarray]] | None = None) -> np.ndarray:
        """`frame` (float32 [3, R, R]) with the calls' outputs blended into it in place, in the
        calls' order; the same frame as `compose(frame, calls, outputs(...), in_place=True)`.

        With a `pool` and a frame of two or more runs (`groups`: the face and the hands), the runs
        go through `run_beside` (sessions of one thread each) at once, the first in this thread
        and the rest in `pool`, and each layer is blended as soon as its run and the layers behind
        it are done: the face is pasted while the hands still run. Measured (`python
        bench/parts_speed.py`): the face and both hands at one thread each side by side took 0.74
        of their runs one after the other at two threads."""
        groups = PartsStep.groups(calls, batched)
        if pool is None or run_beside is None or len(groups) < 2:
            return PartsStep.compose(frame, calls, PartsStep.outputs(calls, run, batched), in_place=True)
        pending = [pool.submit(PartsStep._run_group, calls, g, run_beside) for g in groups[1:]]
        done = {0: PartsStep._run_group(calls, groups[0], run_beside)}
        where = {i: (n, j) for n, (_, idx) in enumerate(groups) for j, i in enumerate(idx)}
        for i, call in enumerate(calls):
            n, j = where[i]
            if n not in done:
                done[n] = pending[n - 1].result()
            o = done[n][j]
            stitch(frame, [PartLayer(call.part, np.asarray(o["color"])[0], np.asarray(o["alpha"])[0], call.transform)],
                   in_place=True)
        return frame

    @staticmethod
    def compose(frame: np.ndarray, calls: list[PartInput], outputs: list[Mapping[str, np.ndarray]], *,
                in_place: bool = False) -> np.ndarray:
        """`frame` with each call's colour and alpha blended over it, in the calls' order (into
        `frame` itself with `in_place`)."""
        layers = [PartLayer(c.part, np.asarray(o["color"])[0], np.asarray(o["alpha"])[0], c.transform)
                  for c, o in zip(calls, outputs, strict=True)]
        return stitch(frame, layers, in_place=in_place)

    def __call__(self, keypoints: np.ndarray, frame: np.ndarray,
                 run: Callable[[str, dict[str, np.ndarray]], Mapping[str, np.ndarray]],
                 z: np.ndarray | None = None) -> tuple[np.ndarray, list[PartInput]]:
        """(stitched frame, the calls made) for one frame."""
        calls = self.crops(keypoints, frame, z)
        return self.compose(frame, calls, self.outputs(calls, run)), calls
