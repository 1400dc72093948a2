"""What every fuzz case asserts, whatever it feeds: only the project's typed errors escape (the CLI
exits 0, 1 where a command documents it, or 2, never with a traceback), a refusal names the file or
the field, a refused command leaves nothing in its output folder, and what succeeds is finite."""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from hpv.cli.main import cli
from hpv.errors import HpvError

# Cases run per suite (pose, profile, ...), printed at the end of the session (tests/fuzz/conftest.py).
CASES: collections.Counter[str] = collections.Counter()
OUTCOMES: collections.Counter[tuple[str, str]] = collections.Counter()  # (suite, "exit 0" / "refused" / "ok")

# Bugs the fuzz cases found in code outside the fuzz suite's remit, not fixed here. A case that hits
# one is counted (KNOWN_HITS, printed at the end) and stops there, or carries on with the checks the
# bug does not touch; each bug has a strict xfail test that reproduces it, so fixing the bug turns
# that test into a failure (XPASS) that says to delete its entry here.
@dataclass(frozen=True)
class KnownBug:
    reason: str
    error: type[BaseException] | None = None  # what escapes, raised in
    where: str = ""  # "file.py:function", the innermost frame under hpv/


KNOWN_BUGS: dict[str, KnownBug] = {}  # none open: the five the suite found are fixed and tested below
KNOWN_HITS: collections.Counter[str] = collections.Counter()
KNOWN = object()  # what `typed` returns for a case that hit a known bug


def known(bug: str) -> None:
    assert bug in KNOWN_BUGS
    KNOWN_HITS[bug] += 1


def innermost_hpv_frame(e: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f"{os.sep}hpv{os.sep}" in f.filename]
    return f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else ""


def known_bug(e: BaseException) -> str | None:
    """The known bug `e` is, counted; None when it is none of them."""
    for name, bug in KNOWN_BUGS.items():
        if bug.error is not None and isinstance(e, bug.error) and innermost_hpv_frame(e) == bug.where:
            known(name)
            return name
    return None


# Values that replace a field of a JSON file (a profile, a manifest): wrong types, extremes, non-finite.
HOSTILE_VALUES = (None, True, False, 0, -1, -0.5, 1e-320, 1e308, -1e308, float("nan"), float("inf"), float("-inf"),
                  2**70, -(2**63), "", "x" * 5000, "ü\u0000\u202e", "../../etc/passwd", [], {}, [1, "a"],
                  {"schema_version": 1})


def fuzz_settings(examples: int) -> settings:
    """Reproducible runs (the same examples every time, no example database), no per-example deadline."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@contextlib.contextmanager
def strict_numpy():
    """numpy's RuntimeWarnings (NaN cast to an integer, overflow, 0/0) are failures: they are how a
    NaN reaches a picture or a figure. The readers' own notes (PoseNoteWarning) are not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)
        yield


def typed(suite: str | None, fn: Callable[[], object], names: Iterable[str]):
    """`fn()`'s result, None when it raised a typed error whose message names one of `names`, or
    KNOWN when it hit a known bug. Any other exception fails the case. Counts a case of `suite` (None: part of a case counted already)."""
    if suite:
        CASES[suite] += 1
    names = [str(n) for n in names if n]
    try:
        with strict_numpy():
            result = fn()
        OUTCOMES[suite or "-", "ok"] += 1
        return result
    except HpvError as e:
        OUTCOMES[suite or "-", "refused"] += 1
        message = str(e)
        assert message.strip(), f"{type(e).__name__} with an empty message"
        assert any(n in message for n in names), f"message names none of {names}: {message}"
        return None
    except Exception as e:
        if known_bug(e):
            OUTCOMES[suite or "-", "known bug"] += 1
            return KNOWN
        raise


def invoke(suite: str | None, args: list[str], command=cli) -> Result:
    """`hpv ARGS` in process (CliRunner); counts a case of `suite` (None: part of one counted already)."""
    if suite:
        CASES[suite] += 1
    with strict_numpy():
        result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=True)
    OUTCOMES[suite or "cli", f"exit {result.exit_code}"] += 1
    return result


def check_cli(result: Result, *, names: Iterable[str], out_dir: Path | None = None,
              codes: tuple[int, ...] = (0, 2), keep: Iterable[str] = ()) -> object:
    """Exit code in `codes` and no traceback; on exit 2, stderr names one of `names` and `out_dir`
    holds nothing but `keep` (files that were there before). KNOWN for a traceback of a known bug."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        if known_bug(exc):
            return KNOWN
        import traceback

        raise AssertionError("traceback from the CLI:\n" + "".join(traceback.format_exception(exc)))
    assert result.exit_code in codes, f"exit {result.exit_code}:\n{result.output}"
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 2:
        names = [str(n) for n in names if n]
        assert any(n in result.stderr for n in names), f"message names none of {names}:\n{result.stderr}"
        if out_dir is not None:
            left = sorted(p.name for p in out_dir.iterdir() if p.name not in set(keep))
            assert not left, f"a refused command left {left} in {out_dir}:\n{result.stderr}"
    return None


def assert_finite(value, where: str = "output") -> None:
    """Every number in `value` (arrays, tensors, JSON-like trees, pydantic models) is finite."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if hasattr(value, "detach"):
        value = value.detach().float().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            bad = np.argwhere(~np.isfinite(value))
            assert not len(bad), f"{where}: non-finite at {bad[:5].tolist()}"
        return
    if isinstance(value, float):
        assert math.isfinite(value), f"{where} = {value}"
    elif isinstance(value, dict):
        for k, v in value.items():
            assert_finite(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            assert_finite(v, f"{where}[{i}]")


def finite_json(text: str, where: str) -> None:
    assert_finite(json.loads(text), where)


def key_paths(tree, prefix=(), items: int = 2) -> list[tuple]:
    """Every key path of a JSON tree (the root first), lists shortened to their first `items`
    entries (their entries are alike)."""
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += key_paths(v, prefix + (k,), items)
    elif isinstance(tree, list):
        for i, v in enumerate(tree[:items]):
            out += key_paths(v, prefix + (i,), items)
    return out
