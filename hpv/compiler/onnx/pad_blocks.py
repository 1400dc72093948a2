"""Pass 4 (a target option, `conv_block`): pad the output channels of convolutions to whole blocks
of ONNX Runtime's NCHWc layout, where what reads them lets the padding through unchanged.

ONNX Runtime's CPU provider runs convolutions in a blocked layout (NCHWc: 16 channels a block with
AVX-512, 8 with AVX2) and keeps a tensor in it from one Conv to the next only when its channels fill
whole blocks. A Fire module's expands (12 + 12, 24 + 24, 72 + 72 channels in the stages) and its
squeezes (8, 12) do not, so ORT converts each of them back to NCHW and the next Conv's input forward
again, and runs their Concats in NCHW: 24 ReorderInput/ReorderOutput nodes in fire_gen alone.
`bench/fire_channels.py` measured Fire modules padded to whole blocks in 0.70-0.92 of the time
despite up to 1.33x the multiply-adds.

The padded graph computes the same function. A padded Conv gets zero filters and zero biases, so
its extra channels are 0; they flow through channel-wise ops (Relu, Sigmoid, Resize, ...: an extra
channel's value may change, it stays finite), into Concats (the padded layout is carried along) and
into Adds of two tensors padded the same way, and every Conv that reads them gets zero input
weights for them, so its sums are unchanged. A Conv is padded only if every path from it ends in
such a Conv: one that reaches anything else (a graph output, a Split, a Reshape, an Add of
differently laid-out tensors) stays as it is, and so does every Conv joined to it. Which Convs are
worth it: those a Concat reads, when the padding adds at most a third of their filters (`MOST`).

For ONNX Runtime's CPU provider only: other runtimes (the browser's wasm, LiteRT, Core ML) have no
such layout and would only do the extra multiply-adds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpv.compiler.onnx.pad_channels import integer_option

# Ops that work channel by channel on their first input and keep its channel count: the padded
# layout passes through them (their other inputs, when any, are scalars: checked below).
CHANNELWISE = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Identity", "Elu", "HardSigmoid",
               "HardSwish", "Softplus", "Abs", "Neg", "Resize", "Upsample", "MaxPool", "AveragePool"}
BINARY = {"Add", "Sub", "Mul", "Div"}
# A Conv is padded only if its output goes into a Concat (ORT keeps a Concat in the blocked layout
# only when every input fills whole blocks) and the padding adds at most this share of its filters.
# Measured (fp32, 2 threads): fire_gen 0.96 and the refiner 0.94 of their time this way; padding
# every Conv as well (the squeezes, 8 -> 16) was 0.96 and 0.99, and the face generator's 8 + 8
# expands padded to 16 + 16 made it 1.04-1.07 of its time.
MOST = 4 / 3


def conv_block(options: dict) -> int | None:
    """The target's `conv_block` option: None when unset, else an integer >= 2."""
    return integer_option(options, "conv_block", "the channel block that convolutions feeding a Concat are padded "
                          "to: 16 for ONNX Runtime's NCHWc layout with AVX-512, 8 with AVX2")


def pad_conv_blocks(path: Path, block: int, most: float = MOST) -> int:
    """Pad, in place, the output channels of the Convs (one group, their weights initializers) that
    feed a Concat to a multiple of `block`, where that adds at most `most` - 1 of their filters
    and the padding can be absorbed downstream (see the module's docstring); returns how many
    Convs were padded."""
    import onnx
    from onnx import numpy_helper

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    channels = _channel_counts(graph)
    convs = {n.output[0]: n for n in graph.node if _plain_conv(n, inits)}
    concatenated = {i for n in graph.node if n.op_type == "Concat" for i in n.input}
    candidates = {out for out, n in convs.items() if out in concatenated
                  and 0 < -inits[n.input[1]].dims[0] % block <= (most - 1) * inits[n.input[1]].dims[0] + 1e-9}
    while True:
        layouts, blocked = _propagate(graph, inits, channels, convs, candidates, block)
        if not blocked:
            break
        candidates -= blocked
    if not candidates:
        return 0
    readers = {}  # Conv node name -> the padded layout of its input
    for node in graph.node:
        if node.output[0] in convs and node.input[0] in layouts:
            readers[id(node)] = layouts[node.input[0]][0]
    for node in graph.node:
        if node.output[0] not in convs or (node.output[0] not in candidates and id(node) not in readers):
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if id(node) in readers:  # zero input weights for the padded channels it reads
            layout = np.array(readers[id(node)])
            wide = np.zeros((w.shape[0], len(layout), *w.shape[2:]), w.dtype)
            wide[:, layout >= 0] = w[:, layout[layout >= 0]]
            w = wide
        name = node.output[0]
        if name in candidates:  # zero filters (and zero biases) up to a whole block
            extra = -w.shape[0] % block
            w = np.concatenate([w, np.zeros((extra, *w.shape[1:]), w.dtype)])
            if len(node.input) > 2 and node.input[2]:
                b = numpy_helper.to_array(inits[node.input[2]])
                graph.initializer.append(numpy_helper.from_array(np.concatenate([b, np.zeros(extra, b.dtype)]),
                                                                 f"{name}_blocked_bias"))
                node.input[2] = f"{name}_blocked_bias"
        graph.initializer.append(numpy_helper.from_array(w, f"{name}_blocked_weight"))
        node.input[1] = f"{name}_blocked_weight"
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.value_info[:]  # shapes inferred before the padding: stale
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return len(candidates)


