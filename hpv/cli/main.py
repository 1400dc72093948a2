"""`hpv`: the umbrella command. `hpv compile` is `hpv-compile`; later verbs (profile, compare,
schedule, render, train) register here."""

from __future__ import annotations

import click

from hpv import __version__
from hpv.cli.compare import compare_command
from hpv.cli.compile import compile_command
from hpv.cli.schedule import schedule_command
from hpv.cli.serve import serve_command
from hpv.cli.profile import profile_command
from hpv.cli.render import render_command
from hpv.cli.report import report_command
from hpv.cli.train import train_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpv")
def cli() -> None:
    """The human pose viewer toolkit: compile, verify, profile and schedule per device."""


cli.add_command(compile_command)
cli.add_command(profile_command)
cli.add_command(schedule_command)
cli.add_command(compare_command)
cli.add_command(render_command)
cli.add_command(report_command)
cli.add_command(train_command)
cli.add_command(serve_command)


def main() -> None:
    cli(prog_name="hpv")


if __name__ == "__main__":
    main()
