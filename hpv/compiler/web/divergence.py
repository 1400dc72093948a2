"""Where a browser execution provider departs from ONNX Runtime's CPU provider: the first node
(in graph order) whose output differs, found by exposing every intermediate float tensor as a graph
output and running both sides on the same inputs.

Exposing intermediates stops the runtimes from fusing across them, so a fault that lives only in a
fused kernel can vanish in the debug model; then the artifact is refused naming the whole model
(`node` None) rather than a node. The CPU provider is the reference because it matches PyTorch to
about 1e-6 on these artifacts (every onnx-cpu build verifies it)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpv.errors import HpvError

# A browser output further than this from the CPU provider's, as a fraction of the output's value
# range, is an EP fault rather than rounding (an int8 kernel's rounding moves an output by about
# 1/255 of its range; the faults seen on WebGPU were off by up to 1.1 of a 2-wide range).
DIVERGENCE_FRACTION = 0.05
# ... at more than a few outputs (the 99.9th percentile of the error), or at any output by more than
# FAR x that: an int8 model's rounding, compounded through its layers, moves a handful of pixels a
# little past the limit (the full-size hand_gen int8 on wasm: max 0.052 against 0.05, measured),
# while an EP fault moves many outputs or some by far (the WebGPU faults: a whole conv's output).
FEW = 0.999
FAR = 4.0


class EPDivergenceError(HpvError):
    """An artifact's outputs on a browser EP depart from ONNX Runtime's CPU provider."""

    def __init__(self, artifact: str, ep: str, node: str | None, op_type: str | None, error: float, limit: float,
                 checked_on: str):
        self.artifact, self.ep, self.node, self.op_type, self.error, self.limit = artifact, ep, node, op_type, error, limit
        where = (f"from node {node!r} ({op_type}) on" if node else
                 "(no single node: the fault is in a fused kernel, or the model as a whole)")
        super().__init__(
            f"{artifact} diverges on onnxruntime-web's {ep} EP {where}: max abs error {error:.3g} against ONNX "
            f"Runtime's CPU provider (limit {limit:.3g}), checked on {checked_on}. The artifact is refused for "
            f"{ep}: build it for onnx-wasm, or work around the op at export (a Conv: set conv_channel_multiple = 4 "
            f"in the target's [options], as onnx-webgpu does, to pad its input channels)")


@dataclass(frozen=True)
class Divergence:
    node: str | None
    op_type: str | None
    error: float  # the largest absolute difference at that node's output
    limit: float = float("nan")  # that output's `limit_for`


def debug_model(path: Path, out: Path) -> list[tuple[str, str, str]]:
    """A copy of the model at `out` whose graph outputs include every node's float outputs;
    returns (tensor, node name, op type) in graph order."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shapes only help; types default to float below
        pass
    types = {vi.name: vi.type.tensor_type.elem_type for vi in list(model.graph.value_info) + list(model.graph.output)}
    have = {o.name for o in model.graph.output}
    order = []
    for i, node in enumerate(model.graph.node):
        for t in node.output:
            if not t or types.get(t, TensorProto.FLOAT) != TensorProto.FLOAT:
                continue
            order.append((t, node.name or f"{node.op_type}_{i}", node.op_type))
            if t not in have:
                model.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
                have.add(t)
    onnx.save(model, str(out))
    return order


def limit_for(reference: np.ndarray) -> float:
    """How far a tensor may be from the CPU provider's: DIVERGENCE_FRACTION of its value range
    (at least of 1, so that rounding of a near-constant tensor is no divergence)."""
    span = float(np.ptp(reference)) if reference.size else 0.0
    return DIVERGENCE_FRACTION * max(span if np.isfinite(span) else 1.0, 1.0)


def diverges(got: np.ndarray, want: np.ndarray) -> bool:
    """Whether `got` (a browser EP's tensor) departs from `want` (the CPU provider's) as a fault
    does, not as rounding: beyond `limit_for` at more than the few outputs FEW leaves out, or
    anywhere by more than FAR x the limit. A NaN or infinity where `want` is finite diverges."""
    if not got.size:
        return False
    err = np.abs(got.astype(np.float64) - want)
    if not np.isfinite(err).all():
        return True
    limit = limit_for(want)
    return bool(err.max() > FAR * limit or np.quantile(err, FEW) > limit)


def first_divergence(path: Path, feeds: dict[str, np.ndarray], run_ep: Callable[[Path, dict], dict]
                     ) -> Divergence | None:
    """The first node whose output on `run_ep` (a browser EP: model path, feeds -> outputs) departs
    from the CPU provider's (`diverges`); None when every intermediate agrees."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="hpv-divergence-") as tmp:
        debug = Path(tmp) / path.name
        order = debug_model(path, debug)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(debug), opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        wanted = {i.name for i in sess.get_inputs()}
        ref = dict(zip(names, sess.run(names, {k: np.ascontiguousarray(v, np.float32) for k, v in feeds.items()
                                                if k in wanted})))
        got = run_ep(debug, feeds)
    for tensor, node, op in order:
        a, b = got.get(tensor), ref.get(tensor)
        if a is None or b is None or a.shape != b.shape:
            continue
        if diverges(a, b):
            return Divergence(node, op, float(np.max(np.abs(a.astype(np.float64) - b))), limit_for(b))
    return None
