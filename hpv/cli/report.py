"""`hpv report`: a device profile as one self-contained HTML page (inline SVG plots and tables)."""

from __future__ import annotations

from pathlib import Path

import click

from hpv.cli.common import console, handle_errors


@click.command(name="report", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("profile", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True, metavar="OUT.html",
              help="the HTML page to write")
@handle_errors
def report_command(profile, out):
    """Write PROFILE as an HTML page: per device, latency against quality with the Pareto front,
    batch scaling, latency per refinement step, and tables of artifacts and pipelines."""
    from hpv.profiles.report import write_report
    from hpv.profiles.schema import load_profile

    write_report(load_profile(profile), out, source=profile.name)
    console.print(f"report written to {out}", highlight=False)
