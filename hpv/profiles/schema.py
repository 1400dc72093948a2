"""The device profile: what the profiler measured on one or more devices, and what the scheduler
and `hpv compare` read. Versioned, validated on read (unknown keys refused), with a JSON Schema file
beside this module for other languages. Profiles of several devices merge into one file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hpv.errors import ProfileError

PROFILE_SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "profile.schema.json"
MAX_LATENCY_MS = 3_600_000.0  # an hour per call: anything above is a broken timer or unit, not a measurement
Ms = Annotated[float, Field(ge=0, le=MAX_LATENCY_MS)]

# The outlier fence of robust_p90 (see there): a sample is an outlier when it is more than
# FENCE_SIGMAS robust standard deviations (1.4826 x MAD, a normal's sigma) above the median, and
# at least FENCE_FLOOR x the median above it: a run within 25% of the median is never an outlier
# (a steady run or a timer's steps give MAD ~ 0, and a skewed tail is not a burst).
MAD_TO_SIGMA = 1.4826
FENCE_SIGMAS = 3.0
FENCE_FLOOR = 0.25
# At most this fraction of the samples is dropped as outliers: more slow samples than that are
# not a burst but the state the machine was in, and the p90 keeps them.
MAX_OUTLIER_FRACTION = 0.25


def _percentile(ordered: list[float], q: float) -> float:
    """numpy's default (linear) percentile of an ascending list, in plain Python."""
    at = q / 100 * (len(ordered) - 1)
    lo = math.floor(at)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (at - lo)


def mad(samples: list[float]) -> float:
    """Median absolute deviation from the median."""
    ordered = sorted(samples)
    med = _percentile(ordered, 50)
    return _percentile(sorted(abs(x - med) for x in ordered), 50)


def robust_p90(samples: list[float]) -> tuple[float, int]:
    """(p90 without the outliers, how many samples are outliers).

    Outliers are the samples above the fence median + max(3 x 1.4826 x MAD, 0.25 x median); they
    are dropped, the slowest first and at most a quarter of all samples, and the p90 is taken of
    the rest (linear interpolation, as numpy). A burst of slow runs (another process took the CPU for a moment)
    moves neither the median nor the MAD much, so it changes this figure little, while it can
    multiply the plain p90 of 20 runs. It is never above the plain p90; without outliers it is the
    plain p90."""
    ordered = sorted(float(x) for x in samples)
    if not ordered:
        raise ValueError("no samples")
    med = _percentile(ordered, 50)
    fence = med + max(FENCE_SIGMAS * MAD_TO_SIGMA * mad(ordered), FENCE_FLOOR * med)
    beyond = sum(x > fence for x in ordered)
    dropped = min(beyond, math.floor(MAX_OUTLIER_FRACTION * len(ordered)))
    return _percentile(ordered[:len(ordered) - dropped], 90), beyond


