"""LiteRT fp32 vs int8 per stage of the default pipeline on this CPU (not a test).

  python bench/tflite_speed.py [--artifacts DIR] [--runs 30] [--rounds 5]

Builds the default pipeline for `tflite-cpu` in fp32 and int8 with the project's own verb
(or reuses DIR/tflite-cpu), then for each stage times one interpreter invoke per frame (XNNPACK,
2 threads; inputs prepared in the device layout and dtype beforehand, as an app holds them), fp32
and int8 alternating in turns for several rounds. Prints per stage the median ms/frame of each,
their ratio, and the int8 artifact's PSNR against fp32 on the same held-out frames (state carried
by each artifact). Ends with `int8_speedup_pipeline: <ratio>`: the per-frame cost of the whole
default pipeline (generator + K refiner steps + upscaler) in fp32 over that in int8."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from hpv.artifacts.manifest import load_manifest
from hpv.calibration import HELDOUT_SEED, PoseSource, stage_data
from hpv.compiler.backends import get_backend
from hpv.compiler.backends.tflite import to_device
from hpv.compiler.build import CompileRequest, compile
from hpv.metrics import psnr
from hpv.pipelines import PIPELINES
from hpv.reference import load_pipeline
from hpv.targets import get_target

TARGET = "tflite-cpu"


def prepared_invoke(path: Path, feeds: list[dict[str, np.ndarray]]):
    """An invoke closure over inputs already quantized/transposed, cycling through `feeds`."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=2)
    it.allocate_tensors()
    sig = get_backend("tflite").io_signature(path)
    prepared = []
    for f in feeds:
        row = []
        for meta, d in zip(sig["inputs"], it.get_input_details()):
            row.append((d["index"], to_device(f[meta["name"]], meta)))
        prepared.append(row)
    outs = [d["index"] for d in it.get_output_details()]
    counter = {"i": 0}

    def invoke() -> None:
        for index, x in prepared[counter["i"] % len(prepared)]:
            it.set_tensor(index, x)
        it.invoke()
        for index in outs:
            it.get_tensor(index)
        counter["i"] += 1

    return invoke


def rollout_outputs(run, stage, samples):
    from hpv.compiler.verify import rollout

    return rollout(run, stage, samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path)
    ap.add_argument("--runs", type=int, default=30, help="invokes per turn")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.artifacts or Path(tmp)
        folder = out / TARGET
        if not (folder / "manifest.json").is_file():
            compile(CompileRequest(target=TARGET, precisions=("fp32", "int8"), out=out))
        manifest = load_manifest(folder)
        lp = load_pipeline(PIPELINES.get(manifest.pipeline))
        held = stage_data(lp, PoseSource(seed=HELDOUT_SEED, frames=30))
        backend, target = get_backend("tflite"), get_target(TARGET)
        rows, med = [], {}
        for name in [r.stage for r in lp.pipeline.stages]:
            arts = {a.precision: a for a in manifest.artifacts if a.stage == name}
            samples = held.inputs[name]
            stage = lp.stages[name]
            invokes = {p: prepared_invoke(folder / arts[p].path, samples) for p in ("fp32", "int8")}
            for f in invokes.values():  # warm-up
                for _ in range(3):
                    f()
            times = {p: [] for p in invokes}
            for rnd in range(args.rounds):
                for p in (("fp32", "int8") if rnd % 2 == 0 else ("int8", "fp32")):
                    for _ in range(args.runs):
                        s = time.perf_counter()
                        invokes[p]()
                        times[p].append(time.perf_counter() - s)
            med[name] = {p: float(np.median(t)) * 1e3 for p, t in times.items()}
            got = rollout_outputs(backend.runner(folder / arts["int8"].path, target, stage), stage, samples)
            ref = rollout_outputs(backend.runner(folder / arts["fp32"].path, target, stage), stage, samples)
            spec = stage.interface().image_outputs()[0]
            q = psnr(np.concatenate([g[spec.name] for g in got]), np.concatenate([r[spec.name] for r in ref]),
                     spec.value_range[1] - spec.value_range[0])
            rows.append((name, med[name]["fp32"], med[name]["int8"], q, arts["int8"].weights))
    print(f"{'stage':<15}{'fp32 ms':>9}{'int8 ms':>9}{'speedup':>9}{'int8 PSNR vs fp32':>19}  weights")
    for name, f, i, q, w in rows:
        print(f"{name:<15}{f:>9.2f}{i:>9.2f}{f / i:>9.2f}{q:>17.1f} dB  {w[:12]}")
    K = lp.pipeline.max_steps
    gen, ref, up = lp.pipeline.generator.stage, lp.pipeline.refiner.stage, lp.pipeline.upscaler.stage
    total = {p: med[gen][p] + K * med[ref][p] + med[up][p] for p in ("fp32", "int8")}
    print(f"pipeline (k={K}): fp32 {total['fp32']:.2f} ms/frame, int8 {total['int8']:.2f} ms/frame; "
          f"run time {time.perf_counter() - t0:.0f} s")
    print(f"int8_speedup_pipeline: {total['fp32'] / total['int8']:.2f}")


if __name__ == "__main__":
    main()
