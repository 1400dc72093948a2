"""A small build (tests/conftest.py's `small_build`, made once per session) tampered with, and hostile
`.pose` files rendered through `hpv render` with it, in process. A tampered manifest or artifact is
refused by `load_build` with a `ManifestError`/`ConfigError` naming the manifest or the artifact; a
render exits 0 with a finite report and its video, or 2 leaving no video behind."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from tests.fuzz.harness import HOSTILE_VALUES, KNOWN, KNOWN_BUGS, check_cli, finite_json, fuzz_settings, invoke, key_paths, typed
from tests.fuzz.pose_corpus import fields, seeds

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def build(small_build) -> Path:
    return small_build.folder


@pytest.fixture(scope="module")
def manifest(build) -> dict:
    return json.loads((build / "manifest.json").read_text())


def _load(folder: Path, names: list[str]):
    from hpv.runtime.build import load_build

    return typed("build", lambda: load_build(folder), names)


@st.composite
def manifest_edits(draw):
    return [(draw(st.integers(0, 10**6)), draw(st.sampled_from(["replace", "delete", "duplicate"])),
             draw(st.sampled_from(HOSTILE_VALUES))) for _ in range(draw(st.integers(1, 2)))]


@fuzz_settings(examples=60)
@given(edits=manifest_edits())
def test_tampered_manifests(build, manifest, edits):
    tree = copy.deepcopy(manifest)
    paths = key_paths(manifest, items=3)[1:]
    field = None
    for pick, op, value in edits:
        path = paths[pick % len(paths)]
        try:
            parent = tree
            for key in path[:-1]:
                parent = parent[key]
            if op == "replace":
                parent[path[-1]] = value
            elif op == "delete":
                del parent[path[-1]]
            elif isinstance(parent, list):
                parent.append(copy.deepcopy(parent[path[-1]]))
        except (KeyError, IndexError, TypeError):
            continue
        field = next((k for k in reversed(path) if isinstance(k, str)), None)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "onnx-cpu"
        shutil.copytree(build, folder)
        (folder / "manifest.json").write_text(json.dumps(tree))
        _load(folder, [str(folder / "manifest.json"), str(folder), field])


@st.composite
def artifact_damage(draw):
    return (draw(st.integers(0, 10**6)), draw(st.sampled_from(["truncate", "flip", "empty", "swap"])),
            draw(st.booleans()), draw(st.integers(0, 10**9)))


@fuzz_settings(examples=40)
@given(damage=artifact_damage())
def test_damaged_artifacts(build, manifest, damage):
    """An artifact cut, flipped, emptied or swapped for another; with `rehash`, the manifest's size and
    sha256 are updated too, so the model parser itself meets the damage."""
    pick, kind, rehash, where = damage
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "onnx-cpu"
        shutil.copytree(build, folder)
        tree = copy.deepcopy(manifest)
        record = tree["artifacts"][pick % len(tree["artifacts"])]
        path = folder / record["path"]
        data = path.read_bytes()
        if kind == "truncate":
            data = data[:where % len(data)]
        elif kind == "flip":
            out = bytearray(data)
            for k in range(8):
                out[(where + 7919 * k) % len(out)] ^= 0x5A
            data = bytes(out)
        elif kind == "empty":
            data = b""
        else:
            other = tree["artifacts"][(pick + 1) % len(tree["artifacts"])]
            data = (folder / other["path"]).read_bytes()
        path.write_bytes(data)
        if rehash:
            record["bytes"], record["sha256"] = len(data), hashlib.sha256(data).hexdigest()
            (folder / "manifest.json").write_text(json.dumps(tree))
        loaded = _load(folder, [record["path"], str(folder / "manifest.json")])
        if loaded is not None and loaded is not KNOWN and kind == "flip":
            # Flipped weights keep the model's signature: the damage shows, if at all, in what it
            # computes, and a render must still end finite or refused.
            (Path(tmp) / "out").mkdir()
            out = Path(tmp) / "out" / "video.mp4"
            result = invoke(None, ["render", "-o", out, "--artifacts", folder, "--frames", "2", "-k", "1", "--json"])
            outcome = check_cli(result, names=[record["path"], record["stage"], str(folder)], out_dir=Path(tmp) / "out")
            if outcome is KNOWN:
                assert not list((Path(tmp) / "out").iterdir()), "a failed render left its video behind"
            elif result.exit_code == 0:
                finite_json(result.stdout, "render --json")


SEEDS = seeds(real=1)


def _render_inputs() -> dict[str, bytes | None]:
    reduced = SEEDS["reduced"]
    layout = fields(reduced)
    start = layout.body_start + 10
    nan_all = reduced[:start] + b"\x00\x00\xc0\x7f" * ((len(reduced) - start) // 4)
    frames = bytearray(reduced)
    frames[layout.body_start + 4:layout.body_start + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    return {
        "valid-reduced": reduced,
        "valid-real": SEEDS[next(n for n in SEEDS if n.startswith("real"))] if any(n.startswith("real") for n in SEEDS)
        else SEEDS["holistic"],
        "truncated": reduced[:len(reduced) // 2],
        "empty": b"",
        "all-nan": nan_all,
        "frames-0xffffffff": bytes(frames),
        "openpose": SEEDS["openpose"],
        "missing": None,
    }


RENDER_INPUTS = _render_inputs()


@pytest.mark.parametrize("name", sorted(RENDER_INPUTS))
def test_render_command_on_hostile_poses(build, name, tmp_path):
    (tmp_path / "out").mkdir()
    path = tmp_path / f"{name}.pose"
    if RENDER_INPUTS[name] is not None:
        path.write_bytes(RENDER_INPUTS[name])
    out = tmp_path / "out" / "video.mp4"
    result = invoke("render", ["render", path, "-o", out, "--artifacts", build, "--frames", "2", "-k", "0", "--json"])
    check_cli(result, names=[str(path)], out_dir=tmp_path / "out")
    if result.exit_code == 0:
        finite_json(result.stdout, "render --json")
        assert out.stat().st_size > 0
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["video.mp4"]


@pytest.mark.parametrize("tamper", ["no-manifest", "manifest-is-a-folder", "artifact-missing", "fps-nan"])
def test_render_command_on_a_tampered_build(build, tamper, tmp_path):
    folder = tmp_path / "onnx-cpu"
    shutil.copytree(build, folder)
    (tmp_path / "out").mkdir()
    args = []
    names = [str(folder), "manifest.json"]
    if tamper == "no-manifest":
        (folder / "manifest.json").unlink()
    elif tamper == "manifest-is-a-folder":
        (folder / "manifest.json").unlink()
        (folder / "manifest.json").mkdir()
    elif tamper == "artifact-missing":
        first = json.loads((build / "manifest.json").read_text())["artifacts"][0]["path"]
        (folder / first).unlink()
        names.append(first)
    else:
        args = ["--fps", "nan"]
        names.append("fps")
    out = tmp_path / "out" / "video.mp4"
    result = invoke("render", ["render", "-o", out, "--artifacts", folder, "--frames", "1", "-k", "0", *args])
    check_cli(result, names=names, out_dir=tmp_path / "out", codes=(2,))


def test_a_model_that_fails_to_run_is_a_typed_error(build, tmp_path):
    import onnx

    folder = tmp_path / "onnx-cpu"
    shutil.copytree(build, folder)
    tree = json.loads((folder / "manifest.json").read_text())
    record = next(a for a in tree["artifacts"] if a["stage"] == "fire_gen" and a["precision"] == "fp32")
    model = onnx.load(folder / record["path"])
    gathers = {n.input[1] for n in model.graph.node if n.op_type == "Gather"}
    for init in model.graph.initializer:
        if init.name in gathers and init.data_type == onnx.TensorProto.INT64:
            values = onnx.numpy_helper.to_array(init).copy()
            values.flat[0] = 10**6  # far past the 178 keypoints
            init.CopyFrom(onnx.numpy_helper.from_array(values, init.name))
            break
    onnx.save(model, folder / record["path"])
    data = (folder / record["path"]).read_bytes()
    record["bytes"], record["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(tree))
    (tmp_path / "out").mkdir()
    result = invoke(None, ["render", "-o", tmp_path / "out" / "v.mp4", "--artifacts", folder, "--frames", "1",
                           "-k", "0", "--precision", "fp32"])
    assert result.exit_code == 2 and record["path"] in result.stderr, result.output