class _Strict(BaseModel):
    # NaN and infinity are refused in every figure: a NaN latency passes every comparison, so a CI
    # gate on a garbage profile would report no regression.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LatencyStats(_Strict):
    """Warm latency of one call, in milliseconds, over `runs` timed runs after `warmup` untimed ones.
    `samples_ms` keeps every timed run (in order) so a comparison can bound the median's noise."""

    runs: int = Field(ge=1)
    warmup: int = Field(ge=0)
    p50_ms: Ms
    p90_ms: Ms
    p99_ms: Ms
    mean_ms: Ms
    min_ms: Ms
    samples_ms: list[Ms] = Field(default_factory=list, description="every timed run; may be empty "
                                 "when the runtime only reports aggregates (benchmark_model)")
    rounds: int | None = Field(None, ge=1, description="samples_ms is this many equal consecutive blocks, each "
                               "timed after a fresh load at another moment; null: one block")
    spread: float | None = Field(None, ge=1, description="noise: p90_ms / p50_ms (1.1 is a quiet machine; "
                                 "null: not recorded, or p50 is 0)")
    mad_ms: Ms | None = Field(None, description="noise: median absolute deviation of samples_ms from their median "
                              "(robust: a burst of slow runs barely moves it); null: no samples")
    outliers: int | None = Field(None, ge=0, description="noise: samples beyond the outlier fence, median + "
                                 "max(3 x 1.4826 x mad_ms, 0.25 x median); robust_p90_ms leaves them out, "
                                 "at most a quarter of all samples; null: no samples")
    robust_p90_ms: Ms | None = Field(None, description="p90 of samples_ms without their outliers (see outliers): "
                                     "what the scheduler plans on; null: no samples, the scheduler uses p90_ms")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.min_ms <= self.p50_ms <= self.p90_ms <= self.p99_ms:
            raise ValueError(f"latency figures out of order: min {self.min_ms} p50 {self.p50_ms} "
                             f"p90 {self.p90_ms} p99 {self.p99_ms}")
        if self.samples_ms and len(self.samples_ms) != self.runs:
            raise ValueError(f"{len(self.samples_ms)} samples for {self.runs} runs")
        if self.rounds and self.runs % self.rounds:
            raise ValueError(f"{self.runs} runs do not split into {self.rounds} equal rounds")
        if self.outliers is not None and self.outliers > self.runs:
            raise ValueError(f"{self.outliers} outliers of {self.runs} runs")
        if self.robust_p90_ms is not None and not self.min_ms <= self.robust_p90_ms <= self.p90_ms:
            raise ValueError(f"robust_p90_ms {self.robust_p90_ms} is not between min {self.min_ms} and p90 {self.p90_ms}")
        return self

    @property
    def planning_p90_ms(self) -> float:
        """The p90 the scheduler plans on: without outliers (`robust_p90`) where samples were kept,
        computed from them (profiles written before the figure was recorded get it too); else the
        stored robust figure, else the plain p90 (runtimes that report aggregates only)."""
        if self.samples_ms:
            return robust_p90(self.samples_ms)[0]
        return self.p90_ms if self.robust_p90_ms is None else self.robust_p90_ms

    @property
    def relative_mad(self) -> float | None:
        """mad / median: the robust counterpart of spread (0.03 is a quiet machine)."""
        figure = self.mad_ms if self.mad_ms is not None else (mad(self.samples_ms) if self.samples_ms else None)
        return figure / self.p50_ms if figure is not None and self.p50_ms > 0 else None

    @classmethod
    def from_samples(cls, samples_ms: list[float], warmup: int, rounds: int | None = None) -> LatencyStats:
        import numpy as np

        if not samples_ms:
            raise ValueError("no timed runs")
        a = np.asarray([round(float(x), 4) for x in samples_ms], dtype=np.float64)  # the figures of what is kept
        p50, p90, p99 = (float(np.percentile(a, q)) for q in (50, 90, 99))
        kept = a.tolist()
        robust, outliers = robust_p90(kept)
        return cls(runs=len(a), warmup=warmup, p50_ms=p50, p90_ms=p90, p99_ms=p99,
                   mean_ms=float(a.mean()), min_ms=float(a.min()), samples_ms=kept, rounds=rounds,
                   spread=round(p90 / p50, 4) if p50 > 0 else None, mad_ms=round(mad(kept), 4),
                   outliers=outliers, robust_p90_ms=min(max(robust, float(a.min())), p90))


class DelegateRecord(_Strict):
    name: str = Field(description="delegate or compute unit, e.g. gpu, nnapi, xnnpack, CPUExecutionProvider")
    nodes_delegated: int | None = Field(None, ge=0, description='from "Replacing N out of M node(s)"')
    nodes_total: int | None = Field(None, ge=0)
    partitions: int | None = Field(None, ge=0)


class ArtifactProfile(_Strict):
    """One artifact of the manifest at one batch size."""

    artifact: str = Field(description="the artifact's path in its manifest")
    stage: str
    format: str
    precision: str
    batch: int = Field(ge=1, description="batch size of each timed call")
    load_ms: float | None = Field(None, ge=0, description="time to load and prepare the model")
    first_ms: float | None = Field(None, ge=0, description="the first inference after loading")
    latency: LatencyStats = Field(description="per call (a whole batch)")
    peak_memory_mb: float | None = Field(None, ge=0, description="peak resident memory while it ran")
    macs: int | None = Field(None, ge=0, description="multiply-accumulates per frame")
    achieved_gmacs: float | None = Field(None, ge=0, description="macs * batch / p50, in GMAC/s")
    roofline_fraction: float | None = Field(None, ge=0, description="achieved / the device's peak GMAC/s")
    delegate: DelegateRecord | None = None
    verification_psnr_db: float | None = Field(None, description="from the manifest: PSNR against PyTorch")
    op_profile: dict[str, float] = Field(default_factory=dict, description="op type -> ms, where the runtime reports it")

    @property
    def per_frame_p50_ms(self) -> float:
        return self.latency.p50_ms / self.batch


