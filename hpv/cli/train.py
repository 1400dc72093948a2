"""`hpv train`: train a pipeline's stages in cascade and write their weights."""

from __future__ import annotations

from pathlib import Path

import click

from hpv.cli.common import StepProgress, console, format_duration, handle_errors
from hpv.training.config import CONFIGS  # dataclasses only: the help lists the configs

HEARTBEAT_S = 30.0  # a log file gets a line at least this often: step, loss, time, time left


class TrainReporter:
    """hpv.training's progress sink, printed through StepProgress: each phase's start and end and
    every validation as lines; in a terminal a live bar with step, loss and time left; in a log file
    a line of the same at least every HEARTBEAT_S seconds."""

    def __init__(self, steps: StepProgress):
        self.steps = steps
        self.phase, self.total, self.done, self.start_done = "", 0, 0, 0
        self.loss = float("nan")

    def start(self, phase: str, total: int, done: int) -> None:
        import time

        self.phase, self.total, self.done, self.start_done, self.t0 = phase, total, done, done, time.monotonic()
        resumed = f" (resuming at step {done})" if done else ""
        self.steps.step(f"training {phase}: {total} steps{resumed}")
        self.steps.count(done, total)

    def step(self, loss: float) -> None:
        import time

        self.done += 1
        self.loss = loss
        self.steps.step(f"training {self.phase}", line=False)  # after a stage or a validation line
        self.steps.count(self.done, self.total)
        per_step = (time.monotonic() - self.t0) / max(1, self.done - self.start_done)
        left = per_step * (self.total - self.done)
        self.steps.detail(f"step {self.done}/{self.total}, loss {loss:.4f}, {per_step:.2f} s/step, "
                          f"~{format_duration(left)} left")

    def stage(self, message: str) -> None:
        self.steps.step(message)

    def log(self, message: str) -> None:
        self.steps.note(message)

    def end(self) -> None:
        import time

        ran = self.done - self.start_done
        self.steps.note(f"{self.phase}: {ran} steps in {format_duration(time.monotonic() - self.t0)}, "
                        f"last loss {self.loss:.4f}")


@click.command(name="train", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--pipeline", default="default", show_default=True, help="pipeline to train")
@click.option("--config", "config_name", default="cpu", show_default=True,
              help=f"training config: {', '.join(CONFIGS.names())}")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
              help="run folder: checkpoints, history.json, weights/ (the run resumes from here)")
@click.option("--pair", "pairs", multiple=True, metavar="VIDEO:POSE", help="your own video and its .pose file (repeatable)")
@click.option("--steps-scale", type=float, default=1.0, show_default=True, help="multiply every step count (quick runs)")
@click.option("--install", is_flag=True, help="copy the trained weights into the package as its default weights")
@click.option("--small", is_flag=True, help="every stage at its small size (smoke test, CI)")
@handle_errors
def train_command(pipeline, config_name, out, pairs, steps_scale, install, small):
    """Train PIPELINE's stages in cascade: generator, refiner steps on predicted estimates, upscaler."""
    from hpv.atomic import write_bytes
    from hpv.errors import ConfigError
    from hpv.pipelines import PIPELINES
    from hpv.stages.checkpoint import WEIGHTS_DIR
    from hpv.training.cascade import shared_resolutions, train_pipeline
    from hpv.training.data import build_dataset
    from hpv.training.config import CONFIGS

    PIPELINES.get(pipeline)
    cfg = CONFIGS.get(config_name)
    if steps_scale != 1.0:
        if steps_scale <= 0:
            raise ConfigError("--steps-scale must be positive")
        cfg = cfg.scaled(steps_scale)
    parsed = []
    for p in pairs:
        video, sep, pose = p.rpartition(":")
        if not sep or not video or not pose:
            raise click.BadParameter(f"expected VIDEO:POSE, got {p!r}", param_hint="--pair")
        parsed.append((Path(video), Path(pose)))
    run = out / pipeline
    with StepProgress(f"hpv train {pipeline} ({cfg.name})", heartbeat_s=HEARTBEAT_S) as steps:
        reporter = TrainReporter(steps)
        data = None
        if cfg.trains_cascade(pipeline == "baseline"):  # a parts-only config cuts its own crops
            steps.step(f"rendering or loading training data ({cfg.name} config)")
            data = build_dataset(cfg.data, shared_resolutions(pipeline, "default", "baseline", small=small),
                                 pairs=parsed, cache_dir=out / "data-cache",
                                 progress=lambda n, total: steps.detail(f"{n}/{total} sequences rendered"))
            steps.note(f"data: {len(data.train)} train, {len(data.val)} val, {len(data.test)} test sequences")
        result = train_pipeline(pipeline, cfg, run, dataset=data, reporter=reporter, small=small)
        steps.note(f"trained in {format_duration(steps.elapsed())}")
    for stage, path in result.weights.items():
        console.print(f"{stage}: {path} (sha256 {result.pipeline.weights[stage][:12]})")
        if install and small:
            raise ConfigError("--install ships full-size weights; drop --small")
        if install:
            write_bytes(WEIGHTS_DIR / path.name, path.read_bytes())
            console.print(f"  installed as {WEIGHTS_DIR / path.name}")
