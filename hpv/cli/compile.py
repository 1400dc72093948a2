"""`hpv-compile` (also `hpv compile`): build verified artifacts of a pipeline for one target."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from hpv.cli.common import (
    StepProgress, console, format_duration, handle_errors, interruptible, parse_assignments, third_party_output_to,
)


def _list_targets() -> None:
    from hpv.targets import all_targets

    table = Table(title="targets", title_justify="left")
    for col in ("target", "format", "built by default", "also (--precision)", "compute units", "description"):
        # Names, precisions and units are never cut or wrapped; only the description wraps in a terminal.
        table.add_column(col, no_wrap=col != "description", overflow="fold")
    for t in sorted(all_targets().values(), key=lambda t: t.name):
        others = [p.value for p in t.precisions if p not in t.default_precisions]
        table.add_row(t.name, t.format, ", ".join(p.value for p in t.default_precisions), ", ".join(others) or "-",
                      ", ".join(t.compute_units), t.description)
    console.print(table)


def _list_stages() -> None:
    from hpv.pipelines import PIPELINES
    from hpv.stages import STAGES

    table = Table(title="stages", title_justify="left")
    for col in ("stage", "kind", "in pipelines", "description"):
        table.add_column(col)
    for name in STAGES:
        sdef = STAGES.get(name)
        pipes = [p for p in PIPELINES if PIPELINES.get(p).ref(name)]
        table.add_row(name, sdef.kind, ", ".join(pipes), sdef.description)
    console.print(table)


def _summary_title(result) -> str:
    """Above the table, not its title: a table wraps its title at the table's width, mid-path."""
    checked = sorted({a.verification.checked_on for a in result.manifest.artifacts})
    return f"{result.folder}/manifest.json (verified on {', '.join(checked)})"


def _summary(result) -> Table:
    table = Table()
    for col in ("artifact", "MB", "PSNR dB", "max err", "weights"):
        table.add_column(col, justify="left" if col in ("artifact", "weights") else "right", no_wrap=True)
    for a in result.manifest.artifacts:
        v = a.verification
        table.add_row(a.path, f"{a.bytes / 1e6:.2f}", f"{v.psnr_db:.1f}", f"{v.max_abs_error:.2g}", a.weights[:10])
    return table


@click.command(name="compile", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--target", "-t", help="silicon target (see --list-targets)")
@click.option("--stage", "-s", "stages", multiple=True, help="stage to build (repeatable); default: the pipeline's stages")
@click.option("--precision", "-p", "precisions", multiple=True, help="precision (repeatable); default: the target's")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts"),
              show_default=True, help="output folder; the build goes to OUT/<target>/")
@click.option("--pipeline", help="pipeline whose stages to build (default: 'default', or the one holding --stage)")
@click.option("--pose", type=click.Path(path_type=Path), help="calibration poses from a .pose file (default: synthetic)")
@click.option("--weights", "weights", multiple=True, metavar="STAGE=PATH",
              help="checkpoint for a stage (.safetensors or a torch state_dict); default: shipped weights")
@click.option("--small", is_flag=True, help="every stage at its small size (smoke test, CI)")
@click.option("--list-targets", is_flag=True, help="list targets and exit")
@click.option("--list-stages", is_flag=True, help="list stages and exit")
@handle_errors
def compile_command(target, stages, precisions, out, pipeline, pose, weights, small, list_targets, list_stages):
    """Compile the pose viewer's stages for TARGET and verify every artifact against PyTorch."""
    if list_targets or list_stages:
        _list_targets() if list_targets else None
        _list_stages() if list_stages else None
        return
    if not target:
        raise click.UsageError("--target is required (see --list-targets)")
    from hpv.targets import get_target

    spec = get_target(target)  # fail fast on an unknown target, before heavy imports (torch: seconds)
    for p in precisions:
        spec.check_precision(p)
    from hpv.pipelines import PIPELINES

    if pipeline is not None:
        PIPELINES.get(pipeline)
    assignments = parse_assignments(weights, "STAGE=PATH")
    # SIGTERM like Ctrl-C: the staging folder is removed and the command exits 143.
    import tempfile

    log = Path(tempfile.gettempdir()) / f"hpv-compile-{spec.name}.log"  # what converters and runtimes print
    with interruptible(), third_party_output_to(log), StepProgress(f"hpv-compile {target}") as steps:
        def progress(message: str, advance: int = 0, total: int | None = None, detail: bool = False) -> None:
            if total is not None:
                steps.set_total(total)
            if detail:
                steps.detail(message)
            elif advance:
                steps.done(message, advance)
            else:
                steps.step(message)

        steps.step("loading torch")
        from hpv.compiler.build import CompileRequest, compile

        request = CompileRequest(target=target, stages=tuple(stages), precisions=tuple(precisions), out=out,
                                 pipeline=pipeline, pose=pose, weights=assignments, small=small)
        result = compile(request, progress)
        steps.note(f"built {len(result.manifest.artifacts)} artifacts in {format_duration(steps.elapsed())}")
    console.print(_summary_title(result), highlight=False, soft_wrap=True, markup=False)
    console.print(_summary(result))
    if any(a.weights == "untrained" for a in result.manifest.artifacts):
        console.print("[yellow]note:[/] stages marked 'untrained' use seeded random weights; "
                      "their figures check the compiler, not image quality.")


def main() -> None:
    compile_command(prog_name="hpv-compile")


if __name__ == "__main__":
    main()
