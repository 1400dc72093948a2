"""The compile verb: a pipeline's stages -> verified artifacts of one target + manifest.

The build happens in a staging folder beside the output; only when every artifact is verified and
the manifest written is the staging folder moved onto `OUT/<target>`. A build killed at any moment
leaves either the previous complete build or none, never a manifest naming a missing file."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hpv import __version__
from hpv.artifacts.manifest import (
    SCHEMA_VERSION, ArtifactRecord, CheckDataRecord, Manifest, StateRecord, TensorRecord, VerificationRecord,
    write_manifest,
)
from hpv.calibration import CALIBRATION_SEED, HELDOUT_SEED, PoseSource, stage_data
from hpv.compiler.backends import CompileJob, get_backend
from hpv.compiler.verify import rollout, torch_runner, verify
from hpv.errors import ConfigError, ManifestError, VerificationError
from hpv.pipelines import DEFAULT_PIPELINE, PIPELINES, Pipeline
from hpv.reference import load_pipeline
from hpv.stages import STAGES
from hpv.stages.checkpoint import path_bytes, sha256_file
from hpv.targets import Precision, Target, get_target

# progress(message, advance=0, total=None, detail=False): a step begins; advance=1: an artifact is
# done; total: how many artifacts the build makes (once, before the first); detail=True: where the
# current step is (a frame count), not a new step.
Progress = Callable[..., None]


@dataclass(frozen=True)
class CompileRequest:
    target: str
    stages: tuple[str, ...] = ()  # empty: every stage of the pipeline
    precisions: tuple[str, ...] = ()  # empty: the target's default precisions
    out: Path = Path("artifacts")
    pipeline: str | None = None  # None: the default pipeline, or the first that has every stage asked
    pose: Path | None = None  # calibration poses; None: seeded synthetic motion
    weights: dict[str, str] = field(default_factory=dict)  # stage -> checkpoint path
    small: bool = False  # every stage at its small size: smoke builds and CI


@dataclass(frozen=True)
class BuildResult:
    folder: Path
    manifest: Manifest


def resolve_pipeline(request: CompileRequest) -> Pipeline:
    for name in request.stages:
        STAGES.get(name)  # unknown stage -> error naming the valid ones
    if request.pipeline is not None:
        pipeline = PIPELINES.get(request.pipeline)
        missing = [s for s in request.stages if pipeline.ref(s) is None]
        if missing:
            raise ConfigError(f"pipeline {pipeline.name!r} has no stage {missing[0]!r}; its stages are "
                              f"{[r.stage for r in pipeline.stages]}")
        return pipeline
    candidates = [DEFAULT_PIPELINE] + [p for p in PIPELINES.names() if p != DEFAULT_PIPELINE]
    for name in candidates:
        pipeline = PIPELINES.get(name)
        if all(pipeline.ref(s) is not None for s in request.stages):
            return pipeline
    raise ConfigError(f"no pipeline holds all of {list(request.stages)}; compile them separately")


def resolve_precisions(target: Target, names: tuple[str, ...]) -> list[Precision]:
    return [target.check_precision(n) for n in names] if names else list(target.default_precisions)


def _clean_leftovers(out: Path, target: str) -> None:
    for stale in out.glob(f".{target}.*"):
        shutil.rmtree(stale, ignore_errors=True)


def _swap_into_place(staging: Path, final: Path) -> None:
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def _tensor_records(specs, io_sig: list[dict]) -> list[TensorRecord]:
    """The declared interface, checked against what the artifact really holds: every declared
    tensor present, with the declared rank, and the declared sizes where the layouts agree."""
    actual = {t["name"]: t for t in io_sig}
    records = []
    for spec in specs:
        got = actual.get(spec.name)
        if got is None:
            raise ManifestError(f"artifact lacks declared tensor {spec.name!r} (has {sorted(actual)})")
        if len(got["shape"]) != len(spec.shape):
            raise ManifestError(f"tensor {spec.name!r} has rank {len(got['shape'])}, declared {len(spec.shape)}")
        layout = got.get("layout", spec.layout)
        if layout == spec.layout and any(isinstance(d, int) and isinstance(g, int) and d != g
                                         for d, g in zip(spec.shape, got["shape"])):
            raise ManifestError(f"tensor {spec.name!r} has shape {got['shape']}, declared {list(spec.shape)}")
        records.append(TensorRecord(name=spec.name, shape=list(got["shape"]), dtype=got["dtype"],
                                    layout=layout, value_range=spec.value_range,
                                    role=spec.role.value, quantization=got.get("quantization")))
    return records


def _state_records(itf, sig: dict) -> list[StateRecord]:
    """How the recurrent state travels: fed back by the app, or held in the model's own states."""
    states = {s["name"]: s for s in sig.get("states", [])}
    records = []
    for b in itf.state:
        held = next((n for n in states if b.input == n or b.input.removesuffix("_in") == n), None)
        if states and held is None:
            raise ManifestError(f"stateful artifact lacks a state for {b.input!r} (has {sorted(states)})")
        if held is not None and list(states[held]["shape"][1:]) != list(itf.input(b.input).shape[1:]):
            raise ManifestError(f"state {held!r} has shape {states[held]['shape']}, declared "
                                f"{list(itf.input(b.input).shape)}")
        records.append(StateRecord(input=b.input, output=b.output, model_state=held))
    return records


