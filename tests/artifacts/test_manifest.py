import json

import jsonschema
import pytest

from hpv.artifacts.manifest import MANIFEST_NAME, SCHEMA_PATH, load_manifest, manifest_json_schema
from hpv.errors import ManifestError


def test_committed_schema_is_current():
    assert json.loads(SCHEMA_PATH.read_text()) == manifest_json_schema()


def test_good_manifest_validates(small_build):
    manifest = load_manifest(small_build.folder)
    raw = json.loads((small_build.folder / MANIFEST_NAME).read_text())
    jsonschema.validate(raw, json.loads(SCHEMA_PATH.read_text()))  # the file app teams use
    assert raw["schema_version"] == 1 and raw["target"] == "onnx-cpu"
    assert {"torch", "onnx", "onnxruntime"} <= set(raw["tool_versions"])
    stages = {a.stage for a in manifest.artifacts}
    assert stages == {"fire_gen", "refiner", "fire_upscaler"}
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
}


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
