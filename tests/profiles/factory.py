"""Handmade device profiles for tests of everything that reads profiles (scheduler, compare,
report): realistic shapes, figures chosen by the test."""

from __future__ import annotations

import numpy as np

from hpv.profiles.schema import (
    PROFILE_SCHEMA_VERSION, ArtifactProfile, DeviceIdentity, DeviceProfile, LatencyStats,
    PipelineProfile, ProfileFile, QualityRecord, expected_psnr,
)

SHA = "0" * 64
# PSNR against ground truth per refinement step k, roughly the shipped default's.
DEFAULT_PSNR = (21.8, 24.3, 24.4, 24.4, 24.3)


def latency(p50_ms: float, *, spread: float = 0.05, runs: int = 50, seed: int = 0) -> LatencyStats:
    """Samples around p50_ms with a relative spread and a slow tail, like a real run."""
    rng = np.random.default_rng(seed)
    samples = p50_ms * (1 + spread * np.abs(rng.standard_normal(runs)))
    samples *= p50_ms / np.median(samples)
    return LatencyStats.from_samples(samples.tolist(), warmup=5)


def pipeline(k: int, frame_ms: float, *, name: str = "default", precision: str = "fp32",
             batch: int = 1, resolution: int = 768, generator: str = "fire_gen",
             psnr: float | None = None, artifact_psnr: float | None = 40.0, parts: bool = False,
             seed: int = 0) -> PipelineProfile:
    """A pipeline entry whose per-frame p50 is frame_ms (the call takes frame_ms * batch)."""
    base = DEFAULT_PSNR[min(k, len(DEFAULT_PSNR) - 1)] if psnr is None else psnr
    quality = QualityRecord(psnr_db=base, artifact_psnr_db=artifact_psnr,
                            expected_psnr_db=expected_psnr(base, artifact_psnr), source="handmade")
    return PipelineProfile(pipeline=name, generator=generator, precision=precision, steps=k, batch=batch,
                           resolution=resolution, parts=parts, latency=latency(frame_ms * batch, seed=seed + k),
                           quality=quality)


def artifact(stage: str, p50_ms: float, *, precision: str = "fp32", batch: int = 1, macs: int = 10**8,
             seed: int = 0) -> ArtifactProfile:
    lat = latency(p50_ms, seed=seed)
    return ArtifactProfile(artifact=f"{stage}.{precision}.onnx", stage=stage, format="onnx", precision=precision,
                           batch=batch, load_ms=12.0, first_ms=p50_ms * 3, latency=lat, peak_memory_mb=80.0,
                           macs=macs, achieved_gmacs=macs * batch / lat.p50_ms / 1e6, verification_psnr_db=40.0)


def device(device_id: str = "phone-a", *, step_ms: float = 8.0, gen_ms: float = 6.0, up_ms: float = 10.0,
           precisions: tuple[str, ...] = ("fp32",), max_steps: int = 4, target: str = "onnx-cpu",
           seed: int = 0) -> DeviceProfile:
    """A device whose pipeline at k steps costs gen_ms + k * step_ms + up_ms per frame (int8 is 30%
    faster and 1.5 dB worse in artifact PSNR than fp32 when both are listed)."""
    arts, pipes = [], []
    for p in precisions:
        speed = 0.7 if p == "int8" else 1.0
        art_psnr = 36.0 if p == "int8" else 60.0
        arts += [artifact("fire_gen", gen_ms * speed, precision=p, seed=seed),
                 artifact("refiner", step_ms * speed, precision=p, seed=seed + 1),
                 artifact("fire_upscaler", up_ms * speed, precision=p, seed=seed + 2)]
        for k in range(max_steps + 1):
            pipes.append(pipeline(k, (gen_ms + k * step_ms + up_ms) * speed, precision=p,
                                  artifact_psnr=art_psnr, seed=seed))
    return DeviceProfile(
        device=DeviceIdentity(id=device_id, model=device_id, soc="test-soc", os="Android 14", kind="android",
                              runtimes={"onnxruntime": "1.32.0"}, peak_gmacs=100.0),
        target=target, manifest_sha256=SHA, measured_at="2026-11-29T00:00:00Z", threads=2,
        artifacts=arts, pipelines=pipes)


def parts_device(name: str = "parts") -> DeviceProfile:
    """A device with pipeline `name` at 768px, k = 0..1, its part stages on (6 ms, +0.7 dB) or off,
    and k=0 at 512px without them (12 ms) and with them (14 ms). Per-frame p50 at 768px: off
    16 + 10k ms, on 22 + 10k ms; p90 ~4.7% over."""
    on_db, off_db = (22.5, 25.0), (21.8, 24.3)
    pipes = [pipeline(k, 16 + 10 * k + 6 * on, name=name, parts=on, psnr=(on_db if on else off_db)[k],
                      artifact_psnr=None) for k in range(2) for on in (True, False)]
    pipes += [pipeline(0, 12, name=name, resolution=512, psnr=20.0, artifact_psnr=None),
              pipeline(0, 14, name=name, resolution=512, parts=True, psnr=20.5, artifact_psnr=None)]
    return device().model_copy(update={"pipelines": pipes})


def profile(*devices: DeviceProfile) -> ProfileFile:
    return ProfileFile(schema_version=PROFILE_SCHEMA_VERSION, generator="tests",
                       devices=list(devices) or [device()])
