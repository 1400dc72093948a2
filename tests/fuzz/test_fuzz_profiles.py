"""Tampered device profiles (JSON) through `hpv compare`, `hpv schedule` and `hpv report`, in process:
values swapped for NaN, infinities, huge, negative or wrongly typed ones, keys dropped or added,
entries duplicated, and bytes cut, flipped or made non-UTF-8. Every run exits 0 (1: a regression, for
compare) with finite figures, or 2 with a message naming the file or the field, leaving nothing behind."""

from __future__ import annotations

import copy
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from tests.fuzz.harness import HOSTILE_VALUES, check_cli, finite_json, fuzz_settings, invoke, key_paths
from tests.profiles import factory

BASE = json.loads(factory.profile(factory.device("phone-a", precisions=("fp32", "int8")),
                                  factory.device("phone-b", step_ms=30.0, target="tflite-cpu", seed=3))
                  .model_dump_json())
NON_FINITE = re.compile(r"\b(nan|inf|-inf|infinity)\b", re.IGNORECASE)


PATHS = key_paths(BASE, items=2)[1:]


def _parent(tree, path):
    for key in path[:-1]:
        tree = tree[key]
    return tree


@st.composite
def tampered(draw):
    """(bytes of a tampered profile, the field it touched or None)."""
    tree = copy.deepcopy(BASE)
    field = None
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        key = path[-1]
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "duplicate", "scale"]))
        try:  # an earlier mutation may have removed or replaced the path's parents
            parent = _parent(tree, path)
            if op == "replace":
                parent[key] = draw(st.sampled_from(HOSTILE_VALUES))
            elif op == "delete":
                del parent[key]
            elif op == "add":
                (parent if isinstance(parent, dict) else tree)["unexpected_key"] = 1
            elif op == "duplicate" and isinstance(parent, list):
                parent.append(copy.deepcopy(parent[key]))
            elif op == "scale" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
                parent[key] = parent[key] * draw(st.sampled_from([-1, 0, 1e-9, 1e9, 1e300]))
        except (KeyError, IndexError, TypeError):
            pass
        field = key if isinstance(key, str) else (path[-2] if len(path) > 1 else None)
    data = json.dumps(tree).encode()  # NaN and infinities as JSON's usual NaN / Infinity tokens
    cut = draw(st.sampled_from(["none", "none", "none", "truncate", "flip", "bom", "latin1", "nest"]))
    if cut == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif cut == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    elif cut == "bom":
        data = b"\xef\xbb\xbf" + data
    elif cut == "latin1":
        data = data.replace(b'"phone-a"', '"phöne-a"'.encode("latin-1"), 1)
    elif cut == "nest":
        data = b"[" * 100_000 + b"]" * 100_000
    return data, field


COMMANDS = {
    "compare": lambda p, base, out: (["compare", base, p], (0, 1, 2)),
    "compare-as-baseline": lambda p, base, out: (["compare", p, base, "--markdown", out / "summary.md"], (0, 1, 2)),
    "schedule": lambda p, base, out: (["schedule", p, "--fps", "30", "--json"], (0, 2)),
    "schedule-slow": lambda p, base, out: (["schedule", p, "--fps", "2", "--max-batch", "4"], (0, 2)),
    "schedule-emit": lambda p, base, out: (["schedule", p, "--emit", out / "table.json", "--fps-range", "10:60:25"],
                                           (0, 2)),
    "report": lambda p, base, out: (["report", p, "-o", out / "report.html"], (0, 2)),
}


def run_profile_case(data: bytes, field: str | None, command: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        (tmp / "out").mkdir()
        path, base = tmp / "in" / "tampered.json", tmp / "in" / "base.json"
        path.write_bytes(data)
        base.write_text(json.dumps(BASE))
        args, codes = COMMANDS[command](path, base, tmp / "out")
        result = invoke("profile", args)
        check_cli(result, names=[str(path), path.name, field], out_dir=tmp / "out", codes=codes)
        if result.exit_code == 2:
            return
        assert not NON_FINITE.search(result.stdout), result.stdout
        if "--json" in args:
            finite_json(result.stdout, "schedule --json")
        for written in (tmp / "out").iterdir():
            text = written.read_text(encoding="utf-8")
            if written.suffix == ".json":
                finite_json(text, written.name)
            else:
                assert not NON_FINITE.search(re.sub(r"<[^>]*>", " ", text)), f"{written.name} shows a non-finite figure"
                assert "NaN" not in text and "Infinity" not in text, written.name


@fuzz_settings(examples=300)
@given(case=tampered(), command=st.sampled_from(sorted(COMMANDS)))
def test_tampered_profiles(case, command):
    run_profile_case(*case, command)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("data", [b"", b"\x00" * 64, b"{}", b"[]", b"null", b'{"schema_version": 2}',
                                  b"\xff\xfe{", json.dumps(BASE).encode()[:-1]],
                         ids=["empty", "zeros", "object", "array", "null", "schema-2", "utf16-bom", "cut-last-byte"])
def test_broken_profile_files(data, command):
    run_profile_case(data, "schema_version", command)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_untampered_profile_is_finite(command):
    run_profile_case(json.dumps(BASE).encode(), None, command)
