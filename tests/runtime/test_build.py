"""A build is checked once against its artifacts' own signatures: a manifest whose shapes, names,
batch or format do not match the files, or an artifact that does not parse, is a ManifestError
naming the field, and `hpv render` / `hpv profile` exit 2 with it instead of crashing."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hpv.artifacts.manifest import MANIFEST_NAME
from hpv.cli.main import cli
from hpv.errors import ManifestError

pytest.importorskip("onnxruntime")

from hpv.runtime.build import load_build  # noqa: E402


def _index(raw, path):
    return next(i for i, a in enumerate(raw["artifacts"]) if a["path"] == path)


def _copy(small_build, tmp_path, edit=None, files=None):
    """The small build copied, its manifest edited by `edit(raw)` and files rewritten by
    `files(folder)`, with the sizes and sha256s updated so only the edit itself is wrong."""
    folder = tmp_path / "build"
    shutil.copytree(small_build.folder, folder)
    if files:
        files(folder)
    raw = json.loads((folder / MANIFEST_NAME).read_text())
    for a in raw["artifacts"]:
        data = (folder / a["path"]).read_bytes()
        a["bytes"], a["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    if edit:
        edit(raw)
    (folder / MANIFEST_NAME).write_text(json.dumps(raw))
    return folder


def _set(path, field, value):
    """Set `field` (a list of keys) of the artifact at `path`."""
    def edit(raw):
        obj = raw["artifacts"][_index(raw, path)]
        for key in field[:-1]:
            obj = obj[key]
        obj[field[-1]] = value
    return edit


GEN, UP = "fire_gen.fp32.onnx", "fire_upscaler.fp32.onnx"

MISMATCHES = {
    "wrong input shape": (_set(GEN, ["inputs", 1, "shape"], ["batch", 8, 5, 5]),
                          "inputs[1].shape is ['batch', 8, 5, 5], but the file's 'h_in' is ['batch', 8, 4, 4]"),
    "wrong output shape": (_set(UP, ["outputs", 0, "shape"], ["batch", 3, 64, 64]), "outputs[0].shape"),
    "renamed output": (_set(UP, ["outputs", 0, "name"], "upscaled_rgb"),
                       "outputs[0].name is 'upscaled_rgb', which the file does not have"),
    "unknown output": (lambda raw: raw["artifacts"][_index(raw, UP)]["outputs"].append(
        {**raw["artifacts"][_index(raw, UP)]["outputs"][0], "name": "alpha"}), "outputs[1].name is 'alpha'"),
    "output left out": (lambda raw: raw["artifacts"][_index(raw, GEN)]["outputs"].pop(2),
                        "the file has outputs ['fields'] that the manifest does not list"),
    "wrong dtype": (_set(GEN, ["inputs", 0, "dtype"], "float16"), "inputs[0].dtype is 'float16'"),
    "fixed batch of a dynamic file": (_set(GEN, ["batch"], 2), "batch is 2, but the file's 'keypoints' takes any batch"),
    "format not the target's": (_set(GEN, ["format"], "tflite"),
                                "format is 'tflite', but target onnx-cpu builds 'onnx'"),
    "state names an unknown output": (_set(GEN, ["state", 0, "output"], "h_next"), "state[0] feeds output 'h_next'"),
}


@pytest.mark.parametrize("how", MISMATCHES)
def test_manifest_not_matching_its_artifacts_is_refused_with_the_field(small_build, tmp_path, how):
    edit, message = MISMATCHES[how]
    folder = _copy(small_build, tmp_path, edit)
    with pytest.raises(ManifestError, match="artifacts\\[") as e:
        load_build(folder)
    assert message in str(e.value)


def _garbage(folder):
    (folder / GEN).write_bytes(b"\x08\x07garbage, not a model" * 50)


def _truncated(folder):
    data = (folder / GEN).read_bytes()
    (folder / GEN).write_bytes(data[: len(data) // 2])


def _no_graph(folder):
    (folder / GEN).write_bytes(b"\x08\x07")  # a valid protobuf: a ModelProto with only ir_version 7


@pytest.mark.parametrize("damage", [_garbage, _truncated, _no_graph])
def test_artifact_that_does_not_parse_is_a_manifest_error(small_build, tmp_path, damage):
    folder = _copy(small_build, tmp_path, files=damage)  # sha256 recorded for the damaged bytes
    with pytest.raises(ManifestError, match=r"artifacts\[0\] \(fire_gen.fp32.onnx\)") as e:
        load_build(folder)
    assert "rebuild it with hpv-compile --target onnx-cpu" in str(e.value)


def test_runner_that_refuses_the_file_is_a_manifest_error(small_build, tmp_path):
    """A file that parses as a protobuf but that the runtime refuses: the runtime's error, named."""
    import onnx

    folder = _copy(small_build, tmp_path)
    build = load_build(folder)
    record = build.manifest.artifacts[0]
    model = onnx.load(str(folder / record.path))
    model.graph.node[0].op_type = "NoSuchOp"
    onnx.save(model, str(folder / record.path))
    with pytest.raises(ManifestError, match="onnx runtime cannot load the file"):
        build.runner(record)


