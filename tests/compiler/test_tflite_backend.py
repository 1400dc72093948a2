"""Every registered stage through LiteRT in fp32 / fp16 / int8, verified in ai-edge-litert's
interpreter (XNNPACK, 2 threads) with a 30-frame state-carrying rollout (small sizes)."""

import json

import numpy as np
import pytest

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("ai_edge_quantizer")

from hpv.compiler import build as build_mod  # noqa: E402
from hpv.compiler.build import CompileRequest, compile  # noqa: E402
from hpv.errors import DelegateFallbackError  # noqa: E402
from hpv.stages import STAGES, build_stage  # noqa: E402
from hpv.targets import get_target  # noqa: E402

PRECISIONS = ("fp32", "fp16", "int8")


@pytest.fixture(scope="module", params=STAGES.names())
def built(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"tflite-{request.param}")
    return compile(CompileRequest(target="tflite-cpu", stages=(request.param,), precisions=PRECISIONS,
                                  out=out, small=True))


def test_every_precision_verified_in_litert(built):
    arts = built.manifest.artifacts
    itf = build_stage(arts[0].stage, STAGES.get(arts[0].stage).small).interface()
    assert [a.precision for a in arts] == list(PRECISIONS)
    for a in arts:
        v = a.verification
        assert v.checked_on == "litert-xnnpack" and v.frames >= 15 and a.batch == 1  # refiner: frames with a step
        assert v.psnr_db >= v.tolerance.min_psnr_db
        if a.precision == "fp32":
            assert v.max_abs_error < 1e-4
        declared = {t.name: t for t in (*itf.inputs, *itf.outputs)}
        for t in a.inputs + a.outputs:  # channel-last images, as Android feeds them
            if len(t.shape) == 4:
                b, c, h, w = declared[t.name].concrete_shape(1)
                assert t.layout == "NHWC" and tuple(t.shape) == (b, h, w, c), t.name


def test_int8_is_full_integer_with_quantization_params(built):
    a = next(a for a in built.manifest.artifacts if a.precision == "int8")
    for t in a.inputs + a.outputs:
        if t.role == "step":
            continue
        if t.role == "keypoints":  # the rasterizer and its input stay float
            assert t.dtype == "float32" and t.quantization is None, t.name
            continue
        assert t.dtype == "int8", t.name
        assert t.quantization is not None and t.quantization.scale > 0
        assert -128 <= t.quantization.zero_point <= 127
    fp32 = next(a for a in built.manifest.artifacts if a.precision == "fp32")
    assert a.bytes < fp32.bytes


def test_recurrent_rollout_holds_its_psnr(built):
    a = next(a for a in built.manifest.artifacts if a.precision == "int8")
    if not a.state:
        pytest.skip(f"{a.stage} has no recurrent state")
    v = a.verification
    assert v.psnr_late_db is not None and v.psnr_late_db >= v.tolerance.min_psnr_db
    # the state's input and output scales are both recorded: the app requantizes between frames
    for s in a.state:
        qi = next(t for t in a.inputs if t.name == s.input).quantization
        qo = next(t for t in a.outputs if t.name == s.output).quantization
        assert qi is not None and qo is not None


def test_manifest_lists_ops(built):
    raw = json.loads((built.folder / "manifest.json").read_text())
    assert all("CONV_2D" in a["notes"]["ops"] for a in raw["artifacts"])


def test_gpu_target_reports_fallback_and_can_refuse(tmp_path, monkeypatch):
    result = compile(CompileRequest(target="tflite-gpu", stages=("fire_upscaler",), out=tmp_path, small=True))
    (a,) = result.manifest.artifacts
    ops, fallback = set(a.notes["ops"].split(",")), set(filter(None, a.notes["fallback_ops"].split(",")))
    assert a.precision == "fp16" and fallback == ops - set(get_target("tflite-gpu").delegate_ops)
    assert a.notes["fallback_op_count"] == len(fallback) <= get_target("tflite-gpu").max_fallback_ops

    strict = get_target("tflite-gpu").model_copy(update={"delegate_ops": ("CONV_2D",), "max_fallback_ops": 0})
    monkeypatch.setattr(build_mod, "get_target", lambda name: strict)
    with pytest.raises(DelegateFallbackError, match="fall back"):
        compile(CompileRequest(target="tflite-gpu", stages=("fire_upscaler",), out=tmp_path / "x", small=True))


