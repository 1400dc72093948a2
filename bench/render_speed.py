"""Sustained frame rate of `hpv render` on this CPU: the default pipeline (or --pipeline, e.g. body:
its whole-body frame without the parts) at the scheduler's plan against the baseline pipeline
(not a test).

1. Builds (or reuses, under --work) the pipeline for onnx-cpu and the baseline pipeline
   (fp32; its speed does not depend on its weights), with the project's own verbs.
2. Profiles the default build on this machine (`hpv profile`) and lets the scheduler plan for
   --fps (`hpv schedule --json`).
3. Runs `hpv render --no-pace` on the same synthetic pose sequence for both pipelines, in turns
   (default, baseline, default, baseline, ...) for --rounds rounds, each a fresh process, so a
   slow spell of this shared machine hits both alike. Sustained fps = frames / wall time of the
   render (pose drawing, inference, MP4 encoding included; process start excluded).
The last line is `render_fps_<pipeline>: <median fps of the pipeline at its plan>`.

  .venv/bin/python bench/render_speed.py [--pipeline body] [--fps 25] [--frames 60] [--rounds 3] [--work bench-out]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HPV = [sys.executable, "-m", "hpv.cli.main"]


def hpv(*args: str, capture: bool = False) -> str:
    done = subprocess.run([*HPV, *args], check=True, text=True, capture_output=capture)
    return done.stdout if capture else ""


def build(work: Path, pipeline: str, *extra: str) -> Path:
    out = work / pipeline
    folder = out / "onnx-cpu"
    if not (folder / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "hpv.cli.compile", "--target", "onnx-cpu", "--pipeline", pipeline,
                        "--out", str(out), *extra], check=True)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", default="default", help="the pipeline to time against the baseline")
    ap.add_argument("--fps", type=float, default=15.0, help="frame rate the scheduler plans the pipeline for")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("bench-out"))
    args = ap.parse_args()

    name = args.pipeline
    default = build(args.work, name)
    baseline = build(args.work, "baseline", "--precision", "fp32")
    profile = args.work / f"profile-{name}.json"
    hpv("profile", str(default), "--out", str(profile), "--runs", "30", "--pipeline-runs", "10")
    plan = json.loads(hpv("schedule", str(profile), "--fps", str(args.fps), "--json", capture=True))
    chosen = plan["plans"][0]
    print(f"plan at {args.fps:g} fps: {json.dumps(chosen['config'])}\n  {chosen['reason']}")

    runs = {
        name: ["render", "--artifacts", str(default), "--profile", str(profile), "--fps", str(args.fps)],
        "baseline": ["render", "--artifacts", str(baseline), "--steps", "0"],
    }
    fps: dict[str, list[float]] = {run: [] for run in runs}
    for r in range(args.rounds):
        for run, cmd in runs.items():
            report = json.loads(hpv(*cmd, "--frames", str(args.frames), "--no-pace", "--json",
                                    "-o", str(args.work / f"{run}.mp4"), capture=True))
            fps[run].append(report["achieved_fps"])
            print(f"round {r + 1} {run:8s}: {report['achieved_fps']:6.2f} fps, {report['precision']}, "
                  f"k {report['k_histogram']}, frame p50 {report['frame_ms_p50']} ms, missed {report['missed']}")
    med = {run: statistics.median(v) for run, v in fps.items()}
    for run, v in fps.items():
        print(f"{run:8s} sustained fps: median {med[run]:.2f}, min {min(v):.2f}, max {max(v):.2f} over {len(v)} runs")
    print(f"ratio {name}/baseline: {med[name] / med['baseline']:.2f}")
    print(f"render_fps_{name}: {med[name]:.2f}")


if __name__ == "__main__":
    main()
