"""Image quality of the trained default pipeline (k = 0..K refinement steps) against the trained
baseline, on the held-out test split, at the 768x768 output (not a test).

  python bench/quality.py [--runs runs] [--config cpu] [--sequences 6] [--frames 12]

Weights: the default pipeline's shipped weights (`hpv train --install` put them in the package),
unless --runs holds a newer default run; the baseline's from `RUNS/baseline/weights/` (made by
`hpv train --pipeline baseline --config cpu --out RUNS`; trained here if missing). Data: the same
config's test split (sequences neither pipeline trained on), from the run folder's data cache.
Each row runs the PyTorch pipeline frame by frame, state carried, and compares every output frame
with the ground truth: PSNR, SSIM, and flicker (frame-to-frame change of the output minus that of
the ground truth; positive = jitter). Ends with `psnr_default_minus_baseline_db: <value>` (default
at k = K minus baseline)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hpv.pipelines import PIPELINES
from hpv.reference import load_pipeline
from hpv.training.cascade import shared_resolutions, train_pipeline
from hpv.training.config import CONFIGS
from hpv.training.data import Sequence, build_dataset
from hpv.training.evaluate import evaluate_pipeline


def weights_in(folder: Path) -> dict[str, str]:
    return {p.name.split("-")[0]: str(p) for p in sorted(folder.glob("*.safetensors"))}


def write_table(rows, source: str) -> None:
    from hpv.atomic import write_text
    from hpv.profiles.quality import QUALITY_TABLE, load_quality_table

    table = load_quality_table()
    for r in rows:
        entry = table.setdefault(r.pipeline, {"source": source, "steps": {}})
        entry["source"] = source
        entry["steps"][str(r.steps)] = {"psnr_db": round(r.psnr_db, 3), "ssim": round(r.ssim, 4),
                                        "flicker": round(r.flicker, 5)}
    write_text(QUALITY_TABLE, json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {QUALITY_TABLE}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--default-run", action="store_true", help="default weights from RUNS/default, not the package")
    ap.add_argument("--sequences", type=int, default=6, help="test sequences to score (first by id)")
    ap.add_argument("--frames", type=int, default=12, help="frames per test sequence (from the start)")
    ap.add_argument("--default-only", action="store_true",
                    help="score the default pipeline's k = 0..K only (no baseline, no final comparison line)")
    ap.add_argument("--write-table", action="store_true",
                    help="write the figures to the package's quality table (hpv/stages/weights/quality.json), "
                         "which `hpv profile` joins with each build's verification PSNR")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = CONFIGS.get(args.config)
    data = build_dataset(cfg.data, shared_resolutions("default", "baseline"), cache_dir=args.runs / "data-cache")
    test = [Sequence(s.id, {r: a[:args.frames] for r, a in s.pose.items()},
                     {r: a[:args.frames] for r, a in s.target.items()})
            for s in sorted(data.test, key=lambda s: s.id)[:args.sequences]]
    print(f"test split: {len(test)} sequences, {sum(s.num_frames for s in test)} frames "
          f"({', '.join(s.id for s in test)})")

    base_dir = args.runs / "baseline" / "weights"
    if args.default_only:
        pass
    elif not list(base_dir.glob("*.safetensors")):
        print(f"no baseline weights in {base_dir}: training the baseline ({args.config} config)")
        train_pipeline("baseline", cfg, args.runs / "baseline", dataset=data)
    baseline = None if args.default_only else load_pipeline(PIPELINES.get("baseline"), weights_in(base_dir))
    default_weights = weights_in(args.runs / "default" / "weights") if args.default_run else None
    default = load_pipeline(PIPELINES.get("default"), default_weights)
    for lp in (default, baseline) if baseline else (default,):
        print(f"{lp.pipeline.name}: " + ", ".join(f"{n} {w[:12]}" for n, w in lp.weights.items()))

    rows = [evaluate_pipeline(baseline, test, 0)] if baseline else []
    rows += [evaluate_pipeline(default, test, k) for k in range(default.pipeline.max_steps + 1)]
    print(f"\n{'pipeline':10} {'k':>2} {'PSNR dB':>8} {'SSIM':>7} {'flicker':>8}")
    for r in rows:
        k = "-" if r.pipeline == "baseline" else str(r.steps)
        print(f"{r.pipeline:10} {k:>2} {r.psnr_db:8.2f} {r.ssim:7.4f} {r.flicker:+8.4f}")
    steps = rows[1:] if baseline else rows
    gains = [b.psnr_db - a.psnr_db for a, b in zip(steps, steps[1:])]
    print("\nPSNR change per refinement step: " + ", ".join(f"k{k}->{k + 1} {g:+.2f} dB" for k, g in enumerate(gains)))
    if any(g <= 0 for g in gains):
        print("note: not every refinement step improves PSNR (see the steps with a change <= 0)")
    print(f"run time {time.perf_counter() - t0:.0f} s")
    if args.write_table:
        write_table(rows, f"bench/quality.py --sequences {args.sequences} --frames {args.frames} "
                          f"(test split, {len(test)} sequences x {args.frames} frames, at 768x768)")
    if baseline is None:
        return
    print(f"psnr_default_minus_baseline_db: {steps[-1].psnr_db - rows[0].psnr_db:.2f}")


if __name__ == "__main__":
    main()
