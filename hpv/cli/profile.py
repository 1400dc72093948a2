"""`hpv profile`: measure a build's artifacts on a device and write (or merge into) a device profile."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from hpv.cli.common import console, handle_errors, third_party_output_to
from hpv.targets import MAX_BATCH


@click.command(name="profile", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("builds", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="ARTIFACTS_DIR...")
@click.option("--device", default="local", show_default=True, metavar="local|adb[:SERIAL]|chromium[:wasm|:webgpu]",
              help="this machine (ONNX Runtime / LiteRT), an Android phone over adb, or headless Chromium "
              "(onnxruntime-web's wasm EP, 1 thread; chromium:wasm:2 for 2 threads; webgpu)")
@click.option("--out", "outs", type=click.Path(dir_okay=False, path_type=Path), multiple=True,
              help="the profile to write (default profile.json); with several builds, one --out each, in order")
@click.option("--device-id", help="local: name this machine in the profile (stable across CI runners), "
              "instead of its CPU model")
@click.option("--merge", is_flag=True, help="add this device to the profile already at --out (replacing its old entry)")
@click.option("--runs", type=click.IntRange(1), default=60, show_default=True, help="timed runs per artifact")
@click.option("--warmup", type=click.IntRange(0), default=5, show_default=True, help="untimed runs first")
@click.option("--rounds", type=click.IntRange(1), default=20, show_default=True,
              help="local: split the runs into rounds, each after a fresh load (compare reads round to round noise)")
@click.option("--batch", "batches", type=click.IntRange(1, MAX_BATCH), multiple=True,
              help="batch sizes for dynamic-batch artifacts (default 1)")
@click.option("--pipeline-runs", type=click.IntRange(1), default=20, show_default=True,
              help="timed frames per pipeline configuration (local)")
@click.option("--no-pipelines", is_flag=True, help="time artifacts only, not whole frames")
@click.option("--peak-gmacs", type=float, help="the device's peak GMAC/s for the roofline (local: measured if absent)")
@click.option("--benchmark-model", type=click.Path(path_type=Path), help="adb: path of LiteRT's benchmark_model for the phone")
@click.option("--delegate", default="cpu", show_default=True, help="adb: cpu, xnnpack, gpu or nnapi")
@click.option("--threads", type=click.IntRange(1), default=4, show_default=True, help="adb: benchmark_model threads")
@handle_errors
def profile_command(builds, device, device_id, outs, merge, runs, warmup, rounds, batches, pipeline_runs, no_pipelines, peak_gmacs,
                    benchmark_model, delegate, threads):
    """Measure every artifact of ARTIFACTS_DIR (a build folder with manifest.json) and, locally, the
    whole pipeline per frame for k = 0..K (with and without the part stages, where the build has
    them), and write a device profile.

    Several builds (locally) are measured in the same rounds, one --out each: on a machine whose
    speed drifts, compare a baseline build and a current build measured this way."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hpv import __version__
    from hpv.artifacts.manifest import load_manifest
    from hpv.errors import ConfigError
    from hpv.profiles.schema import PROFILE_SCHEMA_VERSION, ProfileFile, load_profile, merge as merge_files, write_profile

    outs = list(outs) or [Path("profile.json")]
    if len(outs) != len(builds):
        raise ConfigError(f"{len(builds)} builds need {len(builds)} --out files (one each, in order), got {len(outs)}")
    manifests = [load_manifest(b) for b in builds]
    kind, _, serial = device.partition(":")
    if kind == "adb" and len(builds) > 1:
        raise ConfigError("--device adb profiles one build at a time")
    import tempfile

    log = Path(tempfile.gettempdir()) / "hpv-profile.log"  # what runtimes and converters print themselves
    # No bar where the output is not a terminal: a transient bar there leaves only a blank line.
    with third_party_output_to(log), Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                              TimeElapsedColumn(), console=console, transient=True,
                                              disable=not console.is_terminal) as bar:
        task = bar.add_task(f"profiling {', '.join(m.target for m in manifests)} on {device}", total=None)

        def progress(message: str, advance: int = 0) -> None:
            bar.console.print(f"  {message}", highlight=False)
            bar.advance(task, advance)

        if kind == "local":
            from hpv.profiles.local import profile_local_builds

            measured = profile_local_builds(
                list(builds), runs=runs, warmup=warmup, batches=tuple(batches) or (1,), pipeline_runs=pipeline_runs,
                pipelines=not no_pipelines, peak_gmacs=peak_gmacs, device_id=device_id, rounds=rounds,
                progress=progress)
        elif kind == "adb":
            from hpv.profiles.android import profile_android
            from hpv.profiles.local import add_roofline

            if benchmark_model is None:
                raise ConfigError("--device adb needs --benchmark-model PATH: LiteRT's benchmark_model binary "
                                  "built for the phone's ABI (it is pushed to /data/local/tmp)")
            from hpv.profiles.schema import noise_record

            phone = add_roofline(profile_android(
                builds[0], benchmark_model=benchmark_model, serial=serial or None, threads=threads, delegate=delegate,
                runs=runs, warmup_runs=warmup, progress=progress), builds[0], peak_gmacs)
            measured = [phone if phone.noise else
                        phone.model_copy(update={"noise": noise_record(phone.artifacts, phone.pipelines)})]
        elif kind == "chromium":
            from hpv.compiler.web.profile import parse_device, profile_chromium

            if len(builds) > 1:
                raise ConfigError("--device chromium profiles one build at a time")
            ep, web_threads = parse_device(device)
            measured = [profile_chromium(builds[0], ep=ep, threads=web_threads, runs=runs, warmup=warmup,
                                         rounds=min(rounds, 5), pipeline_runs=pipeline_runs, pipelines=not no_pipelines,
                                         device_id=device_id, progress=progress)]
            if "fallback" in measured[0].device.id:
                console.print("[yellow]warning:[/] the only WebGPU adapter here is a fallback (software) adapter: "
                              "its artifact timings are recorded as such (device id ...-fallback), without whole-frame "
                              "figures, so that nothing plans on them",
                              highlight=False)
        else:
            raise ConfigError(f"--device {device!r}: use local, adb[:SERIAL] or chromium[:wasm|:webgpu]")
    for out, device_profile in zip(outs, measured):
        profile = ProfileFile(schema_version=PROFILE_SCHEMA_VERSION, generator=f"hpv {__version__}",
                              devices=[device_profile])
        if merge and out.exists():
            profile = merge_files([load_profile(out), profile])
        write_profile(out, profile)
        console.print(f"profile of {device_profile.device.id} ({len(device_profile.artifacts)} artifact runs, "
                      f"{len(device_profile.pipelines)} pipeline configs) written to {out}", highlight=False)
        warning = noise_warning(device_profile)
        if warning:
            console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)


