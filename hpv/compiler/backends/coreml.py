"""Core ML backend: torch.export -> ct.convert (mlprogram, fp16 compute) -> weight compression.

Core ML cannot run on Linux, so an artifact is checked as far as Linux allows, and the manifest
says exactly that (`checked_on = "coreml-spec+weights"`):
- the spec: inputs, outputs and states against the stage's declaration; ops; weight dtypes; the
  compression ops asked for; ops and tensor sizes likely to fall back from the accelerator;
- the weights: the model's own weights, decompressed, are loaded into the PyTorch stage, whose
  state-carrying rollout is compared with the uncompressed stage's (the compression's effect);
- fp16 headroom: the largest activation over the calibration frames must fit in fp16.
The macOS job (`python -m hpv.compiler.coreml.macos_check`) runs the models themselves."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from hpv.compiler.backends import Backend, CompileJob, register_backend
from hpv.compiler.verify import torch_runner
from hpv.errors import ExportError, TargetSpecError, VerificationError
from hpv.targets import Precision, Target

FP16_MAX = 65504.0


def _quiet_import() -> None:
    """coremltools logs that its native proxies are missing (true on Linux) and draws progress bars
    for every pass; neither helps a build log."""
    import logging
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("coremltools").setLevel(logging.ERROR)


def _options(target: Target) -> dict:
    return {"state": "explicit", "max_batch": 4, "weight_threshold": 0} | dict(target.options)


@register_backend
class CoreMLBackend(Backend):
    format = "coreml"
    extra = "coreml"
    requires = ("coremltools", "sklearn")  # k-means palettization needs scikit-learn
    tool_packages = ("torch", "coremltools", "scikit-learn")
    suffix = ".mlpackage"

    def __init__(self):
        _quiet_import()
        super().__init__()

    def check_target(self, target: Target) -> None:
        from hpv.compiler.coreml.convert import STATEFUL_MIN_IOS, Deployment

        deployment = Deployment.from_minimums(target.minimums, target.name)
        state = _options(target)["state"]
        if state not in ("explicit", "stateful"):
            raise TargetSpecError(f"target {target.name}: options.state is {state!r}; use \"explicit\" or \"stateful\"")
        if state == "stateful" and not deployment.supports_states:
            raise TargetSpecError(
                f"target {target.name}: state = \"stateful\" needs iOS {STATEFUL_MIN_IOS} / macOS 15 (Core ML "
                f"states), but the target deploys to {deployment}. Use target coreml-ios18, or state = \"explicit\".")
        if Precision.PRUNE50_PAL4 in target.precisions and not deployment.supports_states:
            raise TargetSpecError(f"target {target.name}: prune50-pal4 (joint compression) needs iOS 18 / macOS 15")

    def _deployment(self, target: Target):
        from hpv.compiler.coreml.convert import Deployment

        return Deployment.from_minimums(target.minimums, target.name)

    def _convert(self, stage, target: Target, path: Path, batch: int | None, compute_precision: str) -> dict:
        from hpv.compiler.coreml.convert import convert

        opts = _options(target)
        stateful = opts["state"] == "stateful" and stage.interface().is_recurrent
        model = convert(stage, deployment=self._deployment(target), stateful=stateful, batch=batch,
                        max_batch=int(opts["max_batch"]), compute_precision=compute_precision)
        _save(model, path)
        variant = "stateful" if stateful else ("explicit" if stage.interface().is_recurrent else "none")
        return {"deployment": str(self._deployment(target)), "state_variant": variant,
                "compute_precision": compute_precision,
                "batch_range": f"1..{opts['max_batch']}" if batch is None else str(batch)}

    def prepare(self, stage, target: Target, path: Path, log, batch: int | None = None) -> dict:
        log(f"convert (mlprogram, {self._deployment(target)})")
        return self._convert(stage, target, path, batch, "fp16")

    def lower(self, job: CompileJob, path: Path, log) -> dict:
        import coremltools as ct

        from hpv.compiler.coreml import inspect
        from hpv.compiler.coreml.compress import PALETTE_LEVELS, compress, expected_ops, few_valued_layers

        notes: dict = {}
        deployment = self._deployment(job.target)
        if job.precision is Precision.FP32:
            log("convert (fp32 compute)")
            shutil.rmtree(path)
            notes |= self._convert(job.stage, job.target, path, job.batch, "fp32")
        elif job.precision is not Precision.FP16:
            log(f"compress weights ({job.precision.value})")
            model = ct.models.MLModel(str(path), skip_model_load=True)
            levels = PALETTE_LEVELS.get(job.precision)
            kept_exact = len(few_valued_layers(model, levels)) if levels else 0
            _save(compress(model, job.precision, weight_threshold=int(_options(job.target)["weight_threshold"]),
                           joint_supported=deployment.supports_states), path)
        ops, weight_dtypes, shapes = inspect.op_inventory(path)
        notes["ops"] = ",".join(f"{k}:{v}" for k, v in ops.items())
        notes["weight_dtypes"] = ",".join(f"{k}:{v}" for k, v in weight_dtypes.items())
        wanted = expected_ops(job.precision, deployment.supports_states)
        if wanted - set(ops):
            raise ExportError(f"{path.name}: {job.precision.value} should leave {sorted(wanted)} in the program, "
                              f"but its ops are {sorted(ops)}")
        weights = sum(1 for p in job.stage.parameters() if p.ndim >= 2)
        if job.precision is not Precision.FP16 and job.precision is not Precision.FP32:
            # fewer distinct values than palette entries: not palettized (pruning may still apply)
            weights = max(weights - kept_exact, 0)
            notes["exact_weights"] = kept_exact
        compressed = max((n for k, n in ops.items() if k in wanted), default=0)  # joint modes: two ops a weight
        if wanted:
            notes["compressed_weights"] = compressed
            notes["dense_weights"] = max(weights - compressed, 0)  # weights left uncompressed (should be 0)
            if compressed < weights:
                raise ExportError(f"{path.name}: only {compressed} of {weights} weights were compressed; lower the "
                                  f"target's options.weight_threshold (now {_options(job.target)['weight_threshold']})")
        notes |= self._fallback_flags(job, ops, shapes)
        notes["max_abs_activation"] = round(_max_activation(job.stage, job.calibration), 3)
        if job.precision is not Precision.FP32 and notes["max_abs_activation"] > FP16_MAX:
            raise VerificationError(path.name, "max_abs_activation", notes["max_abs_activation"], FP16_MAX,
                                    "an activation overflows fp16 compute on the calibration frames")
        return notes

    @staticmethod
    def _fallback_flags(job: CompileJob, ops: dict[str, int], shapes: list[tuple[int, ...]]) -> dict:
        target = job.target
        flags = {"fallback_ops": ",".join(sorted(o for o in ops if o in target.fallback_prone_ops))}
        if target.max_tensor_dim:
            big = sorted({s for s in shapes if s and max(s) > target.max_tensor_dim})
            flags["oversize_tensors"] = ";".join("x".join(map(str, s)) for s in big[:5])
        on_ne = any("NeuralEngine" in u or u == "all" for u in target.compute_units)
        if on_ne and target.batch == "dynamic":
            flags["ne_batch_note"] = "flexible batch: the Neural Engine runs batch 1 (the default shape) only"
        if on_ne and job.precision is Precision.FP32:
            flags["ne_batch_note"] = "fp32 compute: the Neural Engine runs fp16 only; this model runs on GPU/CPU"
        flags["likely_fallback"] = bool(flags["fallback_ops"] or flags.get("oversize_tensors"))
        return flags

    def runner(self, path: Path, target: Target, stage, threads: int | None = None):
        """The PyTorch stage computing with the artifact's own weights (decompressed, as stored)."""
        from hpv.compiler.coreml.convert import fold_batchnorm
        from hpv.compiler.coreml.inspect import effective_state_dict

        model = fold_batchnorm(stage)
        model.load_state_dict(effective_state_dict(path, model, path.name))
        return torch_runner(model)

    def io_signature(self, path: Path) -> dict[str, list[dict]]:
        from hpv.compiler.coreml.inspect import io_signature

        return io_signature(path)

    def canonical_hash(self, path: Path) -> str:
        from hpv.compiler.coreml.inspect import canonical_sha256

        return canonical_sha256(path)


def _save(model, path: Path) -> None:
    """Save an .mlpackage in place of `path` (a folder) without a half-written package there."""
    tmp = path.with_name(f".tmp-{path.name}")  # coremltools insists on the .mlpackage suffix
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def _max_activation(stage, samples: list[dict[str, np.ndarray]]) -> float:
    """Largest absolute value any module outputs over the samples (fp16 tops out at 65504)."""
    peak = 0.0

    def hook(_module, _inputs, output):
        nonlocal peak
        for o in output if isinstance(output, tuple) else (output,):
            if isinstance(o, torch.Tensor) and o.is_floating_point():
                peak = max(peak, float(o.detach().abs().max()))

    handles = [m.register_forward_hook(hook) for m in stage.modules()]
    try:
        run = torch_runner(stage)
        for s in samples[:8]:
            run(s)
    finally:
        for h in handles:
            h.remove()
    return peak
