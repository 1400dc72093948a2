"""The conv channel padding pass (hpv.compiler.onnx.pad_channels): the same function, only the
spatial single-group convs whose input channel count is off the multiple are padded, and the target
option is checked."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hpv.compiler.onnx.pad_channels import channel_multiple, pad_conv_channels  # noqa: E402
from hpv.errors import ConfigError  # noqa: E402


def _model(path, cin: int = 9):
    """x [1, cin, 8, 8] -> 3x3 conv (cin -> 6) -> 3x3 conv (6 -> 4, shared weight-free input) ->
    1x1 conv (4 -> 5) and a grouped 3x3 conv (6 -> 6, groups 3) beside it."""
    rng = np.random.default_rng(0)
    w = lambda *s: numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), f"w{len(inits)}")  # noqa: E731
    inits = []
    for shape in [(6, cin, 3, 3), (4, 6, 3, 3), (5, 4, 1, 1), (6, 2, 3, 3)]:
        inits.append(w(*shape))
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1] * 4, name="c0"),
             helper.make_node("Conv", ["a", "w1"], ["b"], pads=[1] * 4, name="c1"),
             helper.make_node("Conv", ["b", "w2"], ["y"], name="c2"),
             helper.make_node("Conv", ["a", "w3"], ["z"], pads=[1] * 4, group=3, name="c3")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 8, 8]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 6, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})


def test_padding_keeps_the_function_and_touches_only_spatial_single_group_convs(tmp_path):
    path = _model(tmp_path / "m.onnx")
    x = np.random.default_rng(1).standard_normal((1, 9, 8, 8)).astype(np.float32)
    before = _run(path, x)
    assert pad_conv_channels(path, 4) == 2  # c0 (9 in) and c1 (6 in); not the 1x1, not the grouped
    model = onnx.load(str(path))
    convs = {n.name: n for n in model.graph.node if n.op_type == "Conv"}
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    assert shapes[convs["c0"].input[1]][1] == 12 and shapes[convs["c1"].input[1]][1] == 8
    assert shapes[convs["c2"].input[1]] == [5, 4, 1, 1] and shapes[convs["c3"].input[1]] == [6, 2, 3, 3]
    assert sum(n.op_type == "Pad" for n in model.graph.node) == 2
    assert not {"w0", "w1"} & set(shapes)  # the unpadded weights are gone
    for a, b in zip(_run(path, x), before, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert pad_conv_channels(path, 4) == 0  # already a multiple: nothing more


def test_a_model_on_the_multiple_is_left_as_it_is(tmp_path):
    path = _model(tmp_path / "m.onnx", cin=8)
    data = path.read_bytes()
    assert pad_conv_channels(path, 2) == 0
    assert path.read_bytes() == data


@pytest.mark.parametrize("value, want", [(None, None), (4, 4), (8.0, 8)])
def test_the_option(value, want):
    assert channel_multiple({} if value is None else {"conv_channel_multiple": value}) == want


@pytest.mark.parametrize("value", [1, 0, -4, 2.5, True, "4"])
def test_a_bad_option_says_what_to_write(value):
    with pytest.raises(ConfigError, match="integer >= 2"):
        channel_multiple({"conv_channel_multiple": value})
