"""Whole-frame time of the web runtime in headless Chromium (onnxruntime-web, wasm EP, 1 thread,
in a Web Worker) against the Python runtime (ONNX Runtime's CPU provider, hpv.runtime.pipeline)
on the same build and the same poses (not a test).

A frame is the whole pipeline: generator (recurrent state carried), k refiner steps, upscaler,
768x768 out; the pose is examples/signer.pose read and normalized once on each side (not timed).
Each turn runs --frames frames of one (side, precision, k); turns alternate web / native for
--rounds rounds after a warm-up, so a slow spell of this shared machine lands on both. Reported:
median and min ms per frame; ratios use medians.

  .venv/bin/python bench/web_speed.py [--build artifacts/onnx-wasm] [--frames 20] [--rounds 4] [--fps 25] [--threads 1]

--build: an onnx-wasm build (compiled there when it has no manifest). The last lines are
  web_over_native: <web / native median ms at k = K, the fastest precision on each side>
  web_fps_at_plan: <1000 / web p90 ms of the browser plan: the fastest precision at k = K whose
                    p90 fits 0.85 x 1000 / fps (hpv schedule's headroom), else the fastest at k = K>"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=Path, default=ROOT / "artifacts" / "onnx-wasm")
    ap.add_argument("--pose", type=Path, default=ROOT / "examples" / "signer.pose")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--headroom", type=float, default=0.85)
    ap.add_argument("--threads", type=int, default=1, help="wasm threads in the page (1 was fastest on 2 shared cores)")
    ap.add_argument("--small", action="store_true", help="compile a missing build at --small size (a smoke run)")
    args = ap.parse_args()

    from hpv.artifacts.manifest import load_manifest
    from hpv.compiler.build import CompileRequest, compile
    from hpv.compiler.web.page import RuntimePage
    from hpv.pose.conditioning import conditioning
    from hpv.pose.reader import load_sequence
    from hpv.runtime.build import load_build
    from hpv.runtime.pipeline import CompiledPipeline, precisions

    build = args.build
    if not (build / "manifest.json").is_file():
        t0 = time.perf_counter()
        build = compile(CompileRequest(target="onnx-wasm", out=build.parent, small=args.small)).folder
        print(f"compiled {build} in {time.perf_counter() - t0:.0f} s")
    manifest = load_manifest(build)
    loaded = load_build(build, manifest)
    seq = load_sequence(args.pose)

    native, web, ks = {}, {}, None
    for precision in precisions(manifest):
        pipe = CompiledPipeline(loaded, precision)
        poses = conditioning(seq, pipe.conditioning_keys)
        at = [{key: v[t:t + 1] for key, v in poses.items()} for t in range(seq.num_frames)]
        native[precision] = (pipe, at)
        web[precision] = RuntimePage(build, args.pose, precision=precision, threads=args.threads)
        ks = list(range(pipe.max_steps + 1))
    print(f"build {build} ({manifest.target}, {manifest.pipeline}); web: {next(iter(web.values())).runs_on}; "
          f"native: onnxruntime CPU provider (hpv.runtime), {seq.num_frames}-frame pose {args.pose.name}")

    def native_turn(precision: str, k: int, frames: int) -> list[float]:
        pipe, at = native[precision]
        pipe.reset()
        out = []
        for i in range(frames):
            if i and i % len(at) == 0:
                pipe.reset()
            t0 = time.perf_counter()
            pipe.frame(at[i % len(at)], k)
            out.append((time.perf_counter() - t0) * 1e3)
        return out

    samples: dict[tuple[str, str, int], list[float]] = {}
    try:
        for precision in native:  # warm-up turns, not kept
            for k in ks:
                native_turn(precision, k, 3)
                web[precision].time(k, 3, warmup=2)
        for r in range(args.rounds):
            for precision in native:
                for k in ks:
                    turns = [("web", lambda: web[precision].time(k, args.frames, warmup=1)),
                             ("native", lambda: native_turn(precision, k, args.frames))]
                    for side, fn in (turns if r % 2 == 0 else turns[::-1]):
                        samples.setdefault((side, precision, k), []).extend(fn())
            print(f"round {r + 1}/{args.rounds} done")
    finally:
        for page in web.values():
            page.close()

    print(f"\n{'side':7} {'precision':9} {'k':>2} {'median ms':>10} {'min ms':>8} {'p90 ms':>8}")
    for (side, precision, k), s in sorted(samples.items()):
        print(f"{side:7} {precision:9} {k:2d} {np.median(s):10.1f} {np.min(s):8.1f} {np.percentile(s, 90):8.1f}")
    top = ks[-1]
    med = {key: float(np.median(s)) for key, s in samples.items()}
    web_best = min(native, key=lambda p: med["web", p, top])
    nat_best = min(native, key=lambda p: med["native", p, top])
    for precision in native:
        print(f"web_over_native_{precision}_k{top}: {med['web', precision, top] / med['native', precision, top]:.2f}")
    budget = args.headroom * 1000 / args.fps
    p90 = {p: float(np.percentile(samples["web", p, top], 90)) for p in native}
    fitting = [p for p in native if p90[p] <= budget]
    plan = min(fitting or native, key=lambda p: p90[p])
    print(f"browser plan at {args.fps:g} fps (budget {budget:.1f} ms, k = {top}): {plan}, p90 {p90[plan]:.1f} ms"
          + ("" if fitting else " (does not fit: the fastest is shown)"))
    print(f"web_over_native: {med['web', web_best, top] / med['native', nat_best, top]:.2f}")
    print(f"web_fps_at_plan: {1000 / p90[plan]:.1f}")


if __name__ == "__main__":
    main()
