import json

import jsonschema
import pytest

from hpv.artifacts.manifest import MANIFEST_NAME, SCHEMA_PATH, load_manifest, manifest_json_schema
from hpv.errors import ManifestError
from hpv.pipelines import PIPELINES


def test_committed_schema_is_current():
    assert json.loads(SCHEMA_PATH.read_text()) == manifest_json_schema()


def test_good_manifest_validates(small_build):
    manifest = load_manifest(small_build.folder)
    raw = json.loads((small_build.folder / MANIFEST_NAME).read_text())
    jsonschema.validate(raw, json.loads(SCHEMA_PATH.read_text()))  # the file app teams use
    assert raw["schema_version"] == 1 and raw["target"] == "onnx-cpu"
    assert {"torch", "onnx", "onnxruntime"} <= set(raw["tool_versions"])
    stages = {a.stage for a in manifest.artifacts}
    assert stages == {r.stage for r in PIPELINES.get("default").stages}
    assert raw["part_stages"] == PIPELINES.get("default").part_stages  # which part each part stage draws
    assert raw["max_steps"] == PIPELINES.get("default").max_steps  # the pipeline's K, for runtimes elsewhere
    gen = next(a for a in manifest.artifacts if a.stage == "fire_gen")
    assert [(s.input, s.output) for s in gen.state] == [("h_in", "h_out")]
    assert all(a.weights == "untrained" for a in manifest.artifacts)


def _tampered(small_build, tmp_path, edit):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(small_build.folder, folder)
    raw = json.loads((folder / MANIFEST_NAME).read_text())
    edit(raw, folder)
    (folder / MANIFEST_NAME).write_text(json.dumps(raw))
    return folder


def _set(path, value):
    def edit(raw, _folder):
        obj = raw
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return edit


TAMPERINGS = {
    "unknown top-level key": _set(["extra"], 1),
    "unknown artifact key": _set(["artifacts", 0, "speed"], "fast"),
    "bad sha256": _set(["artifacts", 0, "sha256"], "abc"),
    "absolute path": _set(["artifacts", 0, "path"], "/etc/passwd"),
    "escaping path": _set(["artifacts", 0, "path"], "../x.onnx"),
    "future schema": _set(["schema_version"], 2),
    "weights neither untrained nor sha": _set(["artifacts", 0, "weights"], "trained"),
    "missing verification": lambda raw, _f: raw["artifacts"][0].pop("verification"),
    "wrong sha of a file": _set(["artifacts", 0, "sha256"], "0" * 64),
    "missing file": lambda raw, f: (f / raw["artifacts"][0]["path"]).unlink(),
    "changed file": lambda raw, f: (f / raw["artifacts"][0]["path"]).write_bytes(b"tampered"),
    "file linked from outside the folder": lambda raw, f: _link_out(f / raw["artifacts"][0]["path"]),
    "batch zero": _set(["artifacts", 0, "batch"], 0),
    "negative batch": _set(["artifacts", 0, "batch"], -1),
    "absurd batch": _set(["artifacts", 0, "batch"], 100000),
    "no artifacts": _set(["artifacts"], []),
    "zero output size": _set(["artifacts", 0, "outputs", 0, "shape"], ["batch", 3, 0, 0]),
    "negative output size": _set(["artifacts", 0, "outputs", 0, "shape"], ["batch", 3, -32, 32]),
    "empty shape": _set(["artifacts", 0, "inputs", 0, "shape"], []),
}


def _link_out(path):
    """The artifact moved out of the build folder and linked back: same bytes, same sha256."""
    outside = path.parent.parent / f"outside-{path.name}"
    path.rename(outside)
    path.symlink_to(outside)


@pytest.mark.parametrize("how", TAMPERINGS)
def test_tampered_manifest_is_rejected(small_build, tmp_path, how):
    folder = _tampered(small_build, tmp_path, TAMPERINGS[how])
    with pytest.raises(ManifestError):
        load_manifest(folder)


@pytest.mark.parametrize("how", [k for k in TAMPERINGS if "file" not in k and "sha of" not in k])
def test_json_schema_rejects_tampering_too(small_build, tmp_path, how):
    folder = _tampered(small_build, tmp_path, TAMPERINGS[how])
    raw = json.loads((folder / MANIFEST_NAME).read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, json.loads(SCHEMA_PATH.read_text()))


def test_no_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no manifest"):
        load_manifest(tmp_path)


@pytest.mark.parametrize("how, field", [
    ("batch zero", "artifacts.0.batch"), ("no artifacts", "artifacts\n"),
    ("zero output size", "artifacts.0.outputs.0.shape.2"), ("file linked from outside the folder", "outside the build"),
])
def test_refusals_name_the_field(small_build, tmp_path, how, field):
    folder = _tampered(small_build, tmp_path, TAMPERINGS[how])
    with pytest.raises(ManifestError, match=field):
        load_manifest(folder)


def test_empty_value_range_is_refused(small_build, tmp_path):
    """The renderer divides by the upscaler's range: [1, 1] made every pixel NaN."""
    folder = _tampered(small_build, tmp_path, _set(["artifacts", 0, "outputs", 0, "value_range"], [1.0, 1.0]))
    with pytest.raises(ManifestError, match="value_range"):
        load_manifest(folder)


def test_a_link_inside_the_folder_is_fine(small_build, tmp_path):
    def link_in(raw, folder):
        path = folder / raw["artifacts"][0]["path"]
        path.rename(folder / "real.onnx")
        path.symlink_to("real.onnx")

    load_manifest(_tampered(small_build, tmp_path, link_in))


@pytest.mark.parametrize("given", ["folder", "manifest"])
def test_manifest_that_is_a_folder(tmp_path, given):
    (tmp_path / MANIFEST_NAME).mkdir()
    with pytest.raises(ManifestError, match="is a folder, not a manifest file"):
        load_manifest(tmp_path if given == "folder" else tmp_path / MANIFEST_NAME)


def test_non_finite_verification_figures_are_refused():
    """A NaN PSNR or tolerance in a manifest would read as 'verified'; the record refuses it."""
    import pydantic

    from hpv.artifacts.manifest import ToleranceRecord, VerificationRecord

    with pytest.raises(pydantic.ValidationError):
        ToleranceRecord(min_psnr_db=float("nan"), max_abs_error=None)
    with pytest.raises(pydantic.ValidationError):
        VerificationRecord(checked_on="x", psnr_db=float("nan"), max_abs_error=0.0, frames=1, batches=[1],
                           tolerance=ToleranceRecord(min_psnr_db=30.0, max_abs_error=None), inputs="x")
