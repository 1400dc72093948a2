"""`hpv profile BUILD --device chromium[:wasm|:webgpu]`: a build measured inside headless Chromium
on an onnxruntime-web execution provider, into the same device profile format as `--device local`
(so `hpv schedule`, `hpv report` and `hpv compare` read it unchanged).

Artifacts are timed in the onnxruntime-web harness page (one call's inputs uploaded once, then
`runs` calls timed with performance.now() in the page, each round after a fresh session); whole
frames per precision and k (with the part stages and without, where the build has them) go
through the web runtime package (`web/dist/hpv.js`, Web Worker), in turns within each round. The device's identity names the browser, onnxruntime-web, the EP,
its threads and (WebGPU) the adapter: a fallback (software) adapter is named as such in the id and
the model, and only its artifacts are recorded: no whole-frame figures, so `hpv schedule` never
plans on it (`hpv profile` says so)."""

from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from hpv.artifacts.manifest import MANIFEST_NAME, load_manifest
from hpv.compiler.web.runner import BrowserSession, WebEP
from hpv.profiles.schema import (
    ArtifactProfile, DelegateRecord, DeviceIdentity, DeviceProfile, LatencyStats, PipelineProfile, noise_record,
)


def parse_device(text: str) -> tuple[WebEP, int]:
    """`chromium`, `chromium:wasm`, `chromium:wasm:2` (threads), `chromium:webgpu`."""
    from hpv.compiler.web.runner import parse_verified_on

    parsed = parse_verified_on(text)
    if parsed is None:
        raise ValueError(text)
    return parsed


def is_fallback(session_info: dict) -> bool:
    return bool((session_info.get("adapter") or {}).get("isFallbackAdapter"))


def browser_identity(session: BrowserSession) -> DeviceIdentity:
    from hpv.profiles.local import local_identity

    host = local_identity(None)
    info = session.info
    runtimes = {"chromium": session.chromium, "onnxruntime-web": session.ort_web, "execution_provider": session.ep.value,
                "threads": str(session.threads)}
    label = f"{session.ep.value} {session.threads} thread{'s' * (session.threads != 1)}"
    ident = f"chromium-{session.ep.value}-{session.threads}t"
    if session.ep is WebEP.WEBGPU:
        a = info.get("adapter") or {}
        desc = " ".join(filter(None, (a.get("vendor"), a.get("architecture"), a.get("description")))) or "unknown adapter"
        runtimes["adapter"] = desc + (" (fallback adapter)" if is_fallback(info) else "")
        label = f"webgpu on {runtimes['adapter']}"
        if is_fallback(info):
            ident += "-fallback"
            label += ": software emulation, timings not for planning"
    return DeviceIdentity(id=f"{ident}-{host.id}"[:100], model=f"Chromium {session.chromium} ({label}) on {host.model}",
                          os=host.os, cpu=host.cpu, kind="local", runtimes=runtimes)


def _artifact_profiles(session: BrowserSession, build: Path, manifest, *, runs: int, warmup: int, rounds: int,
                       log) -> list[ArtifactProfile]:
    from hpv.profiles.local import _feeds, _macs

    out = []
    per_round = math.ceil(runs / rounds)
    for record in manifest.artifacts:
        feeds = _feeds(record, 1, np.random.default_rng(0))
        samples, first = [], None
        for i in range(rounds):
            session.release()  # each round after a fresh session
            t = session.time(build / record.path, feeds, per_round, warmup if i == 0 else 1)
            first = first or t
            samples += t["times"]
        latency = LatencyStats.from_samples(samples, warmup=warmup, rounds=rounds)
        macs = _macs(record)
        out.append(ArtifactProfile(
            artifact=record.path, stage=record.stage, format=record.format, precision=record.precision, batch=1,
            load_ms=round(first["load_ms"], 3) if first.get("load_ms") is not None else None,
            first_ms=round(first["first_ms"], 3), latency=latency, macs=macs,
            achieved_gmacs=macs / latency.p50_ms / 1e6 if macs else None,
            delegate=DelegateRecord(name=session.ep.value), verification_psnr_db=record.verification.psnr_db))
        log(f"{record.path}: p50 {latency.p50_ms:.2f} ms, p90 {latency.p90_ms:.2f} ms (in Chromium)", 1)
    session.release()
    return out


