"""`hpv schedule`: the best configuration per device for a frame rate, or a table of plans over a
range of frame rates for apps (`--emit`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hpv.cli.common import console, handle_errors


def parse_fps_range(text: str) -> list[float]:
    """`LO:HI:STEP` -> LO, LO + STEP, ... up to HI inclusive."""
    try:
        lo, hi, step = (float(x) for x in text.split(":"))
    except ValueError:
        raise click.BadParameter(f"expected LO:HI:STEP such as 10:60:5, got {text!r}",
                                 param_hint="--fps-range") from None
    if not (0 < lo <= hi and step > 0):
        raise click.BadParameter(f"need 0 < LO <= HI and STEP > 0, got {text!r}", param_hint="--fps-range")
    n = int((hi - lo) / step + 1e-9)
    return [round(lo + i * step, 6) for i in range(n + 1)]


@click.command(name="schedule", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("profile_path", metavar="PROFILE", type=click.Path(path_type=Path))
@click.option("--fps", type=float, help="frame rate to hold (every frame of a batch counts)")
@click.option("--device", "device_id", help="plan for this device id only (default: every device of PROFILE)")
@click.option("--headroom", type=float, default=0.85, show_default=True,
              help="fraction of the frame period the per-frame p90 may take")
@click.option("--first-frame-ms", type=float, help="limit on one call's p90 (a whole batch): time to the first frame")
@click.option("--max-batch", type=int, default=1, show_default=True,
              help="independent sequences the app renders together (batch > 1 only up to this)")
@click.option("--json", "as_json", is_flag=True, help="print the plans as JSON on stdout")
@click.option("--emit", type=click.Path(dir_okay=False, path_type=Path),
              help="write the schedule table over --fps-range to this file (docs/schedule-table.md)")
@click.option("--fps-range", default="10:60:5", show_default=True, metavar="LO:HI:STEP",
              help="frame rates of the --emit table")
@handle_errors
def schedule_command(profile_path, fps, device_id, headroom, first_frame_ms, max_batch, as_json, emit, fps_range):
    """Choose, per device of PROFILE, the configuration (pipeline, precision, steps k, part stages on or
    off, batch, resolution) with the best expected quality that holds --fps at p90 with headroom."""
    from hpv.errors import UnknownNameError
    from hpv.profiles.schema import load_profile

    if fps is None and emit is None:
        raise click.UsageError("give --fps to plan for one frame rate, or --emit FILE for a table")
    profile = load_profile(profile_path)
    if device_id is not None:
        devices = [d for d in profile.devices if d.device.id == device_id]
        if not devices:
            raise UnknownNameError("device", device_id, {d.device.id for d in profile.devices})
        profile = profile.model_copy(update={"devices": devices})
    options = dict(headroom=headroom, first_frame_ms=first_frame_ms, max_batch=max_batch)
    if emit is not None:
        _emit(profile, emit, parse_fps_range(fps_range), options)
    if fps is not None:
        _plan(profile, fps, options, as_json)


def _emit(profile, path: Path, fps_values: list[float], options: dict) -> None:
    from hpv.atomic import write_json
    from hpv.runtime.scheduler import plans_table

    table = plans_table(profile, fps_values, **options)
    write_json(path, table)
    for d in table["devices"]:
        held = sum(r["feasible"] for r in d["rows"])
        top = f"holds up to {d['max_fps']:g} fps" if d["max_fps"] is not None else "holds no rate"
        console.print(f"{d['device']} ({d['target']}): {held} of {len(d['rows'])} rates feasible, {top}",
                      highlight=False)
    console.print(f"wrote {path}", highlight=False)


def _plan(profile, fps: float, options: dict, as_json: bool) -> None:
    from rich.console import Console

    from hpv.errors import InfeasibleError
    from hpv.runtime.scheduler import plan

    plans, errors = [], []
    for d in profile.devices:
        try:
            plans.append(plan(d, fps, **options))
        except InfeasibleError as e:
            plans.append(e)
            errors.append(e)
    if as_json:
        click.echo(json.dumps({"fps": fps, **options, "plans": [_as_dict(p) for p in plans]}, indent=2))
    else:
        out = Console(highlight=False, soft_wrap=True)
        for p in plans:
            if not isinstance(p, InfeasibleError):
                _print_plan(out, p)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InfeasibleError("\n".join(str(e) for e in errors), fps=fps)


def _as_dict(p) -> dict:
    from hpv.errors import InfeasibleError

    if isinstance(p, InfeasibleError):
        return {"device": p.device, "target": p.target, "fps": p.fps, "feasible": False,
                "best_fps": p.best_fps, "best": p.best, "reason": str(p)}
    return p.to_dict()


def _print_plan(out, p) -> None:
    from hpv.runtime.scheduler import describe

    q = f"{p.expected_psnr_db:.2f} dB" if p.expected_psnr_db is not None else "unknown"
    out.print(f"[bold]{p.device}[/] ({p.target}) at {p.fps:g} fps: [bold green]{describe(p.config)}[/]")
    out.print(f"  per-frame p90 {p.per_frame_p90_ms:.1f} ms (outliers left out) of a {p.budget_ms:.1f} ms budget "
              f"(slack {p.slack_ms:.1f} ms, headroom {p.headroom:g}); expected PSNR {q}")
    out.print(f"  why: {p.reason}")
    out.print("  ladder: " + " > ".join(f"k={c.steps} {c.resolution}px{c.parts_tag}" for c in p.ladder))
    for c in p.runners_up:
        out.print(f"  runner-up: {describe(c)} ({c.per_frame_p90_ms:.1f} ms"
                  + (f", {c.quality.expected_psnr_db:.2f} dB)" if c.quality else ")"))
