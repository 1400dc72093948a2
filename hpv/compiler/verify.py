"""Verify a compiled artifact against its PyTorch stage: a rollout over held-out frames in which
the artifact carries its own recurrent state (so drift shows), plus one batched call."""

from __future__ import annotations

from collections.abc import Callable
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
    if batches[0] == 1:
        got += rollout(run, stage, samples)
        want += rollout(ref, stage, samples)
    for b in batches:
        if b == 1:
            continue
        feeds = _batched(samples, b)
        got.append(run(feeds))
        want.append(ref(feeds))

    def worst_image_psnr(a: list[dict], b: list[dict]) -> float:
        scores = []
        for spec in itf.image_outputs():
            g = np.concatenate([o[spec.name].reshape(-1) for o in a])
            w = np.concatenate([o[spec.name].reshape(-1) for o in b])
            scores.append(psnr(g, w, spec.value_range[1] - spec.value_range[0]))
        return min(scores)

    worst_psnr = worst_image_psnr(got, want)
    # Second half of the rollout alone: an artifact whose state drifts away from PyTorch's loses here.
    n = len(samples) if batches[0] == 1 else 0
    late_psnr = worst_image_psnr(got[n // 2:n], want[n // 2:n]) if n >= 4 else None
    worst_abs = max(
        max_abs_error(o[n], r[n]) for o, r in zip(got, want) for n in itf.output_names
    )
    result = Verification(checked_on, worst_psnr, late_psnr, worst_abs, len(samples), batches, tolerance, inputs)
    if worst_psnr < tolerance.min_psnr_db:
        raise VerificationError(artifact, "psnr_db", worst_psnr, tolerance.min_psnr_db,
                                f"checked on {checked_on} over {len(samples)} held-out frames")
    if late_psnr is not None and late_psnr < tolerance.min_psnr_db:
        raise VerificationError(artifact, "psnr_late_db", late_psnr, tolerance.min_psnr_db,
                                f"the second half of a {n}-frame rollout on {checked_on} drifted")
    if tolerance.max_abs_error is not None and worst_abs > tolerance.max_abs_error:
        raise VerificationError(artifact, "max_abs_error", worst_abs, tolerance.max_abs_error,
                                f"checked on {checked_on} over {len(samples)} held-out frames")
    return result
