"""Frame time of the baseline vs the default pipeline with ONNX Runtime on this CPU (not a test).

Measures ms per 768x768 output frame of
  baseline      pix2pix_lstm (256) + espcn_x3, fp32
  default fp32  fire_gen (128) + k refiner steps + fire_upscaler, k = 0..max_steps
  default int8  the same with the int8 artifacts
from artifacts built by the project's own verb (`hpv.compiler.build.compile`, target onnx-cpu),
read through their manifests. A frame is the whole pipeline: generator (recurrent state carried
from the previous frame), k refiner steps (step index, previous frame's estimate), declared-range
conversion, upscaler. Poses are rendered up front (`default_sequence(seed=3)`) and not timed.

Timing (see TOOLCHAIN.md "Timing on this machine"): one InferenceSession per artifact with
intra_op_num_threads=2 and thread spinning off, so idle sessions do not steal the two cores; each
turn runs --frames whole frames of one pipeline variant; variants alternate in turns for --rounds
rounds (start rotated each round) after a warm-up turn each. Reported: median and min ms/frame over
all measured frames; ratios use medians. The last line is
  speedup_default_vs_baseline: <baseline fp32 median / best-precision default median at k=max>

  .venv/bin/python bench/pipeline_speed.py [--artifacts DIR ...] [--frames 30] [--rounds 5]
--artifacts: folders searched for onnx-cpu manifest.json files; a pipeline not found is compiled
into the first folder given (into a temporary folder without --artifacts)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from hpv.artifacts.manifest import load_manifest
from hpv.compiler.build import CompileRequest, compile
from hpv.pipelines import PIPELINES
from hpv.pose import default_sequence
from hpv.pose.conditioning import KEYPOINTS, POSE_ROLES, conditioning, conditioning_key
from hpv.reference import rescale

TARGET, THREADS = "onnx-cpu", 2


def find_builds(dirs: list[Path], build_into: Path) -> dict[str, tuple[Path, object]]:
    """pipeline name -> (folder, manifest); compiles baseline (fp32) / default (all) if missing."""
    found = {}
    for d in dirs:
        for mf in sorted(d.rglob("manifest.json")):
            m = load_manifest(mf.parent)
            if m.target == TARGET:
                found.setdefault(m.pipeline, (mf.parent, m))
    for name, precisions in (("baseline", ("fp32",)), ("default", ())):
        if name not in found:
            t0 = time.perf_counter()
            res = compile(CompileRequest(target=TARGET, pipeline=name, precisions=precisions, out=build_into / name))
            print(f"compiled {name} -> {res.folder} in {time.perf_counter() - t0:.0f} s")
            found[name] = (res.folder, res.manifest)
    return found


def session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class Runner:
    """One pipeline at one precision: sessions + per-frame loop with state carried."""

    def __init__(self, folder: Path, manifest, precision: str, poses: dict[int, np.ndarray]):
        pl = PIPELINES.get(manifest.pipeline)
        recs = {a.stage: a for a in manifest.artifacts if a.precision == precision}
        self.gen, self.up = recs[pl.generator.stage], recs[pl.upscaler.stage]
        self.ref = recs[pl.refiner.stage] if pl.refiner else None
        self.sess = {r.stage: session(folder / r.path) for r in (self.gen, self.ref, self.up) if r}
        self.gen_pose = self._pose(self.gen, poses)
        self.ref_pose = self._pose(self.ref, poses) if self.ref else None
        self.up_pose = self._pose(self.up, poses)
        self.img_range = next(o.value_range for o in self.gen.outputs if o.name == "image")
        self.up_range = next(i.value_range for i in self.up.inputs if i.name == "image")

    @staticmethod
    def _pose(rec, poses):
        """(input name, model inputs over frames) of a stage's pose input, or None."""
        spec = next((i for i in rec.inputs if i.role in POSE_ROLES), None)
        return None if spec is None else (spec.name, poses[conditioning_key(spec)])

    @staticmethod
    def _at(pose, t):
        return {} if pose is None else {pose[0]: pose[1][t : t + 1]}

    def run(self, frames: int, k: int) -> list[float]:
        """Run `frames` frames from a fresh state; return seconds per frame."""
        g, r, u = (self.sess[x.stage] if x else None for x in (self.gen, self.ref, self.up))
        state = {i.name: np.zeros([1 if d == "batch" else d for d in i.shape], np.float32)
                 for i in self.gen.inputs if i.role == "state"}
        g_out = [o.name for o in self.gen.outputs]
        previous, times = None, []
        for t in range(frames):
            t0 = time.perf_counter()
            res = dict(zip(g_out, g.run(g_out, {**self._at(self.gen_pose, t), **state})))
            state = {s.input: res[s.output] for s in self.gen.state}
            est = res["image"]
            fields = {i.name: res[i.name] for i in self.gen.outputs if i.role == "fields"}
            if r is not None:
                prev = est if previous is None else previous
                pose = self._at(self.ref_pose, t) or {i.name: fields["fields"] for i in self.ref.inputs if i.role == "fields"}
                for step in range(k):
                    feed = {**pose, "estimate": est, "step": np.full((1, 1), step, np.float32), "previous": prev}
                    (est,) = r.run(["refined"], feed)
            previous = est
            up_in = np.ascontiguousarray(rescale(est, self.img_range, self.up_range), np.float32)
            up_pose = self._at(self.up_pose, t) or {i.name: fields["fields"] for i in self.up.inputs if i.role == "fields"}
            u.run(["upscaled"], {"image": up_in, **up_pose})
            times.append(time.perf_counter() - t0)
        return times


