import urllib.request

import numpy as np
import pytest

from hpv.compiler.web import blob
from hpv.compiler.web.server import ISOLATION_HEADERS, LocalServer


def test_server_is_cross_origin_isolated_and_stays_in_its_folder(tmp_path):
    (tmp_path / "a.wasm").write_bytes(b"\0asm")
    (tmp_path.parent / "secret.txt").write_text("no")
    with LocalServer() as s:
        assert s.origin.startswith("http://127.0.0.1:")
        s.mount("/x/", tmp_path)
        r = urllib.request.urlopen(s.url("/x/a.wasm"))
        assert r.read() == b"\0asm" and r.headers["Content-Type"] == "application/wasm"
        for k, v in ISOLATION_HEADERS.items():
            assert r.headers[k] == v
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(s.url("/x/../secret.txt"))
        slot = s.new_slot()
        urllib.request.urlopen(urllib.request.Request(s.url(slot), data=b"out", method="POST"))
        assert s.take(slot, 5) == b"out"


def test_blob_round_trip():
    t = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.float32([[1.5]]), "c": np.zeros((0, 4), np.float32)}
    header, back = blob.decode(blob.encode(t, ms=3.5))
    assert header["ms"] == 3.5 and list(back) == ["a", "b", "c"]
    for k in t:
        np.testing.assert_array_equal(back[k], t[k])


def test_onnx_wasm_build_is_verified_in_chromium(wasm_build):
    from hpv.artifacts.manifest import load_manifest

    m = load_manifest(wasm_build.folder)  # validated against the schema on read
    assert {a.precision for a in m.artifacts} == {"fp32", "int8"}
    assert {a.stage for a in m.artifacts} == {"fire_gen", "refiner", "fire_upscaler", "hand_gen", "face_gen"}
    assert m.part_stages == {"left_hand": "hand_gen", "right_hand": "hand_gen", "face": "face_gen"}
    for a in m.artifacts:
        v = a.verification
        assert v.checked_on.startswith("chromium ") and "onnxruntime-web 1.30.0 wasm 1 thread" in v.checked_on, v
        assert v.batches == [1, 3] and v.frames >= 6
        assert v.psnr_db >= v.tolerance.min_psnr_db
        if a.precision == "fp32":
            assert v.max_abs_error <= 1e-4, (a.path, v.max_abs_error)


def test_wasm_outputs_match_python_onnxruntime(wasm_build):
    """The same artifact on the same inputs: wasm within float rounding of ORT's CPU provider."""
    from hpv.compiler.backends import get_backend
    from hpv.compiler.web.runner import browser_runner
    from hpv.targets import get_target

    path = wasm_build.folder / "refiner.fp32.onnx"
    native = get_backend("onnx").runner(path, get_target("onnx-cpu"))
    web = browser_runner(path)
    rng = np.random.default_rng(0)
    rec = next(a for a in wasm_build.manifest.artifacts if a.path == path.name)
    feeds = {t.name: rng.uniform(*t.value_range, size=[2 if d == "batch" else d for d in t.shape]).astype(np.float32)
             for t in rec.inputs}
    a, b = native(feeds), web(feeds)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].shape == b[k].shape
        assert float(np.max(np.abs(a[k] - b[k]))) < 1e-4, k


def test_a_broken_artifact_fails_verification_in_the_browser(browser_ready, tmp_path):
    """An artifact whose outputs are wrong in the browser is refused with the measured figure."""
    import onnx
    from onnx import helper

    from hpv.compiler.verify import verify
    from hpv.compiler.web.runner import browser_runner
    from hpv.errors import VerificationError
    from hpv.reference import load_pipeline
    from hpv.calibration import HELDOUT_SEED, PoseSource, stage_data
    from hpv.compiler.onnx.export import export_onnx
    from hpv.pipelines import PIPELINES
    from hpv.targets import Precision, get_target

    lp = load_pipeline(PIPELINES.get("default"), {}, small=True)
    stage = lp.stages["fire_upscaler"]
    path = tmp_path / "up.onnx"
    export_onnx(stage, path, 18)
    model = onnx.load(str(path))
    out = model.graph.output[0].name
    for node in model.graph.node:  # scale the image output by 0.5 inside the graph
        node.output[:] = [o + "_raw" if o == out else o for o in node.output]
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.float32([0.5]), "half"))
    model.graph.node.append(helper.make_node("Mul", [out + "_raw", "half"], [out]))
    onnx.save(model, str(path))
    samples = stage_data(lp, PoseSource(seed=HELDOUT_SEED, frames=4)).inputs["fire_upscaler"]
    run = browser_runner(path)
    with pytest.raises(VerificationError, match="psnr_db"):
        verify(stage, run, samples, artifact=path.name, checked_on=run.checked_on,
               tolerance=get_target("onnx-wasm").tolerance[Precision.FP32],
               inputs="synthetic")
