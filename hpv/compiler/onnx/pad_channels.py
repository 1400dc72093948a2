"""Pass 3 (a target option, `conv_channel_multiple`): pad the input channels of spatial
convolutions to a multiple of N with zeros, an export-time workaround for an execution provider
that computes some channel counts wrong.

Measured here (onnxruntime-web 1.30's WebGPU EP on Chromium's SwiftShader adapter, a 3x3 Conv to 16
channels at 16x16 against ONNX Runtime's CPU provider): input channel counts 6, 9, 18 and 33 come
out wrong by 6 to 17 (the refiner's first conv has 9 inputs, the part generators' 18); 1-5, 7, 8,
10, 12, 16, 24, 28, 32, 48 are right to 1e-5, and so is every count padded to a multiple of 4;
1x1 convolutions are right at every count. Whether the fault is the EP's or SwiftShader's cannot be
told here, so the onnx-webgpu target pads (its spec's `[options]`) and the build verifies the
result on the EP like any artifact.

The padded graph computes the same function: a Pad node appends zero channels to the conv's input
and the weight gets zero input channels to match, so every output is the same sum plus zeros."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpv.errors import ConfigError


def channel_multiple(options: dict) -> int | None:
    """The target's `conv_channel_multiple` option: None when unset, else an integer >= 2."""
    return integer_option(options, "conv_channel_multiple",
                          "the multiple of input channels every spatial convolution is padded to")


def integer_option(options: dict, name: str, meaning: str) -> int | None:
    """A target option that must be an integer >= 2 (`meaning` says what it is): None when unset."""
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or int(value) < 2:
        raise ConfigError(f"target option {name} = {value!r}: write an integer >= 2 ({meaning})")
    return int(value)


def pad_conv_channels(path: Path, multiple: int) -> int:
    """Pad, in place, every spatial Conv (kernel larger than 1x1, one group, its weight an
    initializer) whose input channel count is not a multiple of `multiple`; returns how many."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    nodes, padded = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = inits.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if weight is None or attrs.get("group", 1) != 1 or len(weight.dims) != 4:
            nodes.append(node)
            continue
        cout, cin, kh, kw = weight.dims
        extra = -cin % multiple
        if kh * kw == 1 or extra == 0:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weight)
        wide = np.concatenate([w, np.zeros((cout, extra, kh, kw), w.dtype)], axis=1)
        name = f"{node.name or node.output[0]}_padded"
        graph.initializer.append(numpy_helper.from_array(wide, f"{name}_weight"))
        graph.initializer.append(numpy_helper.from_array(np.array([0, 0, 0, 0, 0, extra, 0, 0], np.int64),
                                                         f"{name}_pads"))
        nodes.append(helper.make_node("Pad", [node.input[0], f"{name}_pads"], [f"{name}_input"], name=f"{name}_pad"))
        node.input[0], node.input[1] = f"{name}_input", f"{name}_weight"
        nodes.append(node)
        padded += 1
    if padded:
        del graph.node[:]
        graph.node.extend(nodes)
        used = {i for n in graph.node for i in n.input}
        keep = [t for t in graph.initializer if t.name in used]  # weights no node reads any more
        del graph.initializer[:]
        graph.initializer.extend(keep)
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return padded
