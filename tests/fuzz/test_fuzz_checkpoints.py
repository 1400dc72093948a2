"""Hostile checkpoints through `read_state_dict` and `load_weights` (what `hpv-compile --weights` and
training call): pickles that would run code if loaded (bare, inside a dict, inside torch's zip
format), and safetensors and torch files that are cut short, bit-flipped or carry a tampered
header. Every case ends in a `CheckpointError` naming the file, runs no code, or loads finite weights.

Bytes are never flipped inside a pickle's structure or a zip directory: a flipped length there
makes the loader allocate whatever it claims, which a test machine should not try."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, strategies as st

from hpv.stages import STAGES, build_stage
from hpv.stages.checkpoint import load_weights, read_state_dict
from tests.fuzz.harness import KNOWN, KNOWN_BUGS, fuzz_settings, known, typed

STAGE = build_stage("fire_gen", STAGES.get("fire_gen").small)
STATE = {k: v.contiguous() for k, v in STAGE.state_dict().items()}


def _safetensors() -> bytes:
    from safetensors.torch import save

    return save(STATE)


def _torch_zip(obj=None) -> bytes:
    buffer = io.BytesIO()
    torch.save(STATE if obj is None else obj, buffer)
    return buffer.getvalue()


SAFETENSORS = _safetensors()
TORCH_ZIP = _torch_zip()
HEADER_LEN = struct.unpack_from("<Q", SAFETENSORS, 0)[0]
HEADER = json.loads(SAFETENSORS[8:8 + HEADER_LEN])


def _data_spans(data: bytes) -> list[tuple[int, int]]:
    """Where the tensor bytes of a torch zip lie (archive/data/N records, stored uncompressed)."""
    spans = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            if "/data/" in info.filename and info.compress_type == zipfile.ZIP_STORED and info.file_size:
                name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
                start = info.header_offset + 30 + name_len + extra_len
                spans.append((start, start + info.file_size))
    return spans


DATA_SPANS = _data_spans(TORCH_ZIP)


def run_checkpoint_case(data: bytes, suffix: str, marker: Path | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"weights{suffix}"
        path.write_bytes(data)
        cwd = os.getcwd()
        os.chdir(tmp)  # a payload that writes relative to the working folder writes here
        try:
            state = typed("checkpoint", lambda: read_state_dict(path), [str(path)])
            sha = typed(None, lambda: load_weights(build_stage("fire_gen", STAGES.get("fire_gen").small), path),
                        [str(path)])
        finally:
            os.chdir(cwd)
        assert not (Path(tmp) / "pwned").exists(), "a checkpoint ran code"
        if marker is not None:
            assert not marker.exists(), "a checkpoint ran code"
        assert state is not KNOWN and sha is not KNOWN
        if state is not None:
            finite = all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
            if not finite:
                known("checkpoint-non-finite")
        if sha is not None:
            assert len(sha) == 64


# Pickles that run code when loaded with plain pickle / torch.load(weights_only=False).
class _System:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


class _Exec:
    def __reduce__(self):
        return (exec, ("open('pwned', 'w').write('x')",))


class _Eval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch pwned')",))


class _Popen:
    def __reduce__(self):
        import subprocess

        return (subprocess.Popen, (["touch", "pwned"],))


def _raw(protocol: int, obj) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def _in_torch_zip(payload: bytes) -> bytes:
    """torch's zip checkpoint with its data.pkl replaced by `payload`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(TORCH_ZIP)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            content = payload if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info.filename, content)
    return out.getvalue()


HOSTILE_PICKLES = {
    "os-system": lambda: _raw(2, {"stem.0.weight": _System()}),
    "exec": lambda: _raw(4, _Exec()),
    "eval-protocol-0": lambda: _raw(0, [_Eval()]),
    "popen-protocol-5": lambda: _raw(5, {"a": (_Popen(),)}),
    "getattr-import": lambda: b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'touch pwned'\ntR.",
    "global-opcode": lambda: b"cos\nsystem\n(S'touch pwned'\ntR.",
    "inst-opcode": lambda: b"(S'touch pwned'\nios\nsystem\n.",
    "stack-global": lambda: b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x0btouch pwned\x85R.",
    "builtins-open": lambda: b"\x80\x02cbuiltins\nopen\nq\x00X\x05\x00\x00\x00pwnedq\x01X\x01\x00\x00\x00wq\x02\x86q\x03Rq\x04.",
    "zip-os-system": lambda: _in_torch_zip(_raw(2, {"stem.0.weight": _System()})),
    "zip-exec": lambda: _in_torch_zip(_raw(2, _Exec())),
    "zip-global-opcode": lambda: _in_torch_zip(b"cos\nsystem\n(S'touch pwned'\ntR."),
    "zip-not-a-dict": lambda: _in_torch_zip(_raw(2, [1, 2, 3])),
    "zip-dict-of-ints": lambda: _in_torch_zip(_raw(2, {"stem.0.weight": 3})),
    "zip-empty-pickle": lambda: _in_torch_zip(b""),
    "tensors-and-code": lambda: _torch_zip({"stem.0.weight": torch.zeros(2), "x": _System()}),
}


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".bin"])
@pytest.mark.parametrize("name", sorted(HOSTILE_PICKLES))
def test_pickles_that_would_run_code_are_refused(name, suffix, tmp_path):
    marker = tmp_path / "pwned"
    data = HOSTILE_PICKLES[name]().replace(b"touch pwned", b"touch " + str(marker).encode())
    run_checkpoint_case(data, suffix, marker)