def pipeline_macs() -> dict[str, tuple[int, int]]:
    """pipeline -> (MACs of generator + upscaler, MACs of one refiner step)."""
    from hpv.reference import load_pipeline
    from hpv.stages.macs import count_macs

    out = {}
    for name in ("baseline", "default"):
        lp = load_pipeline(PIPELINES.get(name))
        out[name] = (count_macs(lp.generator) + count_macs(lp.upscaler), count_macs(lp.refiner) if lp.refiner else 0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artifacts", type=Path, nargs="+", default=[], metavar="DIR")
    ap.add_argument("--frames", type=int, default=30, help="frames per turn (default 30)")
    ap.add_argument("--rounds", type=int, default=5, help="measured turns per variant (default 5)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        builds = find_builds(args.artifacts, args.artifacts[0] if args.artifacts else Path(tmp))
        for name, (folder, _) in builds.items():
            print(f"artifacts {name}: {folder}")
        seq = default_sequence(num_frames=args.frames, seed=3)
        poses = conditioning(seq, [KEYPOINTS, 128, 256])
        kmax = PIPELINES.get("default").max_steps
        runners = {"baseline fp32": Runner(*builds["baseline"], "fp32", poses)}
        for p in ("fp32", "int8"):
            runners[f"default {p}"] = Runner(*builds["default"], p, poses)
        variants = [("baseline fp32", 0)] + [(f"default {p}", k) for p in ("fp32", "int8") for k in range(kmax + 1)]
        print(f"onnxruntime {ort.__version__}, CPUExecutionProvider, intra_op_num_threads={THREADS}, "
              f"inter_op_num_threads=1, spinning off; {args.frames} frames/turn, {args.rounds} rounds, "
              f"{len(variants)} variants")
        for name, k in variants:  # warm-up turn, not measured
            runners[name].run(min(3, args.frames), k)
        times = {v: [] for v in variants}
        for rnd in range(args.rounds):
            for i in range(len(variants)):
                v = variants[(i + rnd) % len(variants)]
                times[v] += runners[v[0]].run(args.frames, v[1])
    macs = pipeline_macs()
    med = {v: float(np.median(t)) * 1e3 for v, t in times.items()}
    base = med[("baseline fp32", 0)]
    base_macs = sum(macs["baseline"])
    print(f"\nMACs/frame: baseline {base_macs / 1e9:.3f} G (generator + upscaler); default "
          f"{macs['default'][0] / 1e9:.3f} G (generator + upscaler) + {macs['default'][1] / 1e9:.3f} G per refiner step")
    print(f"{'pipeline':<16}{'k':>2}{'median ms':>11}{'min ms':>9}{'GMAC/frame':>12}{'speedup':>9}{'MAC ratio':>11}")
    for (name, k), t in times.items():
        m = macs[name.split()[0]][0] + k * macs[name.split()[0]][1]
        kk = k if name.startswith("default") else "-"
        print(f"{name:<16}{kk:>2}{med[name, k]:>11.2f}{min(t) * 1e3:>9.2f}{m / 1e9:>12.3f}"
              f"{base / med[name, k]:>9.2f}{base_macs / m:>11.1f}")
    print()
    for p in ("fp32", "int8"):
        print(f"speedup_default_{p}_vs_baseline: " + ", ".join(f"k={k} {base / med[f'default {p}', k]:.2f}" for k in range(kmax + 1)))
    best = min(("fp32", "int8"), key=lambda p: med[f"default {p}", kmax])
    print(f"best precision at k={kmax}: {best}; run time {time.perf_counter() - t_start:.0f} s")
    print(f"speedup_default_vs_baseline: {base / med[f'default {best}', kmax]:.2f}")


if __name__ == "__main__":
    main()