def _pipeline_profiles(build: Path, manifest, ep: WebEP, threads: int, *, runs: int, log) -> list[PipelineProfile]:
    """Whole frames per precision and k through the web runtime; where the build has part stages,
    each k with them and without (as `hpv.profiles.local` times them), all in turns within each round."""
    from hpv.calibration import HELDOUT_SEED, PoseSource
    from hpv.compiler.web.page import RuntimePage
    from hpv.pose.conditioning import KEYPOINTS
    from hpv.profiles.quality import load_quality_table, quality_record
    from hpv.runtime.pipeline import precisions

    keypoints = PoseSource(seed=HELDOUT_SEED, frames=8).rendered([KEYPOINTS])[KEYPOINTS]
    table = load_quality_table()
    part_stages = set(manifest.part_stages.values())
    out = []
    for precision in precisions(manifest):
        with RuntimePage(build, keypoints, precision=precision, threads=threads, ep=ep.value) as page:
            has_parts = page.has_parts
            drawn = (True, False) if has_parts else (False,)
            levels = [(k, on) for k in range(page.ready["maxSteps"] + 1) for on in drawn]
            page.time(levels[-1][0], 2, warmup=1)
            rounds = max(1, min(runs // 2, 10))
            per = math.ceil(runs / rounds)
            samples = {level: [] for level in levels}
            for _ in range(rounds):
                for k, on in levels:
                    samples[k, on] += page.time(k, per, warmup=1, parts=on)
            resolution = int(page.ready["resolution"])
        generator = next(a.stage for a in manifest.artifacts if a.state)
        measured = []
        for k, on in levels:
            used = [a for a in manifest.artifacts if a.precision == precision and (on or a.stage not in part_stages)]
            measured.append(PipelineProfile(
                pipeline=manifest.pipeline, generator=generator, precision=precision, steps=k, batch=1,
                resolution=resolution, parts=on,
                latency=LatencyStats.from_samples(samples[k, on][:per * rounds], 1, rounds=rounds),
                quality=quality_record(manifest.pipeline, k, min(a.verification.psnr_db for a in used), table,
                                       without_parts=has_parts and not on)))
        log(f"pipeline {precision} in Chromium: " + ", ".join(
            f"k={p.steps}{p.parts_tag} {p.latency.p50_ms:.1f} ms" for p in measured), 1)
        out += measured
    return out


def profile_chromium(build: str | Path, *, ep: WebEP = WebEP.WASM, threads: int = 1, runs: int = 60, warmup: int = 5,
                     rounds: int = 5, pipeline_runs: int = 20, pipelines: bool = True, device_id: str | None = None,
                     progress=None) -> DeviceProfile:
    from hpv.profiles.local import _load_average, _MachineWatch
    from hpv.stages.checkpoint import sha256_file

    log = progress or (lambda *_a, **_k: None)
    build = Path(build)
    manifest = load_manifest(build)
    if any(a.format != "onnx" for a in manifest.artifacts):
        from hpv.errors import ConfigError

        raise ConfigError(f"{build} holds {manifest.artifacts[0].format} artifacts; --device chromium runs ONNX "
                          "builds (onnx-wasm, onnx-webgpu, onnx-cpu)")
    watch = _MachineWatch()
    session = BrowserSession(ep, threads)
    try:
        identity = browser_identity(session)
        log(f"Chromium {session.chromium}, onnxruntime-web {session.ort_web}, {session.checked_on}")
        rounds = max(1, min(rounds, runs))
        artifacts = _artifact_profiles(session, build, manifest, runs=runs, warmup=warmup, rounds=rounds, log=log)
        fallback = is_fallback(session.info)
    finally:
        session.close()
    if fallback and pipelines:  # recorded per artifact, as such; whole frames are what plans are made from
        log("fallback (software) WebGPU adapter: artifacts are recorded as such, no whole-frame figures "
            "(the scheduler plans on those, and these say nothing about a real GPU)")
        pipelines = False
    pipes = _pipeline_profiles(build, manifest, ep, threads, runs=pipeline_runs, log=log) \
        if pipelines and manifest.pipeline else []
    if device_id:
        identity = identity.model_copy(update={"id": device_id})
    profile = DeviceProfile(
        device=identity, target=manifest.target, manifest_sha256=sha256_file(build / MANIFEST_NAME),
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), threads=threads,
        artifacts=artifacts, pipelines=pipes)
    return profile.model_copy(update={"noise": noise_record(artifacts, pipes, other_cpu_fraction=watch.other_cpu_fraction(),
                                                            load_average=_load_average())})
