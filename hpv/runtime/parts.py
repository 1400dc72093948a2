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
3. the stage's colour and alpha are blended into the frame back to front (`layer_order`, `stitch`).
numpy only; the stage calls are the caller's (`run(stage, feeds) -> outputs`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
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
    def outputs(calls: list[PartInput], run: Callable[[str, dict[str, np.ndarray]], Mapping[str, np.ndarray]],
                batched: Collection[str] = ()) -> list[dict[str, np.ndarray]]:
        """Each call's outputs, from `run(stage, feeds)`. The calls of a stage in `batched` (one
        whose artifact takes any batch size) go in one call of that stage, their feeds stacked:
        both hands in one run (measured: 0.83-0.90 of two runs' time at 64x64 on ONNX Runtime)."""
        results: list[dict[str, np.ndarray] | None] = [None] * len(calls)
        for stage in dict.fromkeys(c.stage for c in calls):
            mine = [i for i, c in enumerate(calls) if c.stage == stage]
            groups = [mine] if stage in batched else [[i] for i in mine]
            for group in groups:
                feeds = {k: np.concatenate([calls[i].feeds[k] for i in group]) for k in calls[group[0]].feeds}
                out = run(stage, feeds)
                for j, i in enumerate(group):
                    results[i] = {k: np.asarray(v)[j:j + 1] for k, v in out.items()}
        return results

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