NOISY_SPREAD = 1.5  # p90 / p50 of a configuration above this: the machine was busy while it was timed
UNFIT_OUTLIERS = 0.10  # more of all samples than this beyond their outlier fence: not bursts, a busy machine
BUSY_OTHER_CPU = 0.25  # other processes' share of the CPU while profiling above this: a busy machine


def noise_warning(device) -> str | None:
    """A sentence when the profile is noisy, None for a quiet one. The scheduler plans on the p90
    without outliers (`hpv.profiles.schema.robust_p90`), so bursts of slow runs do not change the
    plan, but such a profile is no record to compare or commit. Unfit to plan on: some
    configuration's p90 without outliers is still over NOISY_SPREAD x its p50, or over
    UNFIT_OUTLIERS of all runs were outliers (the machine was busy for much of the run), or other
    processes used over BUSY_OTHER_CPU of the CPU meanwhile (every figure is slow)."""
    from hpv.profiles.schema import noise_record, timed_configurations

    timed = timed_configurations(device.artifacts, device.pipelines)
    spread = sorted(((lat.p90_ms / lat.p50_ms, label) for label, lat in timed), reverse=True)
    robust = sorted(((lat.planning_p90_ms / lat.p50_ms, label) for label, lat in timed), reverse=True)
    noisy = [s for s in spread if s[0] > NOISY_SPREAD]
    unfit = [s for s in robust if s[0] > NOISY_SPREAD]
    noise = device.noise or noise_record(device.artifacts, device.pipelines)
    outliers = noise.outlier_fraction or 0.0
    busy = noise.other_cpu_fraction is not None and noise.other_cpu_fraction > BUSY_OTHER_CPU
    others = (f"other processes used {noise.other_cpu_fraction:.0%} of the CPU while it was profiled"
              if noise.other_cpu_fraction is not None else "")
    again = ("Profile again on an idle machine (stop other jobs; more --pipeline-runs help too) before "
             "planning on or committing it.")
    if unfit or outliers > UNFIT_OUTLIERS or busy:
        why = []
        if unfit:
            why.append(f"{len(unfit)} of {len(timed)} configurations stayed noisy without their outliers "
                       f"(p90 up to {unfit[0][0]:.1f}x p50, {unfit[0][1]})")
        if outliers > UNFIT_OUTLIERS:
            why.append(f"{outliers:.0%} of all runs were outliers (p90 up to {spread[0][0]:.1f}x p50, {spread[0][1]})")
        if others:
            why.append(others)
        return (f"unfit to plan on: {'; '.join(why)}. The machine was busy for much of the run: plans from "
                f"this profile hold a lower frame rate than the device can, or miss deadlines. {again}")
    if noisy:
        worst, label = noisy[0]
        return (f"{len(noisy)} of {len(timed)} configurations were noisy (p90 up to {worst:.1f}x p50, {label}): "
                "bursts of other work took the CPU while they were timed" + (f" ({others})" if others else "") +
                f". The scheduler plans on the p90 without such outliers (at most {robust[0][0]:.2f}x p50 "
                f"here), so plans hold; but compare or commit only a profile of an idle machine. {again}")
    return None