def _write_check_data(path: Path, stage, samples: list[dict]) -> CheckDataRecord:
    """Held-out inputs of a state-carrying rollout and the PyTorch stage's outputs, as an .npz."""
    import numpy as np

    itf = stage.interface()
    arrays, state = {}, {b.input: samples[0][b.input] for b in itf.state}
    for t, (feeds, outs) in enumerate(zip(samples, rollout(torch_runner(stage), stage, samples))):
        arrays |= {f"in/{k}/{t}": np.asarray(v, np.float32) for k, v in {**feeds, **state}.items()}
        arrays |= {f"ref/{k}/{t}": np.asarray(v, np.float32) for k, v in outs.items()}
        state = {b.input: outs[b.output] for b in itf.state}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return CheckDataRecord(path=path.name, bytes=path.stat().st_size, sha256=sha256_file(path), frames=len(samples))


def _group(samples: list[dict], batch: int | None) -> list[dict]:
    """Per-frame samples stacked into batches of a fixed-batch artifact's size."""
    if not batch or batch == 1:
        return samples
    import numpy as np

    return [{k: np.concatenate([s[k] for s in samples[i:i + batch]]) for k in samples[0]}
            for i in range(0, len(samples) - batch + 1, batch)]


def _verify_calls(frames: int, batch: int | None) -> int:
    """How often verification calls an artifact: each frame of the rollout at batch 1 (or a
    dynamic batch), plus one batched call (batch 3 for a dynamic batch; the fixed batch size)."""
    if batch is None:
        return frames + 1
    return frames if batch == 1 else 1


def _counted(run, label: str, calls: int, log):
    """The artifact's runner, reporting each call as the verification step's detail."""
    done = 0

    def counted(feeds):
        nonlocal done
        out = run(feeds)
        done += 1
        log(f"{label}: frame {done}/{calls} on the artifact", detail=True)
        return out

    return counted