def test_runner_requantizes_fed_back_state(built):
    """Feeding a dequantized int8 state output back in must reproduce the stored integers."""
    from hpv.compiler.backends import get_backend

    a = next(a for a in built.manifest.artifacts if a.precision == "int8")
    if not a.state:
        pytest.skip("no state")
    backend = get_backend("tflite")
    run = backend.runner(built.folder / a.path, get_target("tflite-cpu"))
    feeds = {t.name: np.zeros([d if isinstance(d, int) else 1 for d in t.shape], np.float32) for t in a.inputs}
    feeds = {k: (v.transpose(0, 3, 1, 2) if v.ndim == 4 else v) for k, v in feeds.items()}
    out = run(feeds)
    for s in a.state:
        assert np.isfinite(out[s.output]).all()
        again = run({**feeds, s.input: out[s.output]})
        assert again[s.output].shape == out[s.output].shape


def test_runner_at_one_thread_gives_the_same_outputs(built):
    from hpv.compiler.backends import get_backend

    a = next(a for a in built.manifest.artifacts if a.precision == "fp32")
    backend = get_backend("tflite")
    rng = np.random.default_rng(0)
    feeds = {t.name: rng.random([d if isinstance(d, int) else 1 for d in t.shape], dtype=np.float32) * 0.5
             for t in a.inputs}
    feeds = {k: (v.transpose(0, 3, 1, 2) if v.ndim == 4 else v) for k, v in feeds.items()}
    want = backend.runner(built.folder / a.path, get_target("tflite-cpu"))(feeds)
    got = backend.runner(built.folder / a.path, get_target("tflite-cpu"), None, threads=1)(feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5)


def test_fixed_batch_sizes_give_one_artifact_each(tmp_path, monkeypatch):
    batched = get_target("tflite-cpu").model_copy(update={"batch": (1, 4)})
    monkeypatch.setattr(build_mod, "get_target", lambda name: batched)
    result = compile(CompileRequest(target="tflite-cpu", stages=("fire_upscaler",), precisions=("fp32", "int8"),
                                    out=tmp_path, small=True))
    got = {(a.precision, a.batch): a for a in result.manifest.artifacts}
    assert set(got) == {("fp32", 1), ("int8", 1), ("fp32", 4), ("int8", 4)}
    assert got["int8", 4].inputs[0].shape[0] == 4 and got["int8", 4].path == "fire_upscaler.int8.b4.tflite"
    assert got["int8", 4].verification.batches == [4]


def test_keypoint_rasterizer_is_a_cpu_prologue_not_delegate_fallback(built):
    """The in-graph rasterizer's ops (Gather, Exp, BatchMatMul, ...) run before the first learned
    layer: one CPU segment, like an app drawing the pose, listed apart and not counted as fallback."""
    from hpv.compiler.backends import get_backend

    a = next(a for a in built.manifest.artifacts if a.precision == "fp32")
    backend, gpu = get_backend("tflite"), get_target("tflite-gpu")
    keypoints = [t.name for t in a.inputs if t.role == "keypoints"]
    report = backend.delegate_report(built.folder / a.path, gpu, keypoints)
    if not keypoints:
        assert "cpu_prologue_ops" not in report
        assert report == backend.delegate_report(built.folder / a.path, gpu)
        return
    prologue = set(report["cpu_prologue_ops"].split(","))
    assert {"EXP", "BATCH_MATMUL"} <= prologue
    assert not prologue & set(gpu.delegate_ops)
    assert report["fallback_op_count"] <= gpu.max_fallback_ops
    with pytest.raises(DelegateFallbackError, match="EXP"):  # counted as fallback, they would refuse
        backend.delegate_report(built.folder / a.path, gpu)
