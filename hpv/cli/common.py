"""What every command shares: typed errors become a one-line message and exit code 2."""

from __future__ import annotations

import functools
import sys

import click
from rich.console import Console
from rich.text import Text

from hpv.errors import HpvError

console = Console(stderr=True)


def handle_errors(fn):
    """Turn HpvError into `error: ...` on stderr and exit 2; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HpvError as e:
            # The message is plain text: paths, device ids and pip extras ('hpv-compile[tflite]') hold
            # brackets that rich markup would eat or choke on.
            console.print(Text.assemble(("error: ", "bold red"), str(e)), highlight=False, soft_wrap=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            sys.exit(130)

    return wrapper


def parse_assignments(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            raise click.BadParameter(f"expected {what}, got {v!r}")
        out[key] = val
    return out
