"""`hpv render`: a `.pose` file through the compiled pipeline into an MP4, at the scheduler's plan."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hpv.cli.common import console, handle_errors, interruptible, third_party_output_to


@click.command(name="render", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, type=click.Path(dir_okay=False, path_type=Path), metavar="[INPUT.pose]...")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("out.mp4"), show_default=True,
              help="the MP4 to write; with several inputs, a folder that gets INPUT.mp4 for each")
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts/onnx-cpu"),
              show_default=True, help="a build folder (ONNX or LiteRT) with manifest.json")
@click.option("--profile", type=click.Path(dir_okay=False, path_type=Path),
              help="device profile: the scheduler picks precision, k and batch for --fps from it")
@click.option("--device", "device_id", help="the profile's device to plan for (default: this machine's entry)")
@click.option("--fps", type=float, help="frame rate to hold (and of the video); default: the pose file's")
@click.option("--precision", help="force a precision of the build")
@click.option("--steps", "-k", type=click.IntRange(0), help="refinement steps (without a profile); with one, the most allowed")
@click.option("--no-parts", is_flag=True, help="leave the part stages (hands, face) out where the build has them; "
              "with a profile, plan only configurations without them")
@click.option("--headroom", type=float, default=0.85, show_default=True, help="fraction of the frame period to plan for")
@click.option("--first-frame-ms", type=float, help="plan only configurations whose first call fits this (p90, ms)")
@click.option("--buffer", type=click.IntRange(1), default=8, show_default=True, help="frames computed ahead of the encoder")
@click.option("--pace/--no-pace", default=False, show_default=True,
              help="consume frames in real time at --fps, as a player would (else as fast as possible)")
@click.option("--frames", type=click.IntRange(1), help="render at most this many frames")
@click.option("--no-controller", is_flag=True, help="keep the plan's configuration (k, part stages) for every frame")
@click.option("--background", default="white", show_default=True, metavar="COLOUR|alpha|keep",
              help="behind the person, keyed as the app keys the green: white (the app's), black, grey, "
                   "#rrggbb; alpha: an RGBA .mov; keep: the model's green screen")
@click.option("--json", "as_json", is_flag=True, help="print the run report as JSON on stdout")
@handle_errors
def render_command(inputs, out, artifacts, profile, device_id, fps, precision, steps, no_parts, headroom,
                   first_frame_ms, buffer, pace, frames, no_controller, background, as_json):
    """Render INPUT.pose (or, without one, the synthetic signer) into an H.264 MP4 with the compiled
    pipeline in ARTIFACTS, carrying the recurrent state frame to frame; reports achieved fps, k and
    the part stages per frame and frames that missed their deadline."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hpv.errors import ConfigError
    from hpv.profiles.schema import load_profile
    from hpv.runtime.render import Background, render_video

    bg = Background.parse(background)
    if len(inputs) > 1:
        if out.suffix in (".mp4", ".mov"):
            raise ConfigError(f"{len(inputs)} inputs: give -o a folder (each input gets FOLDER/NAME{bg.suffix})")
        names = [p.stem for p in inputs]
        outputs = [out / (f"{n}{bg.suffix}" if names.count(n) == 1 else f"{n}-{i}{bg.suffix}")
                   for i, n in enumerate(names)]
    else:
        outputs = [out.with_suffix(".mov") if bg.mode == "alpha" and out == Path("out.mp4") else out]
    if profile is not None and fps is None:
        raise ConfigError("--profile plans for a frame rate: give --fps too")
    loaded = load_profile(profile) if profile else None
    import tempfile

    log = Path(tempfile.gettempdir()) / "hpv-render.log"  # what runtimes print themselves (absl, LiteRT INFO)
    # SIGTERM / Ctrl-C: the partial videos are removed and the render thread stopped; exit 143 / 130.
    # No bar where the output is not a terminal: a transient bar there leaves only a blank line.
    with interruptible(), third_party_output_to(log), Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True, disable=as_json or not console.is_terminal) as bar:
        task = bar.add_task("rendering", total=None)
        report = render_video(
            artifacts, outputs, list(inputs), profile=loaded, device_id=device_id, fps=fps, precision=precision,
            steps=steps, parts=not no_parts, headroom=headroom, first_frame_ms=first_frame_ms, buffer=buffer,
            pace=pace, frames=frames, controller=not no_controller, background=bg,
            progress=lambda done, total, k: bar.update(task, completed=done, total=total,
                                                       description=f"rendering (k={k})"))
    summary = report.to_dict()
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    if report.plan:
        console.print(f"plan: {report.plan}", highlight=False)
    console.print(
        f"wrote {', '.join(map(str, outputs))}: {report.frames} frames x {report.sequences} sequence(s), "
        f"{report.precision} batch {report.batch}, achieved {report.achieved_fps:.1f} fps, first frame "
        f"{report.first_frame_ms:.0f} ms, k per frame "
        + ", ".join(f"k={k}: {n} frames" for k, n in summary["k_histogram"].items()) + ", "
        + (f"part stages on {summary['parts_histogram']['on']} of {len(report.parts)} frames, "
           if report.has_parts else "")
        + (f"{report.missed} missed the {report.deadline_ms:.1f} ms deadline, " if report.deadline_ms else "")
        + f"{report.switches} controller switches", highlight=False)
