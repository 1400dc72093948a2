"""A browser EP that departs from ONNX Runtime's CPU provider is refused naming the first
diverging node; one that agrees passes (both outcomes, on the wasm EP and on a faulty stand-in)."""

from pathlib import Path

import numpy as np
import pytest


def _model(path: Path) -> dict:
    """A small conv net (Conv -> Relu -> Conv -> Add) and its inputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(6, 9, 3, 3)).astype(np.float32), rng.normal(size=(3, 6, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["b"], name="relu"),
             helper.make_node("Conv", ["b", "w2"], ["c"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "c"], ["y"], name="double")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 9, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), str(path))
    return {"x": rng.normal(size=(1, 9, 8, 8)).astype(np.float32)}


def _cpu(model: Path, feeds: dict) -> dict:
    import onnxruntime as ort

    s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(names, feeds)))


def test_first_divergence_names_the_faulty_node(tmp_path):
    pytest.importorskip("onnxruntime")
    from hpv.compiler.web.divergence import first_divergence

    path = tmp_path / "m.onnx"
    feeds = _model(path)

    def faulty_ep(model, f):  # conv2 wrong (as 3x3 convs were on SwiftShader); later tensors follow
        out = _cpu(model, f)
        for t in ("c", "y"):
            out[t] = -out[t]
        return out

    found = first_divergence(path, feeds, faulty_ep)
    want = float(2 * np.abs(_cpu(path, feeds)["y"]).max() / 2)
    assert found is not None and found.node == "conv2" and found.op_type == "Conv", found
    assert found.error == pytest.approx(want, rel=1e-5)
    assert first_divergence(path, feeds, _cpu) is None


def test_browser_runner_passes_an_agreeing_ep_and_refuses_a_diverging_one(browser_ready, tmp_path, monkeypatch):
    from hpv.compiler.web import runner as web_runner
    from hpv.compiler.web.divergence import EPDivergenceError

    path = tmp_path / "m.onnx"
    feeds = _model(path)
    run = web_runner.browser_runner(path)  # the wasm EP agrees with the CPU provider
    np.testing.assert_allclose(run(feeds)["y"], _cpu(path, feeds)["y"], atol=1e-4)

    session = web_runner.shared_session()
    real_call = session.call

    def broken_call(model, f):  # the EP computes conv2 wrong: its output and everything after it
        outs, ms = real_call(model, f)
        import onnx

        g = onnx.load(str(model)).graph
        if any(o.name == "c" for o in g.output):
            outs["c"] = -outs["c"]
        outs["y"] = -outs["y"]
        return outs, ms

    monkeypatch.setattr(session, "call", broken_call)
    run = web_runner.browser_runner(path)
    with pytest.raises(EPDivergenceError, match=r"from node 'conv2' \(Conv\)") as e:
        run(feeds)
    assert e.value.ep == "wasm" and "onnxruntime-web" in str(e.value)


def test_rounding_is_no_divergence_but_a_fault_is():
    """int8 rounding moves a few outputs a little past the limit; a fault moves many, or some far."""
    from hpv.compiler.web.divergence import FAR, diverges, limit_for

    want = np.linspace(0.0, 1.0, 100_000, dtype=np.float32).reshape(1, 1, 250, 400)
    limit = limit_for(want)
    assert not diverges(want.copy(), want)
    few = want.copy()
    few.flat[:20] += 1.1 * limit  # 20 of 100,000 outputs just past the limit: rounding
    assert not diverges(few, want)
    many = want.copy()
    many.flat[:1000] += 1.1 * limit  # 1% of the outputs past it
    assert diverges(many, want)
    far = want.copy()
    far.flat[7] += 1.1 * FAR * limit  # one output far off
    assert diverges(far, want)
    nan = want.copy()
    nan.flat[3] = np.nan
    assert diverges(nan, want)
    assert not diverges(np.zeros(0, np.float32), np.zeros(0, np.float32))
