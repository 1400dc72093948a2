"""`hpv profile --device local`: measure a build's artifacts and its whole pipeline per frame on
this machine, with ONNX Runtime or LiteRT.

Per artifact and batch size (artifacts timed in turns, round by round): load time, first inference,
a warm latency distribution (every timed run kept), peak resident memory, MACs and the achieved
fraction of the machine's measured fp32 GEMM peak. Per pipeline configuration (precision, batch,
k = 0..K, and the part stages on or off where the build has them): the time of a whole frame,
generator + k refiner steps + upscaler (+ the part stages) with the conversions between them, the
figure the scheduler reads. Configurations are timed in turns, round by round, so a slow spell of
this shared machine hits them all alike. Every measurement records its noise (p90 / p50, MAD, the
samples beyond a robust outlier fence and the p90 without them), and the profile the whole run's
(`NoiseRecord`), with the share of the machine's CPU time that other processes took meanwhile."""

from __future__ import annotations

import functools
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpv.artifacts.manifest import MANIFEST_NAME, ArtifactRecord, Manifest, load_manifest
from hpv.errors import ConfigError
from hpv.profiles.schema import (
    ArtifactProfile, DelegateRecord, DeviceIdentity, DeviceProfile, LatencyStats, PipelineProfile, noise_record,
)

Progress = Callable[..., None]  # progress(message, advance=0)
# A timed sample lasts at least this long: shorter calls are timed in groups and averaged, so the
# timer's and the scheduler's granularity do not dominate sub-millisecond artifacts.
MIN_SAMPLE_MS = 5.0


