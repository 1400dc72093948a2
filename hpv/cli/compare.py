"""`hpv compare`: latency regressions between two device profiles, for CI. Exit 1 on a regression,
0 otherwise, 2 on bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich import box
from rich.markup import escape
from rich.table import Table

from hpv.cli.common import LogConsole, handle_errors
from hpv.profiles.compare import DEFAULT_QUANTILE, DEFAULT_THRESHOLD_PCT


def _table(comparison) -> Table:
    from hpv.profiles.compare import Verdict, format_ms, format_pct, quantile_name

    verdicts = {Verdict.REGRESSION: "[bold red]regression[/]", Verdict.IMPROVEMENT: "[green]faster[/]",
                Verdict.UNCHANGED: "[dim]ok[/]"}
    table = Table(title=f"latency per call, ms: {quantile_name(comparison.quantile)} and its "
                        f"{comparison.confidence:.0%} interval", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("configuration (b: batch)", overflow="fold")
    for col in ("baseline", "current", "change"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    where = None
    for e in comparison.entries:
        if e.config.where != where:
            if where is not None:
                table.add_section()
            where = e.config.where
            table.add_row(f"[bold]{escape(where)}[/]")
        b, c = e.baseline, e.current
        table.add_row(escape(e.config.label),
                      f"{format_ms(b.median_ms)}\n[dim]{format_ms(b.lo_ms)}–{format_ms(b.hi_ms)}[/]",
                      f"{format_ms(c.median_ms)}\n[dim]{format_ms(c.lo_ms)}–{format_ms(c.hi_ms)}[/]",
                      format_pct(e.change_pct), verdicts[e.verdict])
    return table


@click.command(name="compare", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("current", type=click.Path(path_type=Path))
@click.option("--threshold", type=click.FloatRange(min=0), default=DEFAULT_THRESHOLD_PCT, show_default=True,
              metavar="PCT", help="slowdown beyond the noise, in % of the baseline's quantile, that fails")
@click.option("--quantile", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=DEFAULT_QUANTILE,
              show_default=True, help="where to read each latency distribution (0.5: the median; the default "
              "lower quartile holds between runs on a shared machine, where the median drifts)")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), metavar="OUT.md",
              help="also write a GitHub-flavoured summary here (e.g. \"$GITHUB_STEP_SUMMARY\")")
@click.option("--across-devices", is_flag=True,
              help="match configurations whatever the device ids (e.g. the committed report against this machine)")
@handle_errors
def compare_command(baseline, current, threshold, quantile, markdown, across_devices):
    """Compare CURRENT's latencies against BASELINE's, configuration by configuration.

    Exit 1 when a configuration got slower by more than PCT% beyond the noise of both
    measurements, 0 otherwise, 2 when a file is unreadable or the two share no configuration.
    """
    from hpv.atomic import write_text
    from hpv.profiles.compare import compare, grouped, method_note, summary_line, to_markdown
    from hpv.profiles.schema import load_profile

    result = compare(load_profile(baseline), load_profile(current), threshold, quantile=quantile,
                     across_devices=across_devices)
    out = LogConsole(highlight=False, soft_wrap=False)
    out.print(_table(result))
    for title, only in (("only in baseline", result.only_in_baseline), ("only in current", result.only_in_current)):
        for where, labels in grouped(only).items():
            out.print(f"[dim]{title}, not compared: {escape(where)}: {escape(', '.join(labels))}[/]")
    if across_devices:
        out.print("[yellow]note:[/] compared across devices: a different machine's speed reads as a change")
    note = method_note(result)
    if note:
        out.print(f"[yellow]note:[/] {note}")
    style = "bold red" if result.regressions else "bold green"
    out.print(f"[{style}]{summary_line(result)}[/]")
    if markdown:
        write_text(markdown, to_markdown(result, str(baseline), str(current)))
        out.print(f"summary written to {markdown}")
    sys.exit(result.exit_code)