class QualityRecord(_Strict):
    """Expected output quality of a pipeline configuration (test split, against ground truth)."""

    psnr_db: float = Field(description="PyTorch pipeline against ground truth at this k (shipped quality table): "
                           "the looks figure, (person PSNR + hand-box PSNR) / 2, where the table has it; "
                           "full-frame PSNR in tables made before it")
    ssim: float | None = Field(None, ge=-1, le=1, description="SSIM over the person region")
    flicker: float | None = None
    silhouette_iou: float | None = Field(None, ge=0, le=1, description="IoU of the chroma-keyed silhouettes")
    person_psnr_db: float | None = None
    hand_psnr_db: float | None = None
    face_psnr_db: float | None = None
    artifact_psnr_db: float | None = Field(None, description="worst verification PSNR of the artifacts "
                                           "used, against PyTorch (compression error)")
    expected_psnr_db: float = Field(description="psnr_db and artifact_psnr_db combined: the MSEs add; "
                                    "what the scheduler ranks configurations by")
    source: str = Field(description="where psnr_db came from")


class PipelineProfile(_Strict):
    """The whole pipeline per frame: generator + k refiner steps + upscaler (+ the part stages, where
    the build has them and `parts`), conversions included."""

    pipeline: str
    generator: str = Field(description="generator stage name")
    precision: str
    steps: int = Field(ge=0, description="refinement steps k")
    batch: int = Field(ge=1, description="independent sequences per call")
    resolution: int = Field(ge=1, description="output frame side in pixels")
    parts: bool = Field(False, description="part stages drawn and stitched (false: the build has none, "
                        "or they were left out)")
    latency: LatencyStats = Field(description="per call: `batch` frames, one of each sequence")
    quality: QualityRecord | None = None

    @property
    def parts_tag(self) -> str:
        """` +parts` when the part stages are drawn, else empty: the end of a configuration's name."""
        return " +parts" if self.parts else ""

    @property
    def per_frame_p90_ms(self) -> float:
        """The call's p90 without outliers (`LatencyStats.planning_p90_ms`) per frame: what the
        scheduler checks against the budget. The plain figure is `latency.p90_ms / batch`."""
        return self.latency.planning_p90_ms / self.batch


class DeviceIdentity(_Strict):
    id: str = Field(description="unique key of the device within a merged profile")
    model: str
    soc: str | None = None
    os: str
    cpu: str | None = None
    kind: Literal["local", "android", "ios", "macos", "farm"] = "local"
    runtimes: dict[str, str] = Field(default_factory=dict, description="runtime and delegate versions")
    peak_gmacs: float | None = Field(None, gt=0, description="the device's peak GMAC/s for the roofline; null: unknown")


class NoiseRecord(_Strict):
    """How noisy the whole profile was: figures over its configurations (artifacts and pipelines)
    and, where the profiler could see them, what else the machine was doing meanwhile."""

    configurations: int = Field(ge=0, description="configurations the figures are over")
    median_spread: float | None = Field(None, ge=1, description="median over configurations of p90 / p50")
    max_spread: float | None = Field(None, ge=1, description="the largest p90 / p50")
    max_spread_of: str | None = Field(None, description="the configuration with the largest p90 / p50")
    max_robust_spread: float | None = Field(None, ge=1, description="the largest robust_p90 / p50: above 1.5 "
                                            "even the plan's figure is unfit to plan on")
    median_relative_mad: float | None = Field(None, ge=0, description="median over configurations of MAD / median "
                                              "(0.03 is a quiet machine)")
    outlier_fraction: float | None = Field(None, ge=0, le=1, description="samples beyond their outlier fence, "
                                           "of all samples")
    other_cpu_fraction: float | None = Field(None, ge=0, le=1, description="share of the machine's CPU time "
                                             "(all cores) that other processes used while it was profiled; "
                                             "null: not measured")
    load_average: float | None = Field(None, ge=0, description="the machine's 1-minute load average when "
                                       "profiling ended (cores busy or waiting, this profiler included)")


def timed_configurations(artifacts: list[ArtifactProfile], pipelines: list[PipelineProfile]
                         ) -> list[tuple[str, LatencyStats]]:
    """(label, latency) of every pipeline configuration and artifact run with a positive p50."""
    timed = [(f"{p.pipeline} {p.precision} k={p.steps}{p.parts_tag} b{p.batch}", p.latency) for p in pipelines]
    timed += [(f"{a.artifact} b{a.batch}", a.latency) for a in artifacts]
    return [(label, lat) for label, lat in timed if lat.p50_ms > 0]


