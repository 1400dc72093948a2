"""How the trained pipelines look, on held-out sequences, at the 768x768 output (not a test).

  python bench/quality.py [--sequences 8] [--frames 12] [--strip bench-out/quality-strip.png] [--write-table]

Scores the default pipeline at every k = 0..K, the parts pipeline (the default's frame with both
hands and the face drawn apart at 64x64 and stitched in, issue 14) at every k, and the baseline on
the test split of the `cpu` data
config (sequences no stage trained on: real fingerspelling files and synthetic signing whose arms
rest with the hands below the frame, go to the face, cross, or reach wide), against the procedural
signer's ground truth, on what a viewer sees (`hpv.metrics`):

  IoU      silhouette IoU through the app's chroma key
  person   PSNR / SSIM over both silhouettes' union, dilated 4 px
  hands    PSNR inside the hands' boxes (from the hand keypoints); face: the face's box
  flicker  frame-to-frame change of the output minus the truth's, over the person
  looks    (person + hands) / 2: the figure the scheduler ranks configurations by
  full     full-frame PSNR, background included (for comparison only: it hides missing arms)

Writes a PNG strip (keypoint fields | ground truth | default k = 0 | default best k | baseline |
parts best k | hand close-ups of the default and of the parts), rows including a rest pose with the hands below the frame, hands at the face and
real files: look at it before you quote a figure. Ends with the figures of the best configuration
(pipeline, parts on or off, k): `silhouette_iou`, `person_psnr_db`, `hand_psnr_db`, `face_psnr_db`.

With `--artifacts BUILD` (an onnx-cpu or tflite-cpu build of the default or the parts pipeline,
e.g. artifacts/onnx-cpu from `hpv-compile --target onnx-cpu`), every precision of the build is
scored at every k too (a parts build with its parts on and off), through the runtime that ships
it, and the closing lines are the build's best fp32 configuration; without it, the PyTorch
pipelines'.

Weights: the package's shipped ones for the default (or --default-run: RUNS/default/weights) and the
part stages (or --parts-run: RUNS/parts/weights); the baseline's from RUNS/baseline/weights, trained there first when missing (`--baseline-scale` scales
its step counts)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hpv.pipelines import PIPELINES
from hpv.reference import load_pipeline
from hpv.training.config import CONFIGS
from hpv.training.evaluate import (EvalCase, PipelineQuality, bicubic_frames, build_frames, eval_cases,
                                   evaluate_frames, evaluate_pipeline)

OUT_RES = 768
TILE = 256  # strip tile side


def weights_in(folder: Path) -> dict[str, str]:
    return {p.name.split("-")[0]: str(p) for p in sorted(folder.glob("*.safetensors"))}


def best_k(rows: list[PipelineQuality]) -> PipelineQuality:
    """Best looks; ties within 0.01 dB go to the cheaper (fewer steps)."""
    top = max(r.looks_db for r in rows)
    return min((r for r in rows if r.looks_db >= top - 0.01), key=lambda r: r.steps)


def strip_picks(cases: list[EvalCase]) -> dict[str, dict[int, None]]:
    """Frames for the strip: a rest pose (hands below the frame), hands at the face, crossing or
    wide arms, and two real files."""
    picks: dict[str, dict[int, None]] = {}
    order = ("rest", "face", "cross", "wide", "mixed", "sign")
    synth = sorted((c for c in cases if c.id.startswith("synthetic/")),
                   key=lambda c: ("#" in c.id, order.index(s) if (s := c.id.split("#")[0].rsplit("/", 1)[-1]) in order else 9))
    real = [c for c in cases if not c.id.startswith("synthetic/")]
    for c in synth[:3] + real[:2]:
        picks[c.id] = {min(6, c.seq.num_frames - 1): None}
    return picks


def _tile(img: np.ndarray) -> np.ndarray:
    """[3,H,W] in [0,1] or [H,W,3] uint8 -> uint8 TILE x TILE (area-averaged when larger)."""
    a = img if img.dtype == np.uint8 else (np.clip(img.transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
    h = a.shape[0]
    if h > TILE and h % TILE == 0:
        f = h // TILE
        return a.reshape(TILE, f, TILE, f, 3).mean(axis=(1, 3)).astype(np.uint8)
    return np.repeat(np.repeat(a, TILE // h, axis=0), TILE // h, axis=1) if h < TILE else a


def _fields_image(kp: np.ndarray) -> np.ndarray:
    from hpv.pose.fields import FIELD_GROUPS, keypoint_fields

    f = keypoint_fields(kp[None], 128)[0]
    pal = np.random.default_rng(7).uniform(0.25, 1.0, (len(FIELD_GROUPS), 3))
    return (255 * (1 - 0.9 * np.clip(np.einsum("chw,ck->hwk", f, pal), 0, 1))).astype(np.uint8)


def _hand_crop(frame: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """The larger visible hand box of a [3,768,768] frame, as a TILE tile."""
    from hpv.metrics import part_boxes
    from hpv.pose.keypoints import OFFSETS

    boxes = [part_boxes(kp[None], range(OFFSETS[c], OFFSETS[c] + 21), OUT_RES)[0]
             for c in ("RIGHT_HAND_LANDMARKS", "LEFT_HAND_LANDMARKS")]
    boxes = [b for b in boxes if b[0] >= 0]
    if not boxes:
        return np.full((TILE, TILE, 3), 128, np.uint8)  # no hand in the frame
    x0, y0, x1, y1 = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    crop = frame[:, y0:y1, x0:x1]
    side = max(crop.shape[1:])
    pad = np.zeros((3, side, side), np.float32)
    pad[:, :crop.shape[1], :crop.shape[2]] = crop
    idx = np.minimum((np.arange(TILE) * side / TILE).astype(int), side - 1)
    return _tile(pad[:, idx][:, :, idx])


def write_strip(path: Path, cases: list[EvalCase], picks, columns: list[tuple[str, dict]]) -> None:
    from PIL import Image, ImageDraw

    from hpv.atomic import write_bytes

    by_id = {c.id: c for c in cases}
    hands = [columns[1]] + ([columns[-1]] if len(columns) > 2 else [])  # the default's best k and the last column
    heads = ["keypoint fields", "ground truth", *(n for n, _ in columns), "hand: truth", *(f"hand: {n}" for n, _ in hands)]
    rows = []
    for cid, frames in picks.items():
        c = by_id[cid]
        for t in frames:
            tiles = [_tile(_fields_image(c.keypoints[t])), _tile(c.target[t])]
            tiles += [_tile(kept[cid][t]) for _, kept in columns]
            tiles += [_hand_crop(c.target[t], c.keypoints[t])] + [_hand_crop(kept[cid][t], c.keypoints[t]) for _, kept in hands]
            rows.append(np.concatenate(tiles, axis=1))
    img = Image.fromarray(np.concatenate([np.full((24, rows[0].shape[1], 3), 255, np.uint8), *rows], axis=0))
    draw = ImageDraw.Draw(img)
    for i, h in enumerate(heads):
        draw.text((i * TILE + 6, 6), h, fill=(0, 0, 0))
    for r, (cid, frames) in enumerate(picks.items()):
        draw.text((TILE + 6, 24 + r * TILE + 6), f"{cid.split('/')[-1][:28]} t={next(iter(frames))}", fill=(255, 255, 255))
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buf.getvalue())


def write_table(rows: list[PipelineQuality], source: str) -> None:
    """The scored pipelines' entries of the shipped quality table; other pipelines' entries stay."""
    from hpv.atomic import write_text
    from hpv.profiles.quality import QUALITY_TABLE

    table: dict = json.loads(QUALITY_TABLE.read_text()) if QUALITY_TABLE.is_file() else {}
    def figures(r: PipelineQuality) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.to_json().items()
                if k not in ("pipeline", "steps", "frames")}

    for name in {r.pipeline for r in rows}:
        table[name] = {"source": source, "steps": {}}
    for r in rows:
        table[r.pipeline]["steps"][str(r.steps)] = figures(r)
    default = PIPELINES.get("default")
    for name in {r.pipeline for r in rows} & {n for n in PIPELINES.names() if PIPELINES.get(n).parts}:
        p = PIPELINES.get(name)
        if (p.generator, p.refiner, p.upscaler) != (default.generator, default.refiner, default.upscaler):
            continue  # parts off is the default's frame only when the whole-frame stages are the default's
        table[name]["steps_without_parts"] = {str(r.steps): figures(r) for r in rows if r.pipeline == "default"}
    write_text(QUALITY_TABLE, json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {QUALITY_TABLE}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--default-run", action="store_true", help="default weights from RUNS/default, not the package")
    ap.add_argument("--sequences", type=int, default=8, help="test sequences to score")
    ap.add_argument("--frames", type=int, default=12, help="frames per test sequence (from the start)")
    ap.add_argument("--default-only", action="store_true", help="score the default pipeline only (no baseline, no parts)")
    ap.add_argument("--no-baseline", action="store_true", help="leave the baseline out (it trains first when its weights are missing)")
    ap.add_argument("--parts-run", action="store_true", help="part stages' weights from RUNS/parts, not the package")
    ap.add_argument("--baseline-scale", type=float, default=1.0,
                    help="when the baseline must be trained first: multiply its step counts")
    ap.add_argument("--strip", type=Path, default=Path("bench-out/quality-strip.png"))
    ap.add_argument("--artifacts", type=Path, default=None, metavar="BUILD",
                    help="also score this compiled build of the default pipeline, every precision and k")
    ap.add_argument("--write-table", action="store_true",
                    help="write the figures to the package's quality table (hpv/stages/weights/quality.json), "
                         "which `hpv profile` and the scheduler read")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = CONFIGS.get(args.config)
    cases = eval_cases(cfg.data, "test", args.sequences, args.frames, OUT_RES)
    print(f"test split: {len(cases)} sequences, {sum(len(c.target) for c in cases)} frames at {OUT_RES}x{OUT_RES}")
    for c in cases:
        print(f"  {c.id}")

    default_weights = weights_in(args.runs / "default" / "weights") if args.default_run else None
    default = load_pipeline(PIPELINES.get("default"), default_weights)
    baseline = None
    if not (args.default_only or args.no_baseline):
        base_dir = args.runs / "baseline" / "weights"
        if not list(base_dir.glob("*.safetensors")):
            from hpv.training.cascade import shared_resolutions, train_pipeline
            from hpv.training.data import build_dataset

            bcfg = cfg.scaled(args.baseline_scale) if args.baseline_scale != 1.0 else cfg
            print(f"no baseline weights in {base_dir}: training the baseline ({args.config} config x {args.baseline_scale})")
            data = build_dataset(bcfg.data, shared_resolutions("default", "baseline"), cache_dir=args.runs / "data-cache")
            train_pipeline("baseline", bcfg, args.runs / "baseline", dataset=data)
        baseline = load_pipeline(PIPELINES.get("baseline"), weights_in(base_dir))
    parts = None
    if not args.default_only:
        part_weights = weights_in(args.runs / "parts" / "weights") if args.parts_run else {}
        parts = load_pipeline(PIPELINES.get("parts"), {**(default_weights or {}), **{
            s: w for s, w in part_weights.items() if s in {p.stage.stage for p in PIPELINES.get("parts").parts}}})
    for lp in filter(None, (default, baseline, parts)):
        print(f"{lp.pipeline.name}: " + ", ".join(f"{n} {w[:12]}" for n, w in lp.weights.items()))

    picks = strip_picks(cases)
    kept = {k: {cid: dict(fr) for cid, fr in picks.items()} for k in range(default.pipeline.max_steps + 1)}
    rows = [evaluate_pipeline(default, cases, k, keep=kept[k]) for k in range(default.pipeline.max_steps + 1)]
    base_kept = {cid: dict(fr) for cid, fr in picks.items()}
    base_row = evaluate_pipeline(baseline, cases, 0, keep=base_kept) if baseline else None
    parts_kept = {k: {cid: dict(fr) for cid, fr in picks.items()} for k in range(default.pipeline.max_steps + 1)}
    parts_rows = [evaluate_pipeline(parts, cases, k, keep=parts_kept[k]) for k in range(parts.pipeline.max_steps + 1)] \
        if parts else []

    built: list[PipelineQuality] = []
    if args.artifacts is not None:
        from hpv.artifacts.manifest import load_manifest
        from hpv.runtime.pipeline import CompiledPipeline

        manifest = load_manifest(args.artifacts)
        for precision in sorted({a.precision for a in manifest.artifacts}):
            pipe = CompiledPipeline(args.artifacts, precision, 1, manifest)
            for on in ((False, True) if pipe.has_parts else (False,)):
                for k in range(pipe.max_steps + 1):
                    built.append(evaluate_frames(f"{manifest.target} {precision}{' +parts' if on else ''}", k, cases,
                                                 lambda seq, k=k, on=on: build_frames(pipe, seq, k, parts=on)))

    head = f"{'pipeline':18} {'k':>2} {'IoU':>6} {'person':>7} {'SSIM':>6} {'hands':>6} {'face':>6} {'flicker':>8} {'looks':>6} {'full':>6}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in ([base_row] if base_row else []) + rows + parts_rows + built:
        m = r.looks
        k = "-" if r.pipeline == "baseline" else str(r.steps)
        print(f"{r.pipeline:18} {k:>2} {m.silhouette_iou:6.4f} {m.person_psnr_db:7.2f} {m.person_ssim:6.4f} "
              f"{m.hand_psnr_db:6.2f} {m.face_psnr_db:6.2f} {m.flicker:+8.5f} {r.looks_db:6.2f} {m.psnr_db:6.2f}")
    gains = [b.looks.person_psnr_db - a.looks.person_psnr_db for a, b in zip(rows, rows[1:])]
    print("\nperson PSNR change per refinement step: "
          + ", ".join(f"k{k}->{k + 1} {g:+.2f} dB" for k, g in enumerate(gains)))
    if any(g < 0.1 for g in gains):
        print("note: a refinement step gains less than 0.1 dB on the person")
    for name in dict.fromkeys(r.pipeline for r in built):
        own = [r for r in built if r.pipeline == name]
        pt = {r.steps: r for r in (parts_rows if name.endswith("+parts") else rows)}
        print(f"{name} vs PyTorch, person PSNR: " + ", ".join(
            f"k{r.steps} {r.looks.person_psnr_db - pt[r.steps].looks.person_psnr_db:+.2f} dB" for r in own))
    best = best_k(rows)
    bicubic = evaluate_frames(f"default k={best.steps}, bicubic instead of the upscaler", best.steps, cases,
                              lambda seq: bicubic_frames(default, seq, best.steps))
    print(f"upscaler vs bicubic of its own input (k = {best.steps}): person {best.looks.person_psnr_db:.2f} vs "
          f"{bicubic.looks.person_psnr_db:.2f} dB, hands {best.looks.hand_psnr_db:.2f} vs {bicubic.looks.hand_psnr_db:.2f} dB")
    print(f"upscaler_minus_bicubic_person_psnr_db: {best.looks.person_psnr_db - bicubic.looks.person_psnr_db:.2f}")
    columns = [("default k=0", kept[0]), (f"default k={best.steps}", kept[best.steps])]
    if base_row:
        columns.append(("baseline", base_kept))
    if parts_rows:
        best_parts = best_k(parts_rows)
        columns.append((f"parts k={best_parts.steps}", parts_kept[best_parts.steps]))
    write_strip(args.strip, cases, picks, columns)
    print(f"strip: {args.strip} (look at it before quoting a figure)")
    print(f"run time {time.perf_counter() - t0:.0f} s")
    if args.write_table:
        write_table(([base_row] if base_row else []) + rows + parts_rows,
                    f"bench/quality.py --sequences {args.sequences} --frames {args.frames} "
                    f"(test split of the {args.config} data, {len(cases)} sequences, at {OUT_RES}x{OUT_RES})")
    if base_row:
        print(f"person_psnr_default_minus_baseline_db: {best.looks.person_psnr_db - base_row.looks.person_psnr_db:.2f}")
    off = {(r.pipeline, r.steps): r for r in rows + built}
    for r in parts_rows + [r for r in built if r.pipeline.endswith(" +parts")]:
        o = off[("default" if r in parts_rows else r.pipeline.removesuffix(" +parts"), r.steps)]
        print(f"parts on minus off, {r.pipeline} k={r.steps}: person {r.looks.person_psnr_db - o.looks.person_psnr_db:+.2f}, "
              f"hands {r.looks.hand_psnr_db - o.looks.hand_psnr_db:+.2f}, face {r.looks.face_psnr_db - o.looks.face_psnr_db:+.2f} dB")
    fp32 = [r for r in built if " fp32" in r.pipeline]
    final = best_k(fp32) if fp32 else best_k(rows + parts_rows)
    int8 = [r for r in built if r.pipeline == final.pipeline.replace(" fp32", " int8") and r.steps == final.steps]
    if int8:
        print(f"int8_minus_fp32_person_psnr_db: {int8[0].looks.person_psnr_db - final.looks.person_psnr_db:.2f}")
    m = final.looks
    print(f"figures of: {final.pipeline} at its best k (the best configuration scored)")
    print(f"best_k: {final.steps}")
    print(f"silhouette_iou: {m.silhouette_iou:.4f}")
    print(f"person_psnr_db: {m.person_psnr_db:.2f}")
    print(f"hand_psnr_db: {m.hand_psnr_db:.2f}")
    print(f"face_psnr_db: {m.face_psnr_db:.2f}")


if __name__ == "__main__":
    main()
