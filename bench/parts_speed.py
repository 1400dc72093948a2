"""The parts' resampling (`hpv.runtime.stitch._resample`: a crop pasted into the 768 frame, the
frame read under a box) on this CPU, two ways of one function (not a test):
  dense    the two interpolation matrices' products, Wy @ src @ Wx^T (the code before)
  gather   two gathers an axis and their weighted sum (hpv's)
Both are checked equal first. Then each size alone, in turns (--rounds rounds of --runs calls),
and whole frames of a build's pipeline at fp32 k = 1 with the parts, the two swapped in blocks
of --block frames (the first of each block not counted: OpenBLAS's threads spin for a while
after a product, which would land on the next block's first frame). The last line is
  gather_over_dense_frame: <median ms ratio>

  .venv/bin/python bench/parts_speed.py --build artifacts/onnx-cpu [--rounds 7] [--runs 50] [--blocks 12]"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hpv.runtime import stitch


def dense(src: np.ndarray, ty, tx, scratch=None) -> np.ndarray:
    def matrix(taps, size: int) -> np.ndarray:
        i0, w = taps
        m = np.zeros((len(i0), size + 2), np.float32)  # columns 0 and size + 1 catch the taps outside
        n = np.arange(len(i0))
        m[n, i0 + 1] += w[0]
        m[n, i0 + 2] += w[1]
        return m[:, 1:-1]

    return matrix(ty, src.shape[1]) @ src @ matrix(tx, src.shape[2]).T


GATHER = stitch._resample
# (source side, output side, channels): a hand's 64 crop and the 96 face pasted at about twice
# their size (premultiplied colour + alpha), and the frame read under them.
SIZES = [(64, 130, 4), (96, 200, 4), (130, 64, 3), (200, 96, 3)]


def alone(rounds: int, runs: int) -> None:
    rng = np.random.default_rng(0)
    for side, n, c in SIZES:
        src = rng.random((c, side, side), dtype=np.float32)
        taps = stitch._taps((np.arange(n) + 0.5) * side / n - 0.5 + 0.3, side)
        err = float(np.abs(dense(src, taps, taps) - GATHER(src, taps, taps)).max())
        if not err < 1e-5:
            raise SystemExit(f"gather and dense differ by {err} at {side} -> {n}")
        ms = {"dense": [], "gather": []}
        for _ in range(rounds):
            for name, f in (("dense", dense), ("gather", GATHER)):
                t0 = time.perf_counter()
                for _ in range(runs):
                    f(src, taps, taps)
                ms[name].append((time.perf_counter() - t0) / runs * 1e3)
        d, g = np.median(ms["dense"]), np.median(ms["gather"])
        print(f"{c} x {side}^2 -> {n}^2: dense {d:.3f} ms, gather {g:.3f} ms ({g / d:.2f})")


def in_blocks(ways: dict, poses: list[dict], blocks: int, block: int) -> dict[str, float]:
    """Median ms of a whole frame (k = 1, parts on) each way: `ways` name -> (pipeline, setup)."""
    ms = {name: [] for name in ways}
    i = 0
    for b in range(blocks + 1):  # block 0 warms up
        for name, (pipe, setup) in ways.items():
            setup()
            for j in range(block):
                t0 = time.perf_counter()
                pipe.frame(poses[i % len(poses)], 1, parts=True)
                if b and j:
                    ms[name].append((time.perf_counter() - t0) * 1e3)
                i += 1
    return {name: float(np.median(v)) for name, v in ms.items()}


def stage_runs(pipe, poses: list[dict], rounds: int, runs: int) -> None:
    """A frame's part stage runs alone: one after the other at two threads vs side by side at one."""
    from hpv.runtime.parts import PartsStep

    pipe.reset()
    frame = pipe.frame(poses[0], 1, parts=False)[0]
    calls = pipe.parts[0].crops(poses[1]["keypoints"][0], frame)
    run = lambda stage, feeds: pipe.part_runners[stage].run(feeds)  # noqa: E731
    beside = lambda stage, feeds: pipe._beside[stage].run(feeds)  # noqa: E731
    ms = {"sequential": [], "beside": []}
    for _ in range(rounds):
        for name in ms:
            t0 = time.perf_counter()
            for _ in range(runs):
                if name == "beside":
                    PartsStep.draw(frame.copy(), calls, run, pipe._batched_parts, pool=pipe._pool, run_beside=beside)
                else:
                    PartsStep.draw(frame.copy(), calls, run, pipe._batched_parts)
            ms[name].append((time.perf_counter() - t0) / runs * 1e3)
    s, b = np.median(ms["sequential"]), np.median(ms["beside"])
    print(f"{', '.join(c.part for c in calls)} drawn: sequential {s:.2f} ms, side by side {b:.2f} ms ({b / s:.2f})")


def frames(build: str, rounds: int, runs: int, blocks: int, block: int) -> tuple[float, float]:
    from hpv.calibration import HELDOUT_SEED, PoseSource
    from hpv.runtime.build import load_build
    from hpv.runtime.pipeline import CompiledPipeline

    loaded = load_build(build)
    beside, sequential = CompiledPipeline(loaded, "fp32", 1), CompiledPipeline(loaded, "fp32", 1, beside=False)
    if beside._pool is None:
        raise SystemExit(f"{build}: its pipeline has fewer than two part stages to run side by side")
    poses = PoseSource(seed=HELDOUT_SEED, frames=8).rendered(beside.conditioning_keys)
    pose_at = [{r: p[t:t + 1] for r, p in poses.items()} for t in range(8)]
    for pipe in (beside, sequential):
        pipe.reset()
    same = [float(np.abs(beside.frame(p, 1) - sequential.frame(p, 1)).max()) for p in pose_at]
    if not max(same) == 0.0:
        raise SystemExit(f"side by side and sequential frames differ by {max(same)}")
    stage_runs(beside, pose_at, rounds, max(1, runs // 5))
    keep = lambda f: lambda: setattr(stitch, "_resample", f)  # noqa: E731
    try:
        m = in_blocks({"dense": (beside, keep(dense)), "gather": (beside, keep(GATHER))}, pose_at, blocks, block)
    finally:
        stitch._resample = GATHER
    print(f"whole frame (fp32, k = 1, parts), {(block - 1) * blocks} frames each: dense {m['dense']:.2f} ms, "
          f"gather {m['gather']:.2f} ms")
    n = in_blocks({"sequential": (sequential, lambda: None), "beside": (beside, lambda: None)}, pose_at, blocks, block)
    print(f"whole frame (fp32, k = 1, parts): sequential {n['sequential']:.2f} ms, side by side {n['beside']:.2f} ms")
    return m["gather"] / m["dense"], n["beside"] / n["sequential"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="artifacts/onnx-cpu", help="an onnx-cpu build of the default pipeline")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--block", type=int, default=6)
    args = ap.parse_args()
    alone(args.rounds, args.runs)
    gather, beside = frames(args.build, args.rounds, args.runs, args.blocks, args.block)
    print(f"gather_over_dense_frame: {gather:.3f}")
    print(f"beside_over_sequential_frame: {beside:.3f}")


if __name__ == "__main__":
    main()
