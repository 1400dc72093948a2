"""How the trained pipelines look, on held-out sequences, at the 768x768 output (not a test).

  python bench/quality.py [--sequences 8] [--frames 12] [--strip bench-out/quality-strip.png] [--write-table]

Scores the default pipeline (the whole-body frame, then both hands (64x64) and the face (96x96)
drawn apart and stitched in, issue 14) at every k = 0..K, its whole-body frame alone (the `body`
pipeline: the default with its parts off) at every k, and the baseline on the test split of the
`cpu` data
config (sequences no stage trained on: real fingerspelling files and synthetic signing whose arms
rest with the hands below the frame, go to the face, cross, or reach wide), against the procedural
signer's ground truth, on what a viewer sees (`hpv.metrics`):

  IoU      silhouette IoU through the app's chroma key
  person   PSNR / SSIM over both silhouettes' union, dilated 4 px
  hands    PSNR inside the hands' boxes (from the hand keypoints); face: the face's box
  flicker  frame-to-frame change of the output minus the truth's, over the person
  looks    (person + hands) / 2: the figure the scheduler ranks configurations by
  full     full-frame PSNR, background included (for comparison only: it hides missing arms)

Writes a PNG strip (keypoint fields | ground truth | body k = 0 | body best k | baseline | default
best k | hand close-ups of the body and of the default), rows including a rest pose with the hands
below the frame, hands at the face and real files: look at it before you quote a figure. Ends with the figures of the best configuration
(pipeline, parts on or off, k): `silhouette_iou`, `person_psnr_db`, `hand_psnr_db`, `face_psnr_db`.

With `--artifacts BUILD` (an onnx-cpu or tflite-cpu build of the default or the body pipeline,
e.g. artifacts/onnx-cpu from `hpv-compile --target onnx-cpu`), every precision of the build is
scored at every k too (a build with part stages with its parts on and off), through the runtime
that ships it, and the closing lines are the build's best fp32 configuration; without it, the
PyTorch pipelines'.

Weights: the package's shipped ones (or --trained: those in RUNS/default/weights, the package's for
the stages not there); the baseline's from RUNS/baseline/weights, trained there first when missing
(`--baseline-scale` scales its step counts)."""

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
    hands = [columns[1]] + ([columns[-1]] if len(columns) > 2 else [])  # the body's best k and the last column
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
    scored = {r.pipeline for r in rows}
    for name in scored:  # parts off is another scored pipeline's frame when it has the same whole-body stages
        p = PIPELINES.get(name) if name in PIPELINES.names() else None
        twin = next((o for o in scored if p is not None and p.parts and o in PIPELINES.names()
                     and not PIPELINES.get(o).parts and _whole_body(PIPELINES.get(o)) == _whole_body(p)), None)
        if twin is not None:
            table[name]["steps_without_parts"] = {str(r.steps): figures(r) for r in rows if r.pipeline == twin}
    write_text(QUALITY_TABLE, json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {QUALITY_TABLE}")


def _whole_body(p) -> tuple:
    return p.generator, p.refiner, p.upscaler, p.max_steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--trained", action="store_true",
                    help="weights from RUNS/default/weights where a stage has them, not the package")
    ap.add_argument("--sequences", type=int, default=8, help="test sequences to score")
    ap.add_argument("--frames", type=int, default=12, help="frames per test sequence (from the start)")
    ap.add_argument("--body-only", action="store_true", help="score the body pipeline only (no parts, no baseline)")
    ap.add_argument("--no-baseline", action="store_true", help="leave the baseline out (it trains first when its weights are missing)")
    ap.add_argument("--baseline-scale", type=float, default=1.0,
                    help="when the baseline must be trained first: multiply its step counts")
    ap.add_argument("--strip", type=Path, default=Path("bench-out/quality-strip.png"))
    ap.add_argument("--artifacts", type=Path, default=None, metavar="BUILD",
                    help="also score this compiled build (default or body pipeline), every precision and k")
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

    trained = weights_in(args.runs / "default" / "weights") if args.trained else {}
    def pipeline(name: str):
        p = PIPELINES.get(name)
        return load_pipeline(p, {s: w for s, w in trained.items() if p.ref(s) is not None} or None)

    body = pipeline("body")
    baseline = None
    if not (args.body_only or args.no_baseline):
        base_dir = args.runs / "baseline" / "weights"
        if not list(base_dir.glob("*.safetensors")):
            from hpv.training.cascade import shared_resolutions, train_pipeline
            from hpv.training.data import build_dataset

            bcfg = cfg.scaled(args.baseline_scale) if args.baseline_scale != 1.0 else cfg
            print(f"no baseline weights in {base_dir}: training the baseline ({args.config} config x {args.baseline_scale})")
            data = build_dataset(bcfg.data, shared_resolutions("default", "baseline"), cache_dir=args.runs / "data-cache")
            train_pipeline("baseline", bcfg, args.runs / "baseline", dataset=data)
        baseline = load_pipeline(PIPELINES.get("baseline"), weights_in(base_dir))
    default = None if args.body_only else pipeline("default")
    for lp in filter(None, (body, baseline, default)):
        print(f"{lp.pipeline.name}: " + ", ".join(f"{n} {w[:12]}" for n, w in lp.weights.items()))

    picks = strip_picks(cases)
    def scored(lp):  # (rows at every k, the frames kept for the strip at each k)
        kept = {k: {cid: dict(fr) for cid, fr in picks.items()} for k in range(lp.pipeline.max_steps + 1)}
        return [evaluate_pipeline(lp, cases, k, keep=kept[k]) for k in kept], kept

    rows, kept = scored(body)
    base_kept = {cid: dict(fr) for cid, fr in picks.items()}
    base_row = evaluate_pipeline(baseline, cases, 0, keep=base_kept) if baseline else None
    parts_rows, parts_kept = scored(default) if default else ([], {})

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
    print()
    for name, own in (("body", rows), ("default", parts_rows)):
        gains = [b.looks.person_psnr_db - a.looks.person_psnr_db for a, b in zip(own, own[1:])]
        if gains:
            print(f"person PSNR change per refinement step, {name}: "
                  + ", ".join(f"k{k}->{k + 1} {g:+.2f} dB" for k, g in enumerate(gains))
                  + ("  (note: a step gains less than 0.1 dB)" if any(g < 0.1 for g in gains) else ""))
    for name in dict.fromkeys(r.pipeline for r in built):
        own = [r for r in built if r.pipeline == name]
        pt = {r.steps: r for r in (parts_rows if name.endswith("+parts") else rows)}
        print(f"{name} vs PyTorch, person PSNR: " + ", ".join(
            f"k{r.steps} {r.looks.person_psnr_db - pt[r.steps].looks.person_psnr_db:+.2f} dB" for r in own))
    best = best_k(rows)
    bicubic = evaluate_frames(f"body k={best.steps}, bicubic instead of the upscaler", best.steps, cases,
                              lambda seq: bicubic_frames(body, seq, best.steps))
    print(f"upscaler vs bicubic of its own input (k = {best.steps}): person {best.looks.person_psnr_db:.2f} vs "
          f"{bicubic.looks.person_psnr_db:.2f} dB, hands {best.looks.hand_psnr_db:.2f} vs {bicubic.looks.hand_psnr_db:.2f} dB")
    print(f"upscaler_minus_bicubic_person_psnr_db: {best.looks.person_psnr_db - bicubic.looks.person_psnr_db:.2f}")
    columns = [("body k=0", kept[0]), (f"body k={best.steps}", kept[best.steps])]
    if base_row:
        columns.append(("baseline", base_kept))
    if parts_rows:
        best_parts = best_k(parts_rows)
        columns.append((f"default k={best_parts.steps}", parts_kept[best_parts.steps]))
    write_strip(args.strip, cases, picks, columns)
    print(f"strip: {args.strip} (look at it before quoting a figure)")
    print(f"run time {time.perf_counter() - t0:.0f} s")
    if args.write_table:
        write_table(([base_row] if base_row else []) + rows + parts_rows,
                    f"bench/quality.py --sequences {args.sequences} --frames {args.frames} "
                    f"(test split of the {args.config} data, {len(cases)} sequences, at {OUT_RES}x{OUT_RES})")
    if base_row:
        top = best_k(parts_rows) if parts_rows else best
        print(f"person_psnr_default_minus_baseline_db: {top.looks.person_psnr_db - base_row.looks.person_psnr_db:.2f}")
    off = {(r.pipeline, r.steps): r for r in rows + built}
    for r in parts_rows + [r for r in built if r.pipeline.endswith(" +parts")]:
        o = off[("body" if r in parts_rows else r.pipeline.removesuffix(" +parts"), r.steps)]
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
