"""Whole-frame time of the web runtime in headless Chromium (onnxruntime-web, wasm EP, 1 thread,
in a Web Worker) against the Python runtime (ONNX Runtime's CPU provider, hpv.runtime.pipeline)
on the same build and the same poses (not a test).

A frame is the whole pipeline: generator (recurrent state carried), k refiner steps, upscaler,
768x768 out, and the part stages stitched in (a build with them: each k timed with and without);
the pose is examples/signer.pose read and normalized once on each side (not timed). Each turn
runs --frames frames of one (side, precision, k, parts); turns alternate web / native for
--rounds rounds after a warm-up, so a slow spell of this shared machine lands on both. Reported:
median and min ms per frame; ratios use medians.

  .venv/bin/python bench/web_speed.py [--build artifacts/onnx-wasm] [--frames 20] [--rounds 4] [--fps 25] [--threads 2]

--build: an onnx-wasm build (compiled there when it has no manifest). The last lines are
  web_over_native: <web / native median ms of the whole frame at k = K (with the parts, where the
                    build has them), the fastest precision on each side>
  web_fps_at_plan: <1000 / web p90 ms of the browser plan: of the levels at k = K (precision, parts
                    on or off), the best expected quality (the shipped quality table, as `hpv
                    schedule` ranks) whose p90 fits 0.85 x 1000 / fps (its headroom), else the fastest>"""

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
    ap.add_argument("--threads", type=int, default=2,
                    help="wasm threads in the page (2 here: 55 ms a frame against 99 ms at 1 thread, fp32 k = 1)")
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

    native, web, ks, drawn = {}, {}, None, (False,)
    for precision in precisions(manifest):
        pipe = CompiledPipeline(loaded, precision)
        poses = conditioning(seq, pipe.conditioning_keys)
        at = [{key: v[t:t + 1] for key, v in poses.items()} for t in range(seq.num_frames)]
        native[precision] = (pipe, at)
        web[precision] = RuntimePage(build, args.pose, precision=precision, threads=args.threads)
        ks = list(range(pipe.max_steps + 1))
        drawn = (True, False) if pipe.has_parts else (False,)
    print(f"build {build} ({manifest.target}, {manifest.pipeline}); web: {next(iter(web.values())).runs_on}; "
          f"native: onnxruntime CPU provider (hpv.runtime), {seq.num_frames}-frame pose {args.pose.name}")

    def native_turn(precision: str, k: int, frames: int, parts: bool) -> list[float]:
        pipe, at = native[precision]
        pipe.reset()
        out = []
        for i in range(frames):
            if i and i % len(at) == 0:
                pipe.reset()
            t0 = time.perf_counter()
            pipe.frame(at[i % len(at)], k, parts=parts)
            out.append((time.perf_counter() - t0) * 1e3)
        return out

    samples: dict[tuple[str, str, int, bool], list[float]] = {}
    levels = [(k, on) for k in ks for on in drawn]
    try:
        for precision in native:  # warm-up turns, not kept
            for k, on in levels:
                native_turn(precision, k, 3, on)
                web[precision].time(k, 3, warmup=2, parts=on)
        for r in range(args.rounds):
            for precision in native:
                for k, on in levels:
                    turns = [("web", lambda: web[precision].time(k, args.frames, warmup=1, parts=on)),
                             ("native", lambda: native_turn(precision, k, args.frames, on))]
                    for side, fn in (turns if r % 2 == 0 else turns[::-1]):
                        samples.setdefault((side, precision, k, on), []).extend(fn())
            print(f"round {r + 1}/{args.rounds} done")
    finally:
        for page in web.values():
            page.close()

    print(f"\n{'side':7} {'precision':9} {'k':>2} {'parts':>5} {'median ms':>10} {'min ms':>8} {'p90 ms':>8}")
    for (side, precision, k, on), s in sorted(samples.items()):
        print(f"{side:7} {precision:9} {k:2d} {'on' if on else 'off':>5} {np.median(s):10.1f} {np.min(s):8.1f} "
              f"{np.percentile(s, 90):8.1f}")
    top, full = ks[-1], drawn[0]
    med = {key: float(np.median(s)) for key, s in samples.items()}
    for precision in native:
        for on in drawn:
            print(f"web_over_native_{precision}_k{top}{'_parts' if on else ''}: "
                  f"{med['web', precision, top, on] / med['native', precision, top, on]:.2f}")
    web_best = min(native, key=lambda p: med["web", p, top, full])
    nat_best = min(native, key=lambda p: med["native", p, top, full])

    # The browser plan, ranked as hpv schedule ranks: expected quality from the shipped table and
    # the artifacts' verification PSNR; among those whose p90 fits the budget, the best.
    from hpv.profiles.quality import quality_record

    def expected(precision: str, on: bool) -> float:
        used = [a for a in manifest.artifacts if a.precision == precision
                and (on or a.stage not in manifest.part_stages.values())]
        q = quality_record(manifest.pipeline, top, min(a.verification.psnr_db for a in used),
                           without_parts=bool(manifest.part_stages) and not on)
        return q.expected_psnr_db if q is not None else float("-inf")

    budget = args.headroom * 1000 / args.fps
    p90 = {(p, on): float(np.percentile(samples["web", p, top, on], 90)) for p in native for on in drawn}
    fitting = [lv for lv in p90 if p90[lv] <= budget]
    plan = max(fitting, key=lambda lv: expected(*lv)) if fitting else min(p90, key=p90.get)
    print(f"browser plan at {args.fps:g} fps (budget {budget:.1f} ms, k = {top}): {plan[0]}"
          f"{' +parts' if plan[1] else ''}, p90 {p90[plan]:.1f} ms, expected {expected(*plan):.2f} dB"
          + ("" if fitting else " (nothing fits: the fastest is shown)"))
    print(f"web_over_native: {med['web', web_best, top, full] / med['native', nat_best, top, full]:.2f}")
    print(f"web_fps_at_plan: {1000 / p90[plan]:.1f}")

if __name__ == "__main__":
    main()
