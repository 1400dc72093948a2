"""Pass 3a: float16 weights and compute, float32 I/O (ONNX Runtime's converter; the one in
onnxconverter-common casts around Resize with the wrong type and the model does not load).

A float16 converter can give a graph output that is also consumed inside the graph (a recurrent
state: h_out feeds the rest of the network) the wrong type. Routing each such output through an
Identity node first makes the output a leaf, which converts correctly."""

from __future__ import annotations

from pathlib import Path


def detach_consumed_outputs(model) -> int:
    from onnx import helper

    graph = model.graph
    consumed = {i for node in graph.node for i in node.input}
    fixed = 0
    for out in graph.output:
        if out.name not in consumed:
            continue
        inner = f"{out.name}__inner"
        for node in graph.node:
            node.output[:] = [inner if o == out.name else o for o in node.output]
            node.input[:] = [inner if i == out.name else i for i in node.input]
        graph.node.append(helper.make_node("Identity", [inner], [out.name], name=f"{out.name}__leaf"))
        fixed += 1
    return fixed


def topological_sort(graph) -> None:
    """Reorder nodes so each comes after its inputs' producers (the converter appends its Casts at
    the end; ONNX Runtime tolerates that, the ONNX checker and other runtimes do not)."""
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise ValueError(f"graph has a cycle or a dangling input near node {pending[0].name!r}")
        for n in ready:
            known.update(n.output)
        ordered += ready
        taken = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in taken]
    del graph.node[:]
    graph.node.extend(ordered)


def to_fp16(path: Path) -> dict:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(path))
    fixed = detach_consumed_outputs(model)
    model = convert_float_to_float16(model, keep_io_types=True)
    topological_sort(model.graph)
    onnx.save(model, str(path))
    return {"fp16_io": "float32", "state_outputs_detached": fixed}
