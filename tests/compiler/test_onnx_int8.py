"""Which nodes of an int8 ONNX build stay in float, and why (hpv.compiler.onnx.int8)."""

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from hpv.compiler.onnx.int8 import QUANTIZED_OPS, first_layer_convs  # noqa: E402


def graph(nodes, inputs, outputs):
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, None)  # noqa: E731
    return helper.make_model(helper.make_graph(nodes, "g", [vi(i) for i in inputs], [vi(o) for o in outputs]))


def test_first_layer_is_every_conv_reached_without_a_learned_op():
    model = graph([
        helper.make_node("Concat", ["image", "fields"], ["x"], name="cat", axis=1),
        helper.make_node("Conv", ["x", "w1"], ["a"], name="body1"),
        helper.make_node("Conv", ["image", "wn"], ["n"], name="neighbours"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w2"], ["b"], name="body2"),
        helper.make_node("Concat", ["b", "n"], ["y"], name="cat2", axis=1),
    ], ["image", "fields"], ["y"])
    assert first_layer_convs(model) == ["body1", "neighbours"]


def test_conv_transpose_is_not_quantized():
    # ONNX Runtime's CPU EP has no int8 ConvTranspose: a QDQ one runs in float after a dequantize,
    # so quantizing its input only loses precision.
    assert "ConvTranspose" not in QUANTIZED_OPS


def test_int8_upscaler_runs_its_subpixel_layer_on_float_inputs(small_build):
    art = next(a for a in small_build.manifest.artifacts if a.stage == "fire_upscaler" and a.precision == "int8")
    model = onnx.load(str(small_build.folder / art.path))
    producer = {o: n for n in model.graph.node for o in n.output}
    ct = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
    assert ct, "the upscaler's sub-pixel layer is a ConvTranspose"
    for n in ct:
        assert producer[n.input[0]].op_type != "DequantizeLinear"  # its data input is not requantized


def _first_layer_reads_int8(small_build, stage: str) -> list[bool]:
    """For each first-layer conv of the stage's int8 build: whether its input is dequantized int8."""
    art = next(a for a in small_build.manifest.artifacts if a.stage == stage and a.precision == "int8")
    model = onnx.load(str(small_build.folder / art.path))
    producer = {o: n for n in model.graph.node for o in n.output}
    convs = {n.name: n for n in model.graph.node}
    return [n.input[0] in producer and producer[n.input[0]].op_type == "DequantizeLinear"
            for n in (convs[name] for name in first_layer_convs(model))]


@pytest.mark.parametrize("stage, quantized", [("refiner", True), ("fire_upscaler", False)])
def test_first_layer_quantized_only_where_the_stage_allows(small_build, stage, quantized):
    # The refiner's stem feeds only its residual; the upscaler's neighbourhood conv is its linear base.
    from hpv.stages import STAGES

    assert STAGES.get(stage).cls.int8_first_layer is quantized
    reads = _first_layer_reads_int8(small_build, stage)
    assert reads and all(r is quantized for r in reads), reads
