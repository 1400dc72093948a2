"""Verify a compiled artifact against its PyTorch stage: a rollout over held-out frames in which
the artifact carries its own recurrent state (so drift shows), plus one batched call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from hpv.errors import VerificationError
from hpv.metrics import max_abs_error, psnr
from hpv.stages import Stage
from hpv.targets import Tolerance

Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Verification:
    checked_on: str
    psnr_db: float
    psnr_late_db: float | None
    max_abs_error: float
    frames: int
    batches: tuple[int, ...]
    tolerance: Tolerance
    inputs: str

    def to_json(self) -> dict:
        return {
            "checked_on": self.checked_on,
            "psnr_db": round(self.psnr_db, 3),
            "psnr_late_db": None if self.psnr_late_db is None else round(self.psnr_late_db, 3),
            "max_abs_error": float(f"{self.max_abs_error:.6g}"),
            "frames": self.frames,
            "batches": list(self.batches),
            "tolerance": self.tolerance.model_dump(),
            "inputs": self.inputs,
        }


def torch_runner(stage: Stage) -> Runner:
    itf = stage.interface()
    names, inputs = itf.output_names, itf.input_names

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            outs = stage(*(torch.from_numpy(feeds[n]) for n in inputs))
        return {n: o.numpy() for n, o in zip(names, outs)}

    return run


def rollout(run: Runner, stage: Stage, samples: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Run frames in order, feeding each state output back into its input."""
    itf = stage.interface()
    state = {b.input: samples[0][b.input] for b in itf.state}
    outs = []
    for s in samples:
        o = run({**s, **state})
        state = {b.input: o[b.output] for b in itf.state}
        outs.append(o)
    return outs


def _batched(samples: list[dict[str, np.ndarray]], batch: int) -> dict[str, np.ndarray]:
    picked = [samples[i % len(samples)] for i in range(batch)]
    return {k: np.concatenate([s[k] for s in picked]) for k in picked[0]}


def _non_finite(outs: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, int]:
    """Output name -> how many of its values are NaN or infinite over every call, for the outputs
    that hold any."""
    counts = {n: sum(int(np.count_nonzero(~np.isfinite(o[n]))) for o in outs) for n in names}
    return {n: c for n, c in counts.items() if c}


@contextmanager
def _first_overflow(stage: Stage) -> Iterator[list[tuple[str, str, int]]]:
    """While open, records (module name, module type, non-finite values) of the first leaf module
    of `stage` whose output holds NaN or infinity. Huge weights (1e30) overflow inside the stage
    while a final tanh or clamp still gives finite outputs, which an artifact then matches."""
    first: list[tuple[str, str, int]] = []

    def watch(name: str):
        def hook(module, _inputs, output):
            if first:
                return
            tensors = output if isinstance(output, tuple | list) else (output,)
            bad = sum(int((~torch.isfinite(t)).sum()) for t in tensors
                      if isinstance(t, torch.Tensor) and t.is_floating_point())
            if bad:
                first.append((name, type(module).__name__, bad))
        return hook

    handles = [m.register_forward_hook(watch(n)) for n, m in stage.named_modules() if n and not any(m.children())]
    try:
        yield first
    finally:
        for h in handles:
            h.remove()


def _refuse_non_finite(artifact: str, names: list[str], got: list[dict], want: list[dict],
                       overflow: list[tuple[str, str, int]], checked_on: str) -> None:
    """NaN or infinity fails verification: the figures of such outputs are NaN, and NaN passes every
    `<` test. The PyTorch side is checked first: there the weights are at fault, not the conversion."""
    wrong = _non_finite(want, names)
    if overflow or wrong:
        module, kind, count = overflow[0] if overflow else (next(iter(wrong)), "output", sum(wrong.values()))
        raise VerificationError(
            artifact, "non_finite_values", count, 0,
            f"the PyTorch stage itself computes NaN or infinity on {checked_on} (first in {module!r}, {kind}): "
            f"its weights hold NaN, infinity or values so large that they overflow; check the checkpoint")
    bad = _non_finite(got, names)
    if bad:
        where = ", ".join(f"{n}: {c}" for n, c in bad.items())
        raise VerificationError(
            artifact, "non_finite_values", sum(bad.values()), 0,
            f"outputs of the artifact on {checked_on} hold NaN or infinity ({where}) where PyTorch's are "
            f"finite: the conversion overflows (float16 range?) or is broken")


def verify(
    stage: Stage,
    run: Runner,
    samples: list[dict[str, np.ndarray]],
    *,
    artifact: str,
    checked_on: str,
    tolerance: Tolerance,
    inputs: str,
    batch: int | None = None,
) -> Verification:
    """Compare `run` with the PyTorch stage; raise VerificationError outside `tolerance`.

    batch: the artifact's fixed batch size, or None for a dynamic batch (checked at 1 and 3)."""
    itf = stage.interface()
    ref = torch_runner(stage)
    got, want = [], []
    batches = (batch,) if batch else (1, 3)
    with _first_overflow(stage) as overflow:
        if batches[0] == 1:
            want += rollout(ref, stage, samples)
        for b in batches:
            if b != 1:
                want.append(ref(_batched(samples, b)))
    if batches[0] == 1:
        got += rollout(run, stage, samples)
    for b in batches:
        if b != 1:
            got.append(run(_batched(samples, b)))
    _refuse_non_finite(artifact, itf.output_names, got, want, overflow, checked_on)

    def worst_image_psnr(a: list[dict], b: list[dict]) -> float:
        scores = []
        for spec in itf.image_outputs():
            g = np.concatenate([o[spec.name].reshape(-1) for o in a])
            w = np.concatenate([o[spec.name].reshape(-1) for o in b])
            scores.append(psnr(g, w, spec.value_range[1] - spec.value_range[0]))
        return float(np.min(scores))  # NaN-propagating, unlike min()

    worst_psnr = worst_image_psnr(got, want)
    # Second half of the rollout alone: an artifact whose state drifts away from PyTorch's loses here.
    n = len(samples) if batches[0] == 1 else 0
    late_psnr = worst_image_psnr(got[n // 2:n], want[n // 2:n]) if n >= 4 else None
    worst_abs = max(
        max_abs_error(o[n], r[n]) for o, r in zip(got, want) for n in itf.output_names
    )
    result = Verification(checked_on, worst_psnr, late_psnr, worst_abs, len(samples), batches, tolerance, inputs)
    # Written as "not within": a NaN figure or tolerance fails instead of passing every comparison.
    if not worst_psnr >= tolerance.min_psnr_db:
        raise VerificationError(artifact, "psnr_db", worst_psnr, tolerance.min_psnr_db,
                                f"checked on {checked_on} over {len(samples)} held-out frames")
    if late_psnr is not None and not late_psnr >= tolerance.min_psnr_db:
        raise VerificationError(artifact, "psnr_late_db", late_psnr, tolerance.min_psnr_db,
                                f"the second half of a {n}-frame rollout on {checked_on} drifted")
    if tolerance.max_abs_error is not None and not worst_abs <= tolerance.max_abs_error:
        raise VerificationError(artifact, "max_abs_error", worst_abs, tolerance.max_abs_error,
                                f"checked on {checked_on} over {len(samples)} held-out frames")
    return result