def noise_record(artifacts: list[ArtifactProfile], pipelines: list[PipelineProfile], *,
                 other_cpu_fraction: float | None = None, load_average: float | None = None) -> NoiseRecord:
    """The profile's noise figures from its measurements' (see NoiseRecord)."""
    import statistics

    timed = timed_configurations(artifacts, pipelines)
    spread = [(lat.p90_ms / lat.p50_ms, label) for label, lat in timed]
    robust = [lat.planning_p90_ms / lat.p50_ms for _, lat in timed]
    rel = [r for _, lat in timed if (r := lat.relative_mad) is not None]
    counted = [(robust_p90(lat.samples_ms)[1], lat.runs) for _, lat in timed if lat.samples_ms]
    worst = max(spread, default=None)
    return NoiseRecord(
        configurations=len(timed),
        median_spread=round(statistics.median(s for s, _ in spread), 4) if spread else None,
        max_spread=round(worst[0], 4) if worst else None, max_spread_of=worst[1] if worst else None,
        max_robust_spread=round(max(max(robust), 1.0), 4) if robust else None,
        median_relative_mad=round(statistics.median(rel), 4) if rel else None,
        outlier_fraction=round(sum(o for o, _ in counted) / sum(n for _, n in counted), 4) if counted else None,
        other_cpu_fraction=other_cpu_fraction, load_average=load_average)


class DeviceProfile(_Strict):
    device: DeviceIdentity
    target: str = Field(description="build target of the profiled artifacts")
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="the manifest measured")
    measured_at: str = Field(description="ISO 8601 UTC")
    threads: int | None = Field(None, ge=1)
    artifacts: list[ArtifactProfile]
    pipelines: list[PipelineProfile] = Field(default_factory=list)
    pairing: str | None = Field(None, description="profiles whose artifacts were measured in the same rounds "
                                "(`hpv profile A B`) share this id; `hpv compare` then compares round by round")
    noise: NoiseRecord | None = Field(None, description="how noisy the measurements were; null: not recorded "
                                      "(profiles written before it was)")


class ProfileFile(_Strict):
    schema_version: Literal[1]
    generator: str = Field(description="tool and version that wrote the file")
    devices: list[DeviceProfile]

    @model_validator(mode="after")
    def _unique_devices(self):
        keys = [(d.device.id, d.target) for d in self.devices]
        if len(keys) != len(set(keys)):
            raise ValueError(f"a device/target pair appears twice: {keys}")
        return self


def expected_psnr(psnr_db: float, artifact_psnr_db: float | None) -> float:
    """Ground-truth PSNR of a compiled pipeline, taking the compression error as independent of the
    model's own error: the two MSEs add."""
    if artifact_psnr_db is None or math.isinf(artifact_psnr_db):
        return psnr_db
    mse = 10 ** (-psnr_db / 10) + 10 ** (-artifact_psnr_db / 10)
    return -10 * math.log10(mse)


def merge(files: list[ProfileFile]) -> ProfileFile:
    """One file holding every device of `files`; a later entry for the same device and target
    replaces an earlier one."""
    from hpv import __version__

    by_key: dict[tuple[str, str], DeviceProfile] = {}
    for f in files:
        for d in f.devices:
            by_key[(d.device.id, d.target)] = d
    return ProfileFile(schema_version=PROFILE_SCHEMA_VERSION, generator=f"hpv {__version__}",
                       devices=list(by_key.values()))


def load_profile(path: str | Path) -> ProfileFile:
    path = Path(path)
    try:
        profile = ProfileFile.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ProfileError(f"no profile at {path}: make one with `hpv profile ARTIFACTS_DIR --out {path}`") from None
    except IsADirectoryError:
        raise ProfileError(f"{path} is a folder; give the profile's JSON file") from None
    except ValidationError as e:
        raise ProfileError(f"profile {path} is invalid:\n{e}") from None
    if not profile.devices:  # nothing to compare, plan or report: a gate must not pass on it
        raise ProfileError(f"profile {path} holds no devices: make one with `hpv profile ARTIFACTS_DIR --out {path}`")
    return profile


def write_profile(path: str | Path, profile: ProfileFile) -> Path:
    from hpv.atomic import write_text

    return write_text(Path(path), profile.model_dump_json(indent=1) + "\n")


def profile_json_schema() -> dict:
    from hpv.schemas import json_schema

    return json_schema(ProfileFile, "hpv device profile")


def write_schema(path: Path = SCHEMA_PATH) -> None:
    from hpv.schemas import write_json_schema

    write_json_schema(profile_json_schema(), path)