def test_a_runner_at_one_thread_gives_the_same_outputs(small_build):
    """`Build.runner(record, threads=1)` (the runtime's side-by-side part sessions) computes what
    the default session does."""
    import numpy as np

    from hpv.runtime.pipeline import _nchw

    build = load_build(small_build.folder)
    record = next(a for a in build.manifest.artifacts if a.precision == "fp32")
    rng = np.random.default_rng(0)
    feeds = {t.name: rng.random(_nchw(t, 1), dtype=np.float32) * 0.5 for t in record.inputs}
    want, got = build.runner(record)(feeds), build.runner(record, threads=1)(feeds)
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)


def _render(folder, tmp_path):
    return CliRunner().invoke(cli, ["render", "-o", str(tmp_path / "x.mp4"), "--artifacts", str(folder),
                                    "--frames", "2", "-k", "1"])


CLI_CASES = {
    "wrong input shape": MISMATCHES["wrong input shape"],
    "renamed output": MISMATCHES["renamed output"],
    "empty artifact list": (lambda raw: raw.update(artifacts=[]), "artifacts\n  List should have at least 1 item"),
    "zero output size": (_set(UP, ["outputs", 0, "shape"], ["batch", 3, 0, 0]), "outputs.0.shape.2"),
    "negative output size": (_set(UP, ["outputs", 0, "shape"], ["batch", 3, -96, -96]), "outputs.0.shape.2"),
    "empty value range": (_set(UP, ["outputs", 0, "value_range"], [1.0, 1.0]), "value_range"),
}


@pytest.mark.parametrize("how", CLI_CASES)
def test_render_of_a_tampered_build_exits_2_naming_the_field(small_build, tmp_path, how):
    edit, message = CLI_CASES[how]
    pytest.importorskip("av")
    run = _render(_copy(small_build, tmp_path, edit), tmp_path)
    assert run.exit_code == 2, run.output
    assert message in run.output and "Traceback" not in run.output
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*partial*"))


def test_render_of_an_artifact_that_does_not_parse_exits_2(small_build, tmp_path):
    pytest.importorskip("av")
    run = _render(_copy(small_build, tmp_path, files=_garbage), tmp_path)
    assert run.exit_code == 2 and "the file is not a readable onnx model" in run.output, run.output


def _profile_subprocess(folder, tmp_path):
    """In a child process: the old code segfaulted in ONNX Runtime on `batch: 0`."""
    return subprocess.run(
        [sys.executable, "-c", "from hpv.cli.main import main; main()", "profile", str(folder), "--out",
         str(tmp_path / "p.json"), "--runs", "1", "--warmup", "0", "--rounds", "1", "--no-pipelines",
         "--peak-gmacs", "1"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"})


@pytest.mark.parametrize("how, message", [
    ("batch zero", "artifacts.0.batch"),
    ("format not the target's", "format is 'tflite', but target onnx-cpu builds 'onnx'"),
])
def test_profile_of_a_tampered_build_exits_2_naming_the_field(small_build, tmp_path, how, message):
    edit = _set(GEN, ["batch"], 0) if how == "batch zero" else MISMATCHES[how][0]
    proc = _profile_subprocess(_copy(small_build, tmp_path, edit), tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert not (tmp_path / "p.json").exists()


def test_an_untampered_copy_loads(small_build, tmp_path):
    build = load_build(_copy(small_build, tmp_path))
    assert build.target.name == "onnx-cpu" and len(build.manifest.artifacts) == len(small_build.manifest.artifacts)


def test_a_build_runs_the_k_its_manifest_records(small_build, tmp_path):
    from hpv.runtime.pipeline import CompiledPipeline

    def k_of(value):
        return CompiledPipeline(_copy(small_build, tmp_path / str(value), lambda raw: raw.update(max_steps=value)),
                                "fp32").max_steps

    assert k_of(0) == 0 and k_of(2) == 2  # the refiner was built for 2 steps; the default runs 1
    with pytest.raises(ManifestError, match="built for 2 steps"):
        k_of(3)
