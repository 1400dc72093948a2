"""What every command shares: typed errors become a one-line message and exit code 2."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading

import click
from rich.console import Console
from rich.text import Text

from hpv.errors import HpvError

console = Console(stderr=True)


@contextlib.contextmanager
def third_party_output_to(log_path):
    """While the block runs, everything written to file descriptor 2 by anything but this
    project's console (converter and runtime logs from native code, absl/TF INFO lines, library
    warnings, their progress bars) goes to `log_path`; the project's own lines still reach the
    terminal. When the block fails, the message says where that output is; an empty log is
    removed. Where stderr is not the process's own (a test runner captures it), nothing changes."""
    import os
    from pathlib import Path

    try:
        real = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if not real:
        yield None
        return
    log_path = Path(log_path)
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    previous_file = console.file
    try:
        with open(log_path, "wb") as log:
            os.dup2(log.fileno(), 2)
            console.file = terminal
            try:
                yield log_path
            except BaseException:
                if log_path.stat().st_size:
                    console.print(f"(converter and runtime output of this run: {log_path})", highlight=False)
                raise
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                console.file = previous_file
                terminal.close()
    finally:
        if log_path.is_file() and not log_path.stat().st_size:
            log_path.unlink()  # nothing was said: no file left behind


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that cleanup (`finally`) runs; exit 143."""

    exit_code = 128 + signal.SIGTERM


@contextlib.contextmanager
def interruptible():
    """SIGTERM and SIGINT become exceptions in the main thread while the block runs: a command
    cleans up (partial files, staging folders, worker threads) and exits 143 / 130 instead of dying
    with its files half-written. A signal the caller ignores (nohup, a background job) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(_signum, _frame):
        raise Terminated()

    previous = {}
    for signum, handler in ((signal.SIGTERM, terminate), (signal.SIGINT, signal.default_int_handler)):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def handle_errors(fn):
    """Turn HpvError into `error: ...` on stderr and exit 2; Ctrl-C into exit 130, SIGTERM (under
    `interruptible`) into 143."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HpvError as e:
            # The message is plain text: paths, device ids and pip extras ('hpv-compile[tflite]') hold
            # brackets that rich markup would eat or choke on.
            console.print(Text.assemble(("error: ", "bold red"), str(e)), highlight=False, soft_wrap=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt as e:
            console.print("[yellow]terminated[/]" if isinstance(e, Terminated) else "[yellow]interrupted[/]")
            sys.exit(getattr(e, "exit_code", 130))

    return wrapper


def parse_assignments(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            raise click.BadParameter(f"expected {what}, got {v!r}")
        out[key] = val
    return out
