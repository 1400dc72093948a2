"""`hpv train`: train a pipeline's stages in cascade and write their weights."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hpv.cli.common import console, handle_errors


class RichReporter:
    def __init__(self, bar: Progress):
        self.bar, self.task = bar, None

    def start(self, phase: str, total: int, done: int) -> None:
        self.task = self.bar.add_task(phase, total=total, completed=done, loss=float("nan"))

    def step(self, loss: float) -> None:
        self.bar.update(self.task, advance=1, loss=loss)

    def log(self, message: str) -> None:
        self.bar.console.print(f"  {message}", highlight=False)

    def end(self) -> None:
        pass


@click.command(name="train", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--pipeline", default="default", show_default=True, help="pipeline to train")
@click.option("--config", "config_name", default="cpu", show_default=True, help="training config: cpu, gpu, tiny")
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
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        reporter = RichReporter(bar)
        reporter.log(f"rendering or loading data ({cfg.name} config)")
        data = build_dataset(cfg.data, shared_resolutions(pipeline, "default", "baseline", small=small),
                             pairs=parsed, cache_dir=out / "data-cache")
        result = train_pipeline(pipeline, cfg, run, dataset=data, reporter=reporter, small=small)
    for stage, path in result.weights.items():
        console.print(f"{stage}: {path} (sha256 {result.pipeline.weights[stage][:12]})")
        if install and small:
            raise ConfigError("--install ships full-size weights; drop --small")
        if install:
            write_bytes(WEIGHTS_DIR / path.name, path.read_bytes())
            console.print(f"  installed as {WEIGHTS_DIR / path.name}")
