"""Where the part stages lose, in the hands' and the face's boxes at 768 (not a test).

  python bench/parts_ceiling.py --artifacts artifacts/onnx-cpu [--sequences 6] [--frames 10] [--sizes 64,96,128]

On the test split (as `bench/quality.py`), the build's fp32 default pipeline at its K, frame by
frame, with the part stages' outputs swapped before the stitch:

  model                      the build as it ships
  model colour, window alpha the model's colour, its alpha replaced by the fixed edge taper alone
  truth colour, model alpha  the ground truth sampled into the crop, the model's alpha: what a
                             perfect colour would reach with the alpha the model learned
  context, model alpha       the frame under the crop (what the part stage is given), model alpha

then, for each crop size in --sizes, the ceiling of a part stage at that size: the ground truth
sampled into crops of that size (the same tracked boxes, `sample_crop`) and stitched with the edge
taper alone (`oracle S`). A stage's figure can approach its size's ceiling but not pass it: a crop
size whose ceiling is under a target cannot meet it, whatever the training.
It also prints each part stage's mean alpha on the skin (the ground truth's, in its crops) and
elsewhere: a low alpha on the skin shows the whole-body frame through where the stage's colour is
worse. Ends with `ceiling_<part>_psnr_db_at_<S>: X` lines and `model_<part>_psnr_db: X`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from hpv.artifacts.manifest import load_manifest
from hpv.metrics import LooksAccumulator
from hpv.pose.conditioning import DEPTH
from hpv.runtime.parts import PartsStep
from hpv.runtime.pipeline import CompiledPipeline
from hpv.runtime.stitch import sample_crop
from hpv.stages.part_gen import edge_window
from hpv.training.config import CONFIGS
from hpv.training.evaluate import eval_cases, poses_of

OUT_RES = 768
SKIN = lambda crop: crop[0] > crop[1] + 0.15  # noqa: E731  the signer's skin: red well over green (the screen)
SWAPS = {  # name -> (colour source, alpha source)
    "model": ("model", "model"),
    "model colour, window alpha": ("model", "window"),
    "truth colour, model alpha": ("truth", "model"),
    "context, model alpha": ("context", "model"),
}


def swapped(calls, outs, truth: np.ndarray, colour: str, alpha: str) -> list[dict]:
    new = []
    for call, out in zip(calls, outs, strict=True):
        size = out["color"].shape[-1]
        c = {"model": out["color"], "context": call.feeds["context"],
             "truth": sample_crop(truth, call.transform)[None]}[colour]
        a = out["alpha"] if alpha == "model" else edge_window(size).numpy()
        new.append({"color": np.asarray(c, np.float32), "alpha": np.asarray(a, np.float32)})
    return new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, required=True, metavar="BUILD",
                    help="a default-pipeline build (hpv-compile --target onnx-cpu)")
    ap.add_argument("--sequences", type=int, default=6)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--sizes", default="64,96,128", help="crop sizes whose ceiling to measure")
    ap.add_argument("--config", default="cpu")
    args = ap.parse_args()
    t0 = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    cases = eval_cases(CONFIGS.get(args.config).data, "test", args.sequences, args.frames, OUT_RES)
    pipe = CompiledPipeline(args.artifacts, "fp32", 1, load_manifest(args.artifacts))
    if not pipe.has_parts:
        raise SystemExit(f"{args.artifacts}: its pipeline has no part stages")
    k = pipe.max_steps
    rows = {**{n: LooksAccumulator() for n in SWAPS}, **{f"oracle {s}": LooksAccumulator() for s in sizes}}
    compose = PartsStep.compose
    alpha_on = {s: [] for s in pipe.part_sizes}  # per crop: (mean alpha on the skin, elsewhere)
    run = lambda stage, feeds: pipe.part_runners[stage].run(feeds)  # noqa: E731
    for case in cases:
        cond = poses_of(case.seq, pipe.conditioning_keys)
        pipe.reset(fps=case.seq.fps)
        # the pipeline's own part calls, made here on its body frame (the boxes track alike)
        model = PartsStep(pipe.pipeline.part_stages, pipe.part_sizes, case.seq.fps)
        oracles = {s: PartsStep(pipe.pipeline.part_stages, s, case.seq.fps) for s in sizes}
        frames = {n: [] for n in rows}
        for t in range(case.seq.num_frames):
            pose = {key: v[t:t + 1] for key, v in cond.items()}
            body = np.array(pipe.frame(pose, k, parts=False)[0], np.float32)
            truth, kp = case.target[t], pose["keypoints"][0]
            z = pose[DEPTH][0] if DEPTH in pose else None
            calls = model.crops(kp, body, z)
            outs = PartsStep.outputs(calls, run, pipe._batched_parts)
            for call, out in zip(calls, outs, strict=True):  # where the stage lets the frame show through
                skin = SKIN(sample_crop(truth, call.transform))
                if skin.sum() > 20:
                    alpha_on[call.stage].append((out["alpha"][0, 0][skin].mean(), out["alpha"][0, 0][~skin].mean()))
            for name, (c, a) in SWAPS.items():
                frames[name].append(compose(body.copy(), calls, swapped(calls, outs, truth, c, a)))
            for s, step in oracles.items():
                o_calls = step.crops(kp, body, z)
                window = edge_window(s).numpy()
                o_outs = [{"color": sample_crop(truth, c.transform)[None], "alpha": window} for c in o_calls]
                frames[f"oracle {s}"].append(compose(body.copy(), o_calls, o_outs))
        for name, acc in rows.items():
            acc.add(np.stack(frames[name]), case.target, case.keypoints)
    print(f"test split: {len(cases)} sequences, {sum(len(c.target) for c in cases)} frames at {OUT_RES}, "
          f"{args.artifacts} fp32 k = {k}, crops {pipe.part_sizes}")
    head = f"{'what is stitched':28} {'person':>7} {'hands':>6} {'face':>6} {'IoU':>7}"
    print(head + "\n" + "-" * len(head))
    results = {n: acc.result() for n, acc in rows.items()}
    for name, m in results.items():
        print(f"{name:28} {m.person_psnr_db:7.2f} {m.hand_psnr_db:6.2f} {m.face_psnr_db:6.2f} {m.silhouette_iou:7.4f}")
    for stage, pairs in alpha_on.items():
        if pairs:
            on, off = np.mean(pairs, axis=0)
            print(f"{stage}: mean alpha {on:.2f} on the skin, {off:.2f} elsewhere ({len(pairs)} crops)")
    print(f"run time {time.perf_counter() - t0:.0f} s")
    for s in sizes:
        m = results[f"oracle {s}"]
        print(f"ceiling_hand_psnr_db_at_{s}: {m.hand_psnr_db:.2f}")
        print(f"ceiling_face_psnr_db_at_{s}: {m.face_psnr_db:.2f}")
    print(f"model_hand_psnr_db: {results['model'].hand_psnr_db:.2f}")
    print(f"model_face_psnr_db: {results['model'].face_psnr_db:.2f}")


if __name__ == "__main__":
    main()
