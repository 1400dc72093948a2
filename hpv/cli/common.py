"""What every command shares: typed errors become a one-line message and exit code 2."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading

import click
from rich.console import Console, ConsoleDimensions
from rich.text import Text

from hpv.errors import HpvError

UNWRAPPED_WIDTH = 1000  # columns of a console that is not a terminal: no line is cut
BAR_TEXT = 60  # characters of a progress bar's description, so that the bar and the times fit beside it


class LogConsole(Console):
    """A rich console that wraps at the terminal's width in a terminal and (unless COLUMNS says
    otherwise) not at all in a log file or a pipe, where rich's default of 80 columns cut paths,
    target names and table cells mid-word."""

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)
        if self._width is None and not self.is_terminal and not self._environ.get("COLUMNS", "").isdigit():
            return ConsoleDimensions(UNWRAPPED_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


console = LogConsole(stderr=True)


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


def format_duration(seconds: float) -> str:
    """12.3 s, 2 min 05 s, 1 h 02 min: how long a step took, in a line a person reads."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


class StepProgress:
    """What a long command is doing, how far it is and how long it has taken, in a terminal and in
    a log file alike. Every step and every finished item is a line that starts with the time since
    the command began (`[1:05]`). In a terminal a live bar below the lines shows the current step,
    its detail (frames verified, sequences rendered), the count done and the time. Elsewhere (a log
    file, a pipe, CI), where rich draws no bar, a step that runs silent for `heartbeat_s` gets a
    line saying what it is still doing, its detail and for how long, so no gap is longer than that."""

    def __init__(self, title: str, *, total: int | None = None, heartbeat_s: float = 15.0,
                 out: Console | None = None):
        self.out = out or console
        self.title, self.total, self.heartbeat_s = title, total, heartbeat_s
        self.completed = 0
        self.current, self.detail_text = title, ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar = self._task = self._thread = None

    # -- the context ----------------------------------------------------------------------------
    def __enter__(self) -> StepProgress:
        import time

        self.t0 = self.step_t0 = self.item_t0 = self.last_line = time.monotonic()
        if self.out.is_terminal:
            from rich.progress import (
                BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
            )

            self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=self.out, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.title, total=self.total)
        else:
            self._thread = threading.Thread(target=self._heartbeat, name="progress-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.stop()

    # -- what the command reports ---------------------------------------------------------------
    def step(self, message: str, *, line: bool = True) -> None:
        """A new step begins: printed as a line (unless `line` is False: a step resumed), and the
        current step of the bar and the heartbeat."""
        import time

        with self._lock:
            if message == self.current and not line:
                return
            self.current, self.detail_text, self.step_t0 = message, "", time.monotonic()
        if line:
            self._line(Text(f" {message}"))
        self._refresh()

    def detail(self, text: str) -> None:
        """Where the current step is (e.g. `frame 12/31`): in the bar, and in the next heartbeat line."""
        with self._lock:
            self.detail_text = text
        self._refresh()

    def done(self, message: str, advance: int = 1) -> None:
        """An item is finished: a ✓ line with the count and how long it took since the previous
        item (or since the total was set)."""
        import time

        with self._lock:
            self.completed += advance
            now = time.monotonic()
            took, self.item_t0 = now - self.item_t0, now
        count = f"[{self.completed}/{self.total}] " if self.total else ""
        self._line(Text.assemble(" ", ("✓", "green"), f" {count}{message} ({format_duration(took)})"))
        if self._bar is not None:
            self._bar.update(self._task, advance=advance)

    def note(self, message: str) -> None:
        """A line that is neither a new step nor a finished item (a figure, a validation result)."""
        self._line(Text(f" {message}"))

    def count(self, completed: int, total: int | None) -> None:
        """Set the bar's count (e.g. a training phase's step of its total), printing nothing."""
        self.completed, self.total = completed, total
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, total=total)

    def set_total(self, total: int) -> None:
        import time

        self.total, self.item_t0 = total, time.monotonic()
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    # -- output ---------------------------------------------------------------------------------
    def elapsed(self) -> float:
        import time

        return time.monotonic() - self.t0

    def _line(self, text: Text) -> None:
        import time

        stamp = Text(f"[{_clock(self.elapsed())}]", style="dim")
        self.out.print(Text.assemble(stamp, text), highlight=False, soft_wrap=True)
        with self._lock:
            self.last_line = time.monotonic()

    def _refresh(self) -> None:
        if self._bar is not None:
            with self._lock:  # the step is the line just above: the bar shows how far it is
                text = self.detail_text or self.current
            self._bar.update(self._task, description=text if len(text) <= BAR_TEXT else text[:BAR_TEXT - 1] + "…")

    def _heartbeat(self) -> None:
        import time

        while not self._stop.wait(min(1.0, self.heartbeat_s / 4)):
            with self._lock:
                quiet = time.monotonic() - self.last_line
                step, detail, running = self.current, self.detail_text, time.monotonic() - self.step_t0
            if quiet >= self.heartbeat_s:
                self._line(Text(f" ... still {step}" + (f", {detail}" if detail else "")
                                + f" ({format_duration(running)} so far)"))
