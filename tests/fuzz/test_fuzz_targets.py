"""Tampered target specs (TOML) through `get_target` and `hpv-compile --target FILE.toml`, in process:
values swapped for hostile ones, lines dropped or doubled, bytes cut, flipped or made non-UTF-8.
The command is given a precision no target has, so a spec that still validates stops at that check
(exit 2) and never starts a build."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from hpv.targets import SPEC_DIR
from tests.fuzz.harness import KNOWN, KNOWN_BUGS, assert_finite, check_cli, fuzz_settings, invoke, typed

SPECS = {p.stem: p.read_text(encoding="utf-8") for p in sorted(SPEC_DIR.glob("*.toml"))}
VALUES = ("nan", "inf", "-inf", "-1", "0", "1e400", "99999999999999999999999", "18.0", '"18"', '""', "[]", "{}",
          "true", '"dynamic"', "[0, 65]", "[1, 1]", '"\\u0000"', '"' + "x" * 3000 + '"', "1979-05-27", "[[1]]")
ASSIGNMENT = re.compile(r"^(\s*[\w.-]+\s*=\s*)(.+)$")


@st.composite
def tampered(draw):
    """(target name, tampered spec bytes, the key it touched or None)."""
    name = draw(st.sampled_from(sorted(SPECS)))
    lines = SPECS[name].splitlines()
    key = None
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["value", "value", "value", "drop", "double", "rename", "table"]))
        m = ASSIGNMENT.match(lines[i])
        if op == "value" and m:
            lines[i] = m.group(1) + draw(st.sampled_from(VALUES))
        elif op == "drop":
            lines.pop(i)
        elif op == "double":
            lines.insert(i, lines[i])
        elif op == "rename" and m:
            lines[i] = "unknown_key = " + m.group(2)
        elif op == "table":
            lines.insert(i, draw(st.sampled_from(["[tolerance.fp64]", "[tolerance]", "[options.nested]", "[[batch]]"])))
        if m:
            key = m.group(1).split("=")[0].strip()
        if not lines:
            lines = [""]
    data = "\n".join(lines).encode()
    cut = draw(st.sampled_from(["none", "none", "truncate", "flip", "latin1"]))
    if cut == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif cut == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    elif cut == "latin1":
        data = data.replace(b"description = \"", "description = \"é".encode("latin-1"), 1)
    return name, data, key


def run_target_case(name: str, data: bytes, key: str | None) -> None:
    from hpv.targets import get_target

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "out").mkdir()
        path = tmp / f"{name}.toml"
        path.write_bytes(data)
        target = typed("target", lambda: get_target(str(path)), [str(path)])
        if target is not None and target is not KNOWN:
            assert target.name == name
            assert_finite(target, str(path))
        result = invoke(None, ["compile", "--target", path, "--precision", "fp64-nope", "--out", tmp / "out"])
        outcome = check_cli(result, names=[str(path), key, "fp64-nope"], out_dir=tmp / "out", codes=(2,))
        assert (outcome is KNOWN) == (target is KNOWN), "the command and get_target disagree"


@fuzz_settings(examples=250)
@given(case=tampered())
def test_tampered_target_specs(case):
    run_target_case(*case)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("data", [b"", b"\x00\x01", b"schema_version = 1", b"\xff\xfe", b"= 1", b"[" * 5000],
                         ids=["empty", "binary", "only-version", "utf16-bom", "no-key", "deep"])
def test_broken_target_files(name, data):
    run_target_case(name, data, None)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_shipped_specs_copied_are_read(name):
    run_target_case(name, SPECS[name].encode(), None)


@pytest.mark.parametrize("batch", ["[[1]]", "[{}]"])
def test_a_batch_list_of_lists_or_tables_is_a_typed_error(batch, tmp_path):
    from hpv.errors import TargetSpecError
    from hpv.targets import get_target

    path = tmp_path / "onnx-cpu.toml"
    path.write_text(SPECS["onnx-cpu"].replace('batch = "dynamic"', f"batch = {batch}"))
    with pytest.raises(TargetSpecError, match="batch"):
        get_target(str(path))