def _peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def measure_peak_gmacs(size: int = 512, seconds: float = 1.5) -> float:
    """This machine's fp32 GEMM throughput in GMAC/s, the roofline's ceiling: the best of as many
    size^3 products on all cores as fit in `seconds` (at least 20). The best, not a median: a
    contended run only makes products slower, so the fastest is the least disturbed; 5 runs of one
    1024 product swung 12-32 GMAC/s between two profiles of a shared machine."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        torch.mm(a, b)  # warm-up: thread pool, caches, frequency
    best, n, end = float("inf"), 0, time.perf_counter() + seconds
    while n < 20 or time.perf_counter() < end:
        best = min(best, _timed(lambda: torch.mm(a, b)))
        n += 1
    return size**3 / best / 1e9


class _MachineWatch:
    """What the rest of the machine did while this process profiled: from /proc/stat (every
    core's busy time, steal included: a VM's neighbours) minus this process's own CPU time. Linux
    only; elsewhere the figure is None."""

    def __init__(self):
        self.start = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float] | None:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
        own = os.times()
        return (total - idle) / tick, total / tick, own.user + own.system

    def other_cpu_fraction(self) -> float | None:
        end = self._now()
        if self.start is None or end is None or end[1] <= self.start[1]:
            return None
        busy, total, own = (e - s for e, s in zip(end, self.start))
        return round(min(max((busy - own) / total, 0.0), 1.0), 4)


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def local_identity(peak_gmacs: float | None) -> DeviceIdentity:
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = os.cpu_count() or 1
    runtimes = {}
    for pkg in ("onnxruntime", "ai-edge-litert"):
        try:
            runtimes[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    ident = "".join(c if c.isalnum() else "-" for c in f"local-{platform.machine()}-{cores}c-{cpu}").strip("-")
    return DeviceIdentity(id="-".join(filter(None, ident.split("-")))[:80], model=f"{cpu} ({cores} cores)",
                          os=platform.platform(), cpu=cpu, kind="local", runtimes=runtimes, peak_gmacs=peak_gmacs)


def _feeds(record: ArtifactRecord, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    feeds = {}
    for t in record.inputs:
        shape = [batch if d == "batch" else int(d) for d in t.shape]
        if t.layout == "NHWC" and len(shape) == 4:  # runners take NCHW and convert themselves
            shape = [shape[0], shape[3], shape[1], shape[2]]
        shape[0] = batch
        lo, hi = t.value_range or (-1.0, 1.0)
        feeds[t.name] = rng.uniform(lo, hi, shape).astype(np.float32) if t.role != "step" else np.zeros(shape, np.float32)
    return feeds


def _macs(record: ArtifactRecord) -> int | None:
    return _stage_macs(record.stage, tuple(sorted(record.params.items())))


@functools.cache
def _stage_macs(stage: str, params: tuple) -> int | None:
    """MACs per frame of a stage at its build parameters (one count for every precision and batch)."""
    from hpv.stages import STAGES
    from hpv.stages.macs import count_macs

    definition = STAGES.get(stage)
    try:
        return count_macs(definition.cls(definition.params(**dict(params))))
    except Exception:  # noqa: BLE001 - MACs are informative; a stage that cannot be built gets none
        return None


@dataclass
class _Loaded:
    record: ArtifactRecord
    batch: int
    run: Callable
    feeds: dict[str, np.ndarray]
    load_ms: float
    first_ms: float
    peak_mb: float | None
    samples: list[float] = field(default_factory=list)
    inner: int = 1  # calls per timed sample


def _load(build, record: ArtifactRecord, batch: int, warmup: int) -> _Loaded:
    """Load one artifact of a checked build (hpv.runtime.build.Build), run it once (first
    inference) and `warmup` times; peak RSS over that."""
    _reset_peak_rss()
    start = time.perf_counter()
    run = build.runner(record)
    load_ms = (time.perf_counter() - start) * 1e3
    feeds = _feeds(record, batch, np.random.default_rng(0))
    first_ms = _timed(lambda: run(feeds)) * 1e3
    for _ in range(warmup):
        run(feeds)
    return _Loaded(record, batch, run, feeds, load_ms, first_ms, _peak_rss_mb())


def _artifact_profile(a: _Loaded, warmup: int, peak_gmacs: float | None, target, rounds: int) -> ArtifactProfile:
    latency = LatencyStats.from_samples(a.samples, warmup=warmup, rounds=rounds)
    macs = _macs(a.record)
    achieved = macs * a.batch / latency.p50_ms / 1e6 if macs else None
    return ArtifactProfile(
        artifact=a.record.path, stage=a.record.stage, format=a.record.format, precision=a.record.precision,
        batch=a.batch, load_ms=round(a.load_ms, 3), first_ms=round(a.first_ms, 3), latency=latency,
        peak_memory_mb=a.peak_mb, macs=macs, achieved_gmacs=achieved,
        roofline_fraction=achieved / peak_gmacs if achieved and peak_gmacs else None,
        delegate=DelegateRecord(name=target.compute_units[0]), verification_psnr_db=a.record.verification.psnr_db)


def profile_artifacts(builds: list, *, runs: int, warmup: int, batches: tuple[int, ...],
                      rounds: int, peak_gmacs: float | None, progress: Progress | None = None
                      ) -> list[list[ArtifactProfile]]:
    """Every artifact of every build at every batch size, timed in turns over `rounds` rounds: in
    each round every artifact is loaded afresh and given its share of the runs, the same artifact
    of each build one right after the other. A slow spell of the machine then lands on all of them
    alike, and no single session's luck (where its memory and threads landed) decides a figure.
    Runs of the same build minutes apart differ by up to 25% on this project's machine; builds
    measured in the same rounds are compared round by round (`hpv compare` pairs them), which
    cancels that drift. `builds`: checked builds (hpv.runtime.build.load_build), or (folder,
    manifest) pairs, checked here."""
    from hpv.runtime.build import Build, load_build

    log = progress or (lambda *_a, **_k: None)
    builds = [b if isinstance(b, Build) else load_build(*b) for b in builds]
    targets = [b.target for b in builds]
    configs = [[(r, b) for r in build.manifest.artifacts for b in ([r.batch] if r.batch != "dynamic" else batches)]
               for build in builds]
    # Turn order: artifact by artifact, each build's copy of it in a row.
    order = sorted(((j, n) for n, cs in enumerate(configs) for j in range(len(cs))),
                   key=lambda jn: ((configs[jn[1]][jn[0]][0].path, configs[jn[1]][jn[0]][1]), jn[1]))
    first: dict[tuple[int, int], _Loaded] = {}
    per_round = math.ceil(runs / rounds)  # equal blocks: compare reads them as rounds
    for i in range(rounds):
        for j, n in order:
            build, (record, batch) = builds[n], configs[n][j]
            a = _load(build, record, batch, warmup if i == 0 else 1)
            if i == 0:  # load time, first inference and memory from the first load
                first[n, j] = a
                # calls shorter than MIN_SAMPLE_MS are timed in groups, as timeit does
                a.inner = max(1, math.ceil(MIN_SAMPLE_MS / max(_timed(lambda a=a: a.run(a.feeds)) * 1e3, 1e-3)))
            inner = first[n, j].inner
            first[n, j].samples += [_timed(lambda a=a: [a.run(a.feeds) for _ in range(inner)]) * 1e3 / inner
                                    for _ in range(per_round)]
            del a
    out = []
    for n, target in enumerate(targets):
        out.append([_artifact_profile(first[n, j], warmup, peak_gmacs, target, rounds) for j in range(len(configs[n]))])
        for p in out[-1]:
            log(f"{p.artifact} batch {p.batch}: p50 {p.latency.p50_ms:.2f} ms, p90 {p.latency.p90_ms:.2f} ms", 1)
    return out


def profile_pipelines(build, manifest: Manifest | None = None, *, batches: list[int], runs: int, warmup: int,
                      progress: Progress | None = None) -> list[PipelineProfile]:
    """Every precision x batch x k of the build's pipeline (a checked hpv.runtime.build.Build, or
    a folder), and where the build has part stages each k with them and without, all timed in
    turns within each round."""
    from hpv.calibration import HELDOUT_SEED, PoseSource
    from hpv.profiles.quality import load_quality_table, quality_record
    from hpv.runtime.build import Build, load_build
    from hpv.runtime.pipeline import CompiledPipeline, batches as build_batches, precisions

    log = progress or (lambda *_a, **_k: None)
    build = build if isinstance(build, Build) else load_build(build, manifest)
    manifest = build.manifest
    fixed = [b for b in build_batches(manifest) if b != "dynamic"]
    table = load_quality_table()
    out = []
    for precision in precisions(manifest):
        for batch in (fixed or batches):
            pipe = CompiledPipeline(build, precision, batch)
            frames = 8
            poses = PoseSource(seed=HELDOUT_SEED, frames=frames * batch).rendered(pipe.conditioning_keys)
            pose_at = [{r: p[t * batch:(t + 1) * batch] for r, p in poses.items()} for t in range(frames)]
            # (k, part stages drawn): a build with part stages is timed with them and without
            drawn = (True, False) if pipe.has_parts else (False,)
            levels = [(k, on) for k in range(pipe.max_steps + 1) for on in drawn]
            for t in range(warmup):
                pipe.frame(pose_at[t % frames], pipe.max_steps)
            samples: dict[tuple[int, bool], list[float]] = {level: [] for level in levels}
            for i in range(runs):
                for k, on in levels:
                    samples[k, on].append(
                        _timed(lambda k=k, on=on: pipe.frame(pose_at[i % frames], k, parts=on)) * 1e3)
            stages = (pipe.generator, pipe.refiner, pipe.upscaler)
            rounds = runs // 2 if runs >= 12 else None  # consecutive pairs of frames: one round each
            measured = []
            for k, on in levels:
                timed = samples[k, on][:2 * rounds] if rounds else samples[k, on]
                used = (*stages, *pipe.part_runners.values()) if on else stages
                art_psnr = min(r.record.verification.psnr_db for r in used if r)
                measured.append(PipelineProfile(
                    pipeline=manifest.pipeline, generator=pipe.generator.record.stage, precision=precision, steps=k,
                    batch=batch, resolution=pipe.resolution, parts=on,
                    latency=LatencyStats.from_samples(timed, warmup, rounds=rounds),
                    quality=quality_record(manifest.pipeline, k, art_psnr, table,
                                           without_parts=pipe.has_parts and not on)))
            log(f"pipeline {precision} batch {batch}: " + ", ".join(
                f"k={p.steps}{p.parts_tag} {p.latency.p50_ms:.1f} ms" for p in measured), 1)
            out += measured
    return out


def profile_local(build: str | Path, **options) -> DeviceProfile:
    """Profile one build on this machine (see `profile_local_builds` for the options)."""
    return profile_local_builds([build], **options)[0]


def profile_local_builds(builds: list[str | Path], *, runs: int = 60, warmup: int = 5,
                         batches: tuple[int, ...] = (1,), pipeline_runs: int = 20, pipelines: bool = True,
                         peak_gmacs: float | None = None, device_id: str | None = None, rounds: int = 20,
                         progress: Progress | None = None) -> list[DeviceProfile]:
    """A profile per build, their artifacts measured in the same rounds. With several builds the
    profiles share a `pairing` id, and `hpv compare` compares them round by round."""
    import uuid

    from hpv.runtime.build import RUNNABLE, load_build
    from hpv.stages.checkpoint import sha256_file
    from hpv.targets import MAX_BATCH

    log = progress or (lambda *_a, **_k: None)
    if any(not 1 <= b <= MAX_BATCH for b in batches):
        raise ConfigError(f"batch sizes must be 1..{MAX_BATCH}, got {list(batches)}")
    manifests = [load_manifest(b) for b in builds]
    for build, manifest in zip(builds, manifests):
        if not any(a.format in RUNNABLE for a in manifest.artifacts):
            raise ConfigError(f"{build} holds {manifest.artifacts[0].format} artifacts; --device local runs "
                              f"{', '.join(RUNNABLE)} (Core ML: the macOS job; phones: --device adb)")
    # Each build loaded and checked against its artifacts' signatures once, before any timing.
    loaded = [load_build(b, m) for b, m in zip(builds, manifests)]
    builds = [b.folder for b in loaded]
    watch = _MachineWatch()
    peak = peak_gmacs or measure_peak_gmacs()
    log(f"fp32 GEMM peak of this machine: {peak:.1f} GMAC/s")
    rounds = min(rounds, runs)
    artifacts = profile_artifacts(loaded, runs=runs, warmup=warmup, batches=batches,
                                  rounds=rounds, peak_gmacs=peak, progress=log)
    identity = local_identity(peak)
    if device_id:
        identity = identity.model_copy(update={"id": device_id})
    pairing = uuid.uuid4().hex if len(builds) > 1 else None
    out = []
    for build, manifest, arts, checked in zip(builds, manifests, artifacts, loaded):
        pipes = profile_pipelines(checked, batches=list(batches), runs=pipeline_runs, warmup=2,
                                  progress=log) if pipelines and manifest.pipeline else []
        out.append(DeviceProfile(
            device=identity, target=manifest.target, manifest_sha256=sha256_file(build / MANIFEST_NAME),
            measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), threads=os.cpu_count(),
            artifacts=arts, pipelines=pipes, pairing=pairing))
    # Noise, measured over the whole run: the builds were timed in the same rounds, so alike.
    other, load = watch.other_cpu_fraction(), _load_average()
    return [d.model_copy(update={"noise": noise_record(d.artifacts, d.pipelines, other_cpu_fraction=other,
                                                       load_average=load)}) for d in out]


def add_roofline(device: DeviceProfile, build: Path, peak_gmacs: float | None) -> DeviceProfile:
    """MACs, achieved GMAC/s and (with a known peak) the roofline fraction for a profile measured
    elsewhere (a phone): the MACs come from the stages the manifest names."""
    records = {a.path: a for a in load_manifest(build, check_files=False).artifacts}
    artifacts = []
    for a in device.artifacts:
        macs = a.macs if a.macs is not None else (_macs(records[a.artifact]) if a.artifact in records else None)
        achieved = macs * a.batch / a.latency.p50_ms / 1e6 if macs and a.latency.p50_ms > 0 else None
        artifacts.append(a.model_copy(update={
            "macs": macs, "achieved_gmacs": achieved,
            "roofline_fraction": achieved / peak_gmacs if achieved and peak_gmacs else None}))
    identity = device.device.model_copy(update={"peak_gmacs": peak_gmacs}) if peak_gmacs else device.device
    return device.model_copy(update={"artifacts": artifacts, "device": identity})
