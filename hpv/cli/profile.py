"""`hpv profile`: measure a build's artifacts on a device and write (or merge into) a device profile."""

from __future__ import annotations

from pathlib import Path

import click

from hpv.cli.common import console, handle_errors


@click.command(name="profile", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("build", type=click.Path(path_type=Path), metavar="ARTIFACTS_DIR")
@click.option("--device", default="local", show_default=True, metavar="local|adb[:SERIAL]",
              help="this machine (ONNX Runtime / LiteRT), or an Android phone over adb")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("profile.json"), show_default=True)
@click.option("--device-id", help="local: name this machine in the profile (stable across CI runners), "
              "instead of its CPU model")
@click.option("--merge", is_flag=True, help="add this device to the profile already at --out (replacing its old entry)")
@click.option("--runs", type=click.IntRange(1), default=50, show_default=True, help="timed runs per artifact")
@click.option("--warmup", type=click.IntRange(0), default=5, show_default=True, help="untimed runs first")
@click.option("--batch", "batches", type=click.IntRange(1), multiple=True, help="batch sizes for dynamic-batch artifacts (default 1)")
@click.option("--pipeline-runs", type=click.IntRange(1), default=20, show_default=True,
              help="timed frames per pipeline configuration (local)")
@click.option("--no-pipelines", is_flag=True, help="time artifacts only, not whole frames")
@click.option("--peak-gmacs", type=float, help="the device's peak GMAC/s for the roofline (local: measured if absent)")
@click.option("--benchmark-model", type=click.Path(path_type=Path), help="adb: path of LiteRT's benchmark_model for the phone")
@click.option("--delegate", default="cpu", show_default=True, help="adb: cpu, xnnpack, gpu or nnapi")
@click.option("--threads", type=click.IntRange(1), default=4, show_default=True, help="adb: benchmark_model threads")
@handle_errors
def profile_command(build, device, device_id, out, merge, runs, warmup, batches, pipeline_runs, no_pipelines, peak_gmacs,
                    benchmark_model, delegate, threads):
    """Measure every artifact of ARTIFACTS_DIR (a build folder with manifest.json) and, locally, the
    whole pipeline per frame for k = 0..K, and write a device profile."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hpv.artifacts.manifest import load_manifest
    from hpv.errors import ConfigError
    from hpv.profiles.schema import PROFILE_SCHEMA_VERSION, ProfileFile, load_profile, merge as merge_files, write_profile

    manifest = load_manifest(build)
    kind, _, serial = device.partition(":")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(f"profiling {manifest.target} on {device}", total=None)

        def progress(message: str, advance: int = 0) -> None:
            bar.console.print(f"  {message}", highlight=False)
            bar.advance(task, advance)

        if kind == "local":
            from hpv.profiles.local import profile_local

            measured = profile_local(build, runs=runs, warmup=warmup, batches=tuple(batches) or (1,),
                                     pipeline_runs=pipeline_runs, pipelines=not no_pipelines, peak_gmacs=peak_gmacs,
                                     device_id=device_id, progress=progress)
        elif kind == "adb":
            from hpv.profiles.android import profile_android

            if benchmark_model is None:
                raise ConfigError("--device adb needs --benchmark-model PATH: LiteRT's benchmark_model binary "
                                  "built for the phone's ABI (it is pushed to /data/local/tmp)")
            measured = profile_android(build, benchmark_model=benchmark_model, serial=serial or None, threads=threads,
                                       delegate=delegate, runs=runs, warmup_runs=warmup, progress=progress)
            from hpv.profiles.local import add_roofline

            measured = add_roofline(measured, build, peak_gmacs)
        else:
            raise ConfigError(f"--device {device!r}: use local or adb[:SERIAL]")
    from hpv import __version__

    profile = ProfileFile(schema_version=PROFILE_SCHEMA_VERSION, generator=f"hpv {__version__}", devices=[measured])
    if merge and out.exists():
        profile = merge_files([load_profile(out), profile])
    write_profile(out, profile)
    console.print(f"profile of {measured.device.id} ({len(measured.artifacts)} artifact runs, "
                  f"{len(measured.pipelines)} pipeline configs) written to {out}", highlight=False)
