"""The conv block padding pass (hpv.compiler.onnx.pad_blocks): Fire modules' expands padded to whole
channel blocks where what reads them can take it, the same function after, and the target option
checked."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import numpy_helper  # noqa: E402

from hpv.compiler.onnx.pad_blocks import conv_block, pad_conv_blocks  # noqa: E402
from hpv.errors import ConfigError  # noqa: E402
from hpv.stages.blocks import Fire, UpFire  # noqa: E402


class Net(torch.nn.Module):
    """A stem, a Fire (expands 12 + 12: padded), a strided conv down and an UpFire back (its skip
    squeeze reads the padded Fire, its expands 12 + 12 padded), a head; beside it a Fire whose
    output is a graph output, one read by a Split and one with expands 8 + 8 (2x: not worth it)."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.fire = Fire(16, 24)
        self.down = torch.nn.Conv2d(24, 32, 3, stride=2, padding=1)
        self.up = UpFire(32, 24, 24)
        self.head = torch.nn.Conv2d(24, 3, 3, padding=1)
        self.out_fire = Fire(16, 24)
        self.split_fire = Fire(16, 24)
        self.split_convs = torch.nn.ModuleList([torch.nn.Conv2d(12, 4, 1), torch.nn.Conv2d(12, 4, 1)])
        self.narrow = Fire(16, 16)
        self.narrow_head = torch.nn.Conv2d(16, 2, 1)

    def forward(self, x):
        s = torch.relu(self.stem(x))
        f = self.fire(s)
        y = self.head(self.up(torch.relu(self.down(f)), f))
        a, b = self.split_fire(s).chunk(2, dim=1)
        split = self.split_convs[0](a) + self.split_convs[1](b)
        return y, self.out_fire(s), split, self.narrow_head(self.narrow(s))


def _export(path):
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(1, 3, 16, 16)
    torch.onnx.export(net, (x,), str(path), input_names=["x"], output_names=["y", "fire_out", "split", "narrow"],
                      opset_version=18, dynamo=False)
    return path


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})


def _conv_filters(path) -> dict[str, int]:
    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    return {n.output[0]: numpy_helper.to_array(inits[n.input[1]]).shape[0] for n in model.graph.node
            if n.op_type == "Conv"}


def test_the_padded_graph_computes_the_same(tmp_path):
    path = _export(tmp_path / "net.onnx")
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    before, filters = _run(path, x), _conv_filters(path)
    assert pad_conv_blocks(path, 16) == 4  # the Fire's two expands and the UpFire's two
    after = _conv_filters(path)
    padded = {name for name in after if after[name] != filters[name]}
    assert len(padded) == 4 and all(after[name] == 16 and filters[name] == 12 for name in padded)
    for a, b in zip(_run(path, x), before, strict=True):
        assert a.shape == b.shape and np.isfinite(a).all()
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert pad_conv_blocks(path, 16) == 0  # whole blocks already: nothing more


def test_padding_that_would_reach_an_output_or_a_split_or_cost_too_much_is_not_done(tmp_path):
    """Only the main path's Fires are padded: the graph output, the Split and the 8 + 8 expands
    (16 + 16 would double them) keep their filters, and so does every squeeze."""
    path = _export(tmp_path / "net.onnx")
    filters = _conv_filters(path)
    pad_conv_blocks(path, 16)
    after = _conv_filters(path)
    assert sum(after[name] != filters[name] for name in after) == 4
    assert list(filters.values()).count(12) == 8 and list(after.values()).count(12) == 4  # the side Fires'
    assert list(after.values()).count(8) == list(filters.values()).count(8)  # squeezes, narrow expands
    assert pad_conv_blocks(path, 16, most=1.0) == 0  # no padding allowed at all


def test_a_real_stage_keeps_its_outputs(tmp_path):
    """The small fire_gen (in-graph rasterizer, GRU state, UpFires) through export, simplify and the
    pass: every output the same."""
    from hpv.compiler.onnx.export import export_onnx
    from hpv.stages.base import STAGES, build_stage

    stage = build_stage("fire_gen", STAGES.get("fire_gen").small).eval()
    path = tmp_path / "fire_gen.onnx"
    export_onnx(stage, path, 18)
    rng = np.random.default_rng(2)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        feeds[i.name] = rng.uniform(0, 1, shape).astype(np.float32)
        if i.name == "keypoints":
            feeds[i.name][..., :2] *= 512
    before = session.run(None, feeds)
    assert pad_conv_blocks(path, 16) == 4  # the small stage's 12 + 12 expands (at 1/4 and after its GRU)
    after = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    for a, b in zip(after, before, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("value, want", [(None, None), (16, 16), (8.0, 8)])
def test_the_option(value, want):
    assert conv_block({} if value is None else {"conv_block": value}) == want


@pytest.mark.parametrize("value", [1, 0, -16, 2.5, True, "16"])
def test_a_bad_option_says_what_to_write(value):
    with pytest.raises(ConfigError, match="conv_block.*integer >= 2"):
        conv_block({"conv_block": value})