GARBAGE = {
    "empty": b"",
    "zeros": b"\x00" * 64,
    "text": b"not a checkpoint\n",
    "zip-magic-only": b"PK\x03\x04" + b"\x00" * 26,
    "json": json.dumps({"stem.0.weight": [1, 2]}).encode(),
    "safetensors-header-only": SAFETENSORS[:8 + HEADER_LEN],
    "safetensors-huge-header-length": struct.pack("<Q", 2**63) + SAFETENSORS[8:],
    "safetensors-zero-header-length": struct.pack("<Q", 0) + SAFETENSORS[8:],
}


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_files(name, suffix):
    run_checkpoint_case(GARBAGE[name], suffix)


def _with_header(header: dict) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + SAFETENSORS[8 + HEADER_LEN:]


TENSOR_KEYS = sorted(k for k in HEADER if k != "__metadata__")


@st.composite
def tampered_safetensors(draw):
    kind = draw(st.sampled_from(["header", "header", "truncate", "flip-header", "flip-data", "length"]))
    if kind == "header":
        header = json.loads(json.dumps(HEADER))
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(TENSOR_KEYS))
            if not isinstance(header.get(key), dict):  # dropped or renamed by an earlier edit
                continue
            field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "drop", "rename", "metadata"]))
            if field == "dtype":
                header[key]["dtype"] = draw(st.sampled_from(["F64", "F16", "BF16", "I64", "U8", "BOOL", "XX", "", 7]))
            elif field == "shape":
                header[key]["shape"] = draw(st.sampled_from([[], [0], [-1], [2**40], [2**31, 2**31], [1] * 64, "x"]))
            elif field == "data_offsets":
                end = len(SAFETENSORS) - 8 - HEADER_LEN
                header[key]["data_offsets"] = draw(st.sampled_from(
                    [[0, 0], [5, 2], [0, 2**40], [-1, 4], [end, end + 4], [0, end], [1.5, 2], None]))
            elif field == "drop":
                header.pop(key, None)
            elif field == "rename":
                header["unexpected." + key] = header.pop(key, {})
            else:
                header["__metadata__"] = draw(st.sampled_from([{"format": "pt"}, {"a": 1}, [], "x", {"x" * 10: "y" * 10000}]))
        return _with_header(header)
    data = SAFETENSORS
    if kind == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    if kind == "length":
        return struct.pack("<Q", draw(st.sampled_from([1, 7, HEADER_LEN - 1, HEADER_LEN + 1, len(data), 2**32]))) + data[8:]
    lo, hi = (8, 8 + HEADER_LEN) if kind == "flip-header" else (8 + HEADER_LEN, len(data))
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 16))):
        out[draw(st.integers(lo, hi - 1))] ^= draw(st.integers(1, 255))
    return bytes(out)


@fuzz_settings(examples=150)
@given(data=tampered_safetensors())
def test_tampered_safetensors(data):
    run_checkpoint_case(data, ".safetensors")


@st.composite
def tampered_torch_zip(draw):
    if draw(st.booleans()):
        return TORCH_ZIP[:draw(st.integers(0, len(TORCH_ZIP) - 1))]
    out = bytearray(TORCH_ZIP)
    for _ in range(draw(st.integers(1, 16))):
        lo, hi = draw(st.sampled_from(DATA_SPANS))
        out[draw(st.integers(lo, hi - 1))] ^= draw(st.integers(1, 255))
    return bytes(out)


@fuzz_settings(examples=80)
@given(data=tampered_torch_zip())
def test_tampered_torch_checkpoints(data):
    run_checkpoint_case(data, ".pt")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load(value, tmp_path):
    from hpv.errors import CheckpointError
    from safetensors.torch import save

    state = dict(STATE)
    state["stem.0.weight"] = torch.full_like(state["stem.0.weight"], value)
    path = tmp_path / "w.safetensors"
    path.write_bytes(save(state))
    with pytest.raises(CheckpointError, match="stem.0.weight"):
        load_weights(build_stage("fire_gen", STAGES.get("fire_gen").small), path)
