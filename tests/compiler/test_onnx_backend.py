"""Every registered stage through the ONNX backend in every precision, verified against PyTorch
in ONNX Runtime (small sizes, so CI converts all of them)."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from hpv.compiler.build import CompileRequest, compile  # noqa: E402
from hpv.pipelines import PIPELINES  # noqa: E402
from hpv.stages import STAGES  # noqa: E402

CASES = [  # (target, precisions): fp32 and int8 on CPU, fp16 for the browser
    ("onnx-cpu", ("fp32", "int8")),
    ("onnx-webgpu", ("fp16",)),
]


def test_every_stage_belongs_to_a_pipeline():
    in_pipelines = {r.stage for p in PIPELINES for r in PIPELINES.get(p).stages}
    assert set(STAGES.names()) <= in_pipelines


@pytest.mark.parametrize("target, precisions", CASES)
@pytest.mark.parametrize("name", STAGES.names())
def test_stage_exports_and_matches_pytorch(tmp_path, name, target, precisions):
    result = compile(CompileRequest(target=target, stages=(name,), precisions=precisions,
                                    out=tmp_path, small=True))
    arts = result.manifest.artifacts
    assert [a.precision for a in arts] == list(precisions)
    for a in arts:
        v = a.verification
        assert v.checked_on == "onnxruntime-cpu"
        assert v.psnr_db >= v.tolerance.min_psnr_db
        if a.precision == "fp32":
            assert v.max_abs_error < 1e-4
        model = onnx.load(str(result.folder / a.path))
        onnx.checker.check_model(model)
        assert model.opset_import[0].version == 18
        ops = {n.op_type for n in model.graph.node}
        inits = {i.data_type for i in model.graph.initializer}
        if a.precision == "int8":
            assert {"QuantizeLinear", "DequantizeLinear"} <= ops
            assert onnx.TensorProto.INT8 in inits  # weights stored as int8
        if a.precision == "fp16":
            assert onnx.TensorProto.FLOAT16 in inits
        # dynamic batch, float32 I/O as declared
        assert all(t.shape[0] == "batch" and t.dtype == "float32" for t in a.inputs + a.outputs)


def test_int8_runs_convolutions_quantized(small_build):
    """The QDQ settings must let ORT fuse Conv into QLinearConv, or int8 gains nothing."""
    import onnxruntime as ort

    art = next(a for a in small_build.manifest.artifacts if a.stage == "fire_gen" and a.precision == "int8")
    opts = ort.SessionOptions()
    optimized = small_build.folder.parent / "optimized.onnx"
    opts.optimized_model_filepath = str(optimized)
    ort.InferenceSession(str(small_build.folder / art.path), opts, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(optimized)).graph.node]
    assert ops.count("QLinearConv") >= ops.count("Conv") + ops.count("FusedConv")
    assert ops.count("QLinearConv") > 0


def test_fp16_state_outputs_are_detached():
    from onnx import TensorProto, helper

    from hpv.compiler.onnx.fp16 import detach_consumed_outputs

    node_a = helper.make_node("Relu", ["x"], ["h"])
    node_b = helper.make_node("Neg", ["h"], ["y"])
    graph = helper.make_graph(
        [node_a, node_b], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, [1]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    assert detach_consumed_outputs(model) == 1
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    assert producers["h"] == "Identity" and producers["y"] == "Neg"


def test_verification_catches_a_wrong_artifact():
    from hpv.compiler.verify import verify
    from hpv.errors import VerificationError
    from hpv.stages import build_stage
    from hpv.targets import Tolerance

    stage = build_stage("refiner", STAGES.get("refiner").small)
    itf = stage.interface()
    rng = np.random.default_rng(0)
    samples = [{t.name: rng.uniform(-1, 1, t.concrete_shape(1)).astype(np.float32) for t in itf.inputs}
               for _ in range(3)]

    def wrong(feeds):  # returns the estimate unchanged: not what the stage computes
        return {"refined": feeds["estimate"] + 0.3}

    with pytest.raises(VerificationError) as e:
        verify(stage, wrong, samples, artifact="refiner.bad", checked_on="test",
               tolerance=Tolerance(min_psnr_db=30.0), inputs="random")
    assert e.value.metric == "psnr_db" and e.value.measured < 30.0
    assert "required >= 30" in str(e.value)


def test_int8_keeps_the_keypoint_rasterizer_in_float(small_build):
    """No QDQ pair inside the rasterizer: its MatMul and Exps read float tensors computed from the
    keypoints alone."""
    art = next(a for a in small_build.manifest.artifacts if a.stage == "fire_gen" and a.precision == "int8")
    model = onnx.load(str(small_build.folder / art.path))
    made_by = {o: n.op_type for n in model.graph.node for o in n.output}
    raster = [n for n in model.graph.node if n.op_type in ("MatMul", "Exp")]
    assert raster
    for n in raster:
        assert all(made_by.get(i) != "DequantizeLinear" for i in n.input), n.name


def test_recurrent_nodes_ends_on_omitted_optional_inputs():
    """A Clip with only a max ('' for its min input) on the recurrence once made the walk loop forever."""
    import onnx
    from onnx import TensorProto, helper

    from hpv.compiler.onnx.int8 import recurrent_nodes

    f = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ("h_in", "h_out")]
    top = helper.make_tensor("top", TensorProto.FLOAT, [], [1.0])
    graph = helper.make_graph([
        helper.make_node("Relu", ["h_in"], ["a"], name="relu"),
        helper.make_node("Clip", ["a", "", "top"], ["h_out"], name="clip"),
    ], "g", [f[0]], [f[1]], [top])
    assert recurrent_nodes(helper.make_model(graph), ["h_in"], ["h_out"]) == ["relu", "clip"]
