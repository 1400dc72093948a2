"""The macOS half of Core ML verification: load each .mlpackage of a build, predict on the held-out
inputs the build stored beside it (`<artifact>.check.npz`), compare with the stored PyTorch
outputs, time prediction per compute unit, and write the results as a device profile.

    python -m hpv.compiler.coreml.macos_check artifacts/coreml --out coreml-profile.json

Prediction needs macOS (Core ML): on Linux this module's comparison and profile-writing parts run
in the tests, on stored arrays."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpv.artifacts.manifest import ArtifactRecord, Manifest, load_manifest
from hpv.metrics import psnr

COMPUTE_UNITS = ("CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE", "ALL")


@dataclass(frozen=True)
class CheckData:
    inputs: list[dict[str, np.ndarray]]  # per frame, state inputs included (as PyTorch fed them)
    reference: list[dict[str, np.ndarray]]  # per frame, PyTorch's outputs


def load_check_data(path: Path) -> CheckData:
    with np.load(path) as z:
        frames = 1 + max(int(k.rsplit("/", 1)[1]) for k in z.files)
        inputs = [{} for _ in range(frames)]
        reference = [{} for _ in range(frames)]
        for key in z.files:
            kind, name, t = key.split("/")
            (inputs if kind == "in" else reference)[int(t)][name] = z[key]
    return CheckData(inputs, reference)


def compare(record: ArtifactRecord, got: list[dict[str, np.ndarray]], want: list[dict[str, np.ndarray]]) -> dict:
    """Worst PSNR of the image outputs over the rollout, against the stored PyTorch outputs, and
    whether it holds the tolerance the build verified the weights against."""
    scores = {}
    for out in record.outputs:
        if out.role != "image":
            continue
        lo, hi = out.value_range or (-1.0, 1.0)
        g = np.concatenate([f[out.name].reshape(-1) for f in got])
        w = np.concatenate([f[out.name].reshape(-1) for f in want])
        scores[out.name] = psnr(g, w, hi - lo)
    worst = float(np.min(list(scores.values())))  # NaN (a NaN output) propagates: min() would drop it
    tolerance = record.verification.tolerance.min_psnr_db
    return {"psnr_db": worst, "per_output": scores, "tolerance_db": tolerance, "passed": bool(worst >= tolerance)}


def predict_rollout(model, record: ArtifactRecord, data: CheckData) -> tuple[list[dict], list[float]]:
    """Run the frames in order with the state carried: explicit state is fed back by us; a
    stateful model keeps it in an MLState. Returns outputs and per-frame times in ms."""
    state = model.make_state() if any(s.model_state for s in record.state) else None
    explicit = {s.input: s.output for s in record.state if s.model_state is None}
    names = [t.name for t in record.inputs]
    carried = {k: data.inputs[0][k] for k in explicit}
    outs, times = [], []
    for frame in data.inputs:
        feeds = {n: np.ascontiguousarray((carried | frame)[n] if n in explicit else frame[n], np.float32) for n in names}
        start = time.perf_counter()
        out = model.predict(feeds, state=state) if state is not None else model.predict(feeds)
        times.append((time.perf_counter() - start) * 1e3)
        carried = {i: out[o] for i, o in explicit.items()}
        outs.append(out)
    return outs, times


def check_build(build: Path, *, runs: int = 30, units: tuple[str, ...] = COMPUTE_UNITS) -> tuple[Manifest, list[dict]]:
    import coremltools as ct

    manifest = load_manifest(build)
    results = []
    for record in manifest.artifacts:
        if record.format != "coreml" or record.check_data is None:
            continue
        data = load_check_data(build / record.check_data.path)
        for unit in units:
            start = time.perf_counter()
            model = ct.models.MLModel(str(build / record.path), compute_units=getattr(ct.ComputeUnit, unit))
            load_ms = (time.perf_counter() - start) * 1e3
            got, first = predict_rollout(model, record, data)
            timed = []
            while len(timed) < runs:
                timed += predict_rollout(model, record, data)[1]
            results.append({"artifact": record.path, "unit": unit, "load_ms": load_ms, "first_ms": first[0],
                            "samples_ms": timed[:runs], "warmup": len(data.inputs), **compare(record, got, data.reference)})
    return manifest, results


def to_profile(manifest: Manifest, manifest_sha256: str, results: list[dict], *, model: str, os_version: str):
    """The results as a device profile: one device entry per compute unit (the scheduler treats a
    compute unit as its own device)."""
    from hpv import __version__
    from hpv.profiles.schema import (
        PROFILE_SCHEMA_VERSION, ArtifactProfile, DelegateRecord, DeviceIdentity, DeviceProfile, LatencyStats,
        ProfileFile,
    )

    records = {a.path: a for a in manifest.artifacts}
    devices = []
    for unit in dict.fromkeys(r["unit"] for r in results):
        arts = [ArtifactProfile(
            artifact=r["artifact"], stage=records[r["artifact"]].stage, format="coreml",
            precision=records[r["artifact"]].precision, batch=1, load_ms=r["load_ms"], first_ms=r["first_ms"],
            latency=LatencyStats.from_samples(r["samples_ms"], warmup=r["warmup"]),
            delegate=DelegateRecord(name=unit), verification_psnr_db=r["psnr_db"])
            for r in results if r["unit"] == unit]
        devices.append(DeviceProfile(
            device=DeviceIdentity(id=f"{model}/{unit}", model=model, os=os_version, kind="macos",
                                  runtimes={"coreml": os_version, "compute_units": unit}),
            target=manifest.target, manifest_sha256=manifest_sha256,
            measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), artifacts=arts))
    return ProfileFile(schema_version=PROFILE_SCHEMA_VERSION, generator=f"hpv {__version__} macos_check",
                       devices=devices)


def main(argv: list[str] | None = None) -> int:
    from hpv.artifacts.manifest import MANIFEST_NAME
    from hpv.profiles.schema import write_profile
    from hpv.stages.checkpoint import sha256_file

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", type=Path, help="a Core ML build folder (with manifest.json)")
    parser.add_argument("--out", type=Path, default=Path("coreml-profile.json"))
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--units", default=",".join(COMPUTE_UNITS))
    args = parser.parse_args(argv)
    if platform.system() != "Darwin":
        print("error: Core ML prediction needs macOS; on Linux, `hpv-compile --target coreml` checks the spec "
              "and weights only", file=sys.stderr)
        return 2
    manifest, results = check_build(args.build, runs=args.runs, units=tuple(args.units.split(",")))
    for r in results:
        verdict = "ok" if r["passed"] else "FAILED"
        print(f"{r['artifact']:40s} {r['unit']:12s} PSNR {r['psnr_db']:6.1f} dB (>= {r['tolerance_db']})  "
              f"p50 {np.median(r['samples_ms']):7.2f} ms  {verdict}")
    model = platform.machine()
    try:
        import subprocess

        model = subprocess.run(["sysctl", "-n", "hw.model"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    profile = to_profile(manifest, sha256_file(args.build / MANIFEST_NAME), results, model=model,
                         os_version=f"macOS {platform.mac_ver()[0]}")
    write_profile(args.out, profile)
    print(f"wrote {args.out}")
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
