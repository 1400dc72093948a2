"""One training phase: resumable, seeded, with progress and periodic validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hpv.training.state import load_state, save_state, step_generator


class Reporter:
    """Progress sink; the CLI passes one that prints (hpv.cli.train). Defaults do nothing.

    start / step / end: a training phase (its step count, each optimizer step's loss); stage: work
    between phases that takes a while (rendering data, predicting the estimates the next phase
    trains on); log: a line of results (validation)."""

    def start(self, phase: str, total: int, done: int) -> None: ...
    def step(self, loss: float) -> None: ...
    def stage(self, message: str) -> None: ...
    def log(self, message: str) -> None: ...
    def end(self) -> None: ...


@dataclass
class Phase:
    name: str
    models: dict[str, nn.Module]  # trained (and saved) together
    optims: dict[str, torch.optim.Optimizer]
    steps: int
    step_fn: Callable[[int, torch.Generator], dict[str, float]]  # one optimizer step; returns losses
    validate: Callable[[], dict[str, float]]
    meta: dict  # what the phase was configured with; a checkpoint made otherwise is refused


def run_phase(phase: Phase, workdir: Path, seed: int, *, eval_every: int, checkpoint_every: int,
              reporter: Reporter, history: list[dict], history_path: Path | None = None) -> None:
    """Train `phase` to its step count, resuming from `workdir/<name>.ckpt.safetensors`."""
    ckpt = workdir / f"{phase.name}.ckpt.safetensors"
    step = load_state(ckpt, phase.models, phase.optims, phase.meta) if ckpt.is_file() else 0
    if step >= phase.steps:
        return
    reporter.start(phase.name, phase.steps, step)
    for m in phase.models.values():
        m.train()
    while step < phase.steps:
        losses = phase.step_fn(step, step_generator(seed, step))
        step += 1
        reporter.step(losses["loss"])
        last = step == phase.steps
        if step % eval_every == 0 or last:
            for m in phase.models.values():
                m.eval()
            metrics = phase.validate()
            for m in phase.models.values():
                m.train()
            history.append({"phase": phase.name, "step": step, **losses, **metrics})
            if history_path is not None:  # the curves survive a stopped run
                from hpv.atomic import write_json

                write_json(history_path, history)
            reporter.log(f"{phase.name} step {step}: loss {losses['loss']:.4f}, "
                         + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        if step % checkpoint_every == 0 or last:
            save_state(ckpt, phase.models, phase.optims, step, phase.meta)
    for m in phase.models.values():
        m.eval()
    reporter.end()