def _build_stage(stage, batch, precisions, target, backend, calibration, heldout, weights, staging, log):
    """One stage at one batch size: convert once, then every precision from that conversion."""
    itf = stage.interface()
    calibration = _group(calibration, batch)
    tag = "" if batch is None else f".b{batch}"
    base = staging / f".{stage.name}{tag}.base{backend.suffix}"
    base_notes = backend.prepare(stage, target, base, lambda s: log(f"{stage.name}{tag}: {s}"), batch=batch)
    records = []
    for precision in precisions:
        label = f"{stage.name}.{precision.value}{tag}{backend.suffix}"
        path = staging / label
        if base.is_dir():
            shutil.copytree(base, path)
        else:
            shutil.copyfile(base, path)
        job = CompileJob(stage, precision, target, calibration, batch)
        notes = base_notes | backend.lower(job, path, lambda s, lb=label: log(f"{lb}: {s}"))
        samples = heldout.inputs[stage.name]
        calls = _verify_calls(len(samples), batch)
        what = {None: f"{len(samples)} held-out frames, then one batch-3 call", 1: f"{len(samples)} held-out frames"}
        log(f"{label}: verify on {target.verified_on} against PyTorch "
            f"({what.get(batch, f'one call at batch {batch}')})")
        runner = backend.runner(path, target, stage)
        # A runner may name what really ran it (a browser: its version, the runtime's, the EP).
        checked_on = getattr(runner, "checked_on", target.verified_on)
        run = _counted(runner, label, calls, log)
        try:
            result = verify(stage, run, samples, artifact=label,
                            checked_on=checked_on, tolerance=target.tolerance[precision],
                            inputs=heldout.source, batch=batch)
        except VerificationError:
            # A browser EP's fault can stay under its divergence limit at the outputs and still
            # fail PyTorch's tolerance: name the node it starts at (raises) when one departs.
            locate = getattr(runner, "locate_divergence", None)
            if locate is not None:
                locate(samples[0])
            raise
        sig = backend.io_signature(path)
        held_inputs = {b.input for b in itf.state} if sig.get("states") else set()
        held_outputs = {b.output for b in itf.state} if sig.get("states") else set()
        frames = int(target.options.get("check_frames", 0))
        if frames:
            log(f"{label}: check data for the macOS job ({frames} held-out frames through PyTorch)")
        check = _write_check_data(staging / f"{label}.check.npz", stage, heldout.inputs[stage.name][:frames]) \
            if frames else None
        records.append(ArtifactRecord(
            stage=stage.name, params=dataclasses.asdict(stage.params), format=target.format,
            precision=precision.value, batch="dynamic" if batch is None else batch,
            path=label, bytes=path_bytes(path), sha256=sha256_file(path),
            inputs=_tensor_records([t for t in itf.inputs if t.name not in held_inputs], sig["inputs"]),
            outputs=_tensor_records([t for t in itf.outputs if t.name not in held_outputs], sig["outputs"]),
            state=_state_records(itf, sig),
            weights=weights, verification=VerificationRecord(**result.to_json()),
            canonical_sha256=backend.canonical_hash(path), check_data=check,
            notes={k: v for k, v in notes.items() if isinstance(v, int | float | bool | str)},
        ))
        log(f"{label}: verified over {result.frames} frames, PSNR {result.psnr_db:.1f} dB, "
            f"max abs error {result.max_abs_error:.2g}", 1)
    shutil.rmtree(base) if base.is_dir() else base.unlink()
    return records


def compile(request: CompileRequest, progress: Progress | None = None) -> BuildResult:
    log = progress or (lambda _msg, advance=0, total=None, detail=False: None)
    target = get_target(request.target)
    precisions = resolve_precisions(target, request.precisions)
    pipeline = resolve_pipeline(request)
    stage_names = list(request.stages) or [r.stage for r in pipeline.stages]
    log(f"loading the {target.format} backend")  # its converters import in seconds (TensorFlow for tflite)
    backend = get_backend(target.format)
    backend.check_target(target)

    log(f"loading pipeline {pipeline.name}" + (" (small size)" if request.small else ""))
    lp = load_pipeline(pipeline, request.weights, small=request.small)
    calib_source = PoseSource(path=request.pose, seed=CALIBRATION_SEED, frames=24)
    heldout_source = PoseSource(seed=HELDOUT_SEED, frames=target.heldout_frames)
    log(f"calibration inputs: {calib_source.describe()}, through the PyTorch pipeline")
    calib = stage_data(lp, calib_source)
    log(f"held-out inputs for verification: {heldout_source.describe()}, through the PyTorch pipeline")
    heldout = stage_data(lp, heldout_source)
    batches: list[int | None] = [None] if target.batch == "dynamic" else list(target.batch)
    total = len(stage_names) * len(batches) * len(precisions)
    log(f"{total} artifact{'s' * (total != 1)} to build: {', '.join(stage_names)} x "
        f"{', '.join(p.value for p in precisions)}"
        + ("" if batches == [None] else f" x batch {', '.join(map(str, batches))}"), total=total)

    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(out, target.name)
    staging = out / f".{target.name}.staging-{os.getpid()}"
    staging.mkdir()
    try:
        records = []
        for name in stage_names:
            stage = lp.stages[name]
            for batch in batches:
                records += _build_stage(stage, batch, precisions, target, backend, calib.inputs[name],
                                        heldout, lp.weights[name], staging, log)
        manifest = Manifest(
            schema_version=SCHEMA_VERSION, target=target.name, pipeline=pipeline.name,
            generator=f"hpv-compile {__version__}", tool_versions=backend.tool_versions(),
            calibration=calib.source, artifacts=records,
            part_stages={part: stage for part, stage in pipeline.part_stages.items() if stage in stage_names},
            max_steps=pipeline.max_steps,
        )
        write_manifest(staging, manifest)
        final = out / target.name
        _swap_into_place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildResult(final, manifest)