def _plain_conv(node, inits) -> bool:
    from onnx import helper

    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
        return False
    if len(node.input) > 2 and node.input[2] and node.input[2] not in inits:
        return False
    group = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "group"), 1)
    return group == 1 and len(inits[node.input[1]].dims) == 4


def _channel_counts(graph) -> dict[str, int]:
    """Dimension 1 of every tensor whose shape inference gave it, by name."""
    counts = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if len(dims) >= 2 and dims[1].HasField("dim_value"):
            counts[vi.name] = dims[1].dim_value
    for t in graph.initializer:
        if len(t.dims) >= 2:
            counts[t.name] = t.dims[1]
    return counts


def _propagate(graph, inits, channels, convs, candidates, block):
    """Layouts of the tensors that carry padded channels (name -> (layout, sources): layout[i] is
    the unpadded channel at padded position i or -1; sources are the padded Convs behind it), and
    the candidates that reach something that cannot take them."""
    from onnx import helper

    layouts: dict[str, tuple[list[int], frozenset]] = {}
    blocked: set[str] = set()
    outputs = {g.name for g in graph.output}
    for node in graph.node:
        ins = [i for i in node.input if i in layouts]
        out = node.output[0] if node.output else None
        if node.op_type == "Conv" and out in convs:
            for i in node.input[1:]:  # padded weights or bias: not ours
                if i in layouts:
                    blocked |= layouts[i][1]
            if out in candidates:
                c = inits[node.input[1]].dims[0]
                layouts[out] = (list(range(c)) + [-1] * (-c % block), frozenset({out}))
                if out in outputs:
                    blocked.add(out)
            continue
        if not ins:
            continue
        sources = frozenset().union(*(layouts[i][1] for i in ins))
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ok, layout = False, None
        if node.op_type in CHANNELWISE and ins == [node.input[0]] and len(node.output) == 1:
            ok, layout = _channelwise_ok(node, inits), layouts[ins[0]][0]
        elif node.op_type in BINARY and len(node.output) == 1:
            a, b = node.input[0], node.input[1]
            if a in layouts and b in layouts:
                ok, layout = layouts[a][0] == layouts[b][0], layouts[a][0]
            else:
                other = b if a in layouts else a
                ok = other in inits and int(np.prod(inits[other].dims)) == 1
                layout = layouts[ins[0]][0]
        elif node.op_type == "Concat" and attrs.get("axis") in (1, -3):
            layout, offset, ok = [], 0, True
            for i in node.input:
                if i in layouts:
                    part = layouts[i][0]
                    layout += [-1 if j < 0 else j + offset for j in part]
                    offset += sum(j >= 0 for j in part)
                elif i in channels:
                    layout += list(range(offset, offset + channels[i]))
                    offset += channels[i]
                else:
                    ok = False
        if ok and not any(o in outputs for o in node.output):
            layouts[out] = (layout, sources)
        else:
            blocked |= sources
    return layouts, blocked


def _channelwise_ok(node, inits) -> bool:
    """A channel-wise op's extra inputs (Clip's bounds, Resize's scales) leave channels alone."""
    if node.op_type == "Clip":
        return all(not i or (i in inits and int(np.prod(inits[i].dims)) <= 1) for i in node.input[1:])
    if node.op_type in ("Resize", "Upsample"):
        from onnx import numpy_helper

        scales = node.input[2] if node.op_type == "Resize" and len(node.input) > 2 else (
            node.input[1] if node.op_type == "Upsample" else "")
        sizes = node.input[3] if node.op_type == "Resize" and len(node.input) > 3 else ""
        if sizes or scales not in inits:
            return False
        s = numpy_helper.to_array(inits[scales])
        return s.size >= 2 and s[0] == 1 and s[1] == 1
    return len([i for i in node.input if i]) == 1
