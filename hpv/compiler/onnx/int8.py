"""Pass 3b: int8 QDQ with the settings that make ONNX Runtime run the convolutions quantized:
activations QUInt8, weights QInt8 per channel (the S8S8 per-tensor defaults leave most Convs in
float). Calibrated on rendered poses with the recurrent state rolled out."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np


class _Reader:
    def __init__(self, samples: list[dict[str, np.ndarray]]):
        self._it = iter(samples)

    def get_next(self):
        return next(self._it, None)


def _preprocess(src: Path, dst: Path) -> bool:
    """Shape inference + graph cleanup before quantizing. It fails on some dynamic-batch Resize
    graphs and litters the working directory, so run it in a temp dir and tolerate failure."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            os.chdir(tmp)
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
            return True
        except Exception:
            return False
        finally:
            os.chdir(cwd)


class _DropPreprocessAdvice(logging.Filter):
    # quantize_static logs a warning advising pre-processing when it was skipped or failed; the
    # manifest records whether it ran, so the warning is noise on the console.
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


def recurrent_nodes(model, state_inputs: list[str], state_outputs: list[str]) -> list[str]:
    """Names of the nodes on the recurrence: reachable from a state input and leading to a state
    output. They stay in float so quantization error cannot accumulate in the carried state; in
    the small generator they run at 1/8 resolution and cost little."""
    nodes = list(model.graph.node)
    down, frontier = set(state_inputs), True
    while frontier:
        frontier = False
        for n in nodes:
            if any(i in down for i in n.input) and not set(n.output) <= down:
                down.update(n.output)
                frontier = True
    up, frontier = set(state_outputs), True
    while frontier:
        frontier = False
        for n in nodes:
            ins = {i for i in n.input if i}  # '' marks an omitted optional input (Clip without min)
            if any(o in up for o in n.output) and not ins <= up:
                up.update(ins)
                frontier = True
    return [n.name for n in nodes if any(o in down for o in n.output) and any(o in up for o in n.output)]


LEARNED_OPS = ("Conv", "ConvTranspose", "Gemm")
# Only the learned layers run in int8; data movement between them (Concat, Resize, Add) stays in
# float between a DequantizeLinear and the next QuantizeLinear: ONNX Runtime's QLinearConcat and
# uint8 Resize are slower than their float versions (measured: a frame k=1 32 -> see bench).
# ConvTranspose is left out: ONNX Runtime's CPU EP has no int8 kernel for it (a QDQ ConvTranspose
# runs as DequantizeLinear + float ConvTranspose), so quantizing it only costs precision: the
# upscaler's sub-pixel layer reads the image's neighbourhood beside its features, and one int8
# scale for both cost 62 -> 47 dB.
QUANTIZED_OPS = ["Conv", "Gemm", "MatMul"]


def input_only_nodes(model, inputs: list[str]) -> list[str]:
    """Names of the nodes computed from `inputs` (and constants) alone: for a keypoint stage, the
    in-graph rasterizer. They stay in float: int8 steps of a keypoint coordinate would move every
    line of the drawing, and the rasterizer's Gaussians need float range."""
    known = set(inputs) | {t.name for t in model.graph.initializer}
    derived, names = set(inputs), []
    for n in model.graph.node:  # ONNX graphs are topologically sorted
        ins = [i for i in n.input if i]
        if n.op_type in LEARNED_OPS:
            continue  # the network proper starts here: its first layer reads the fields
        if all(i in known for i in ins):
            known.update(n.output)
            if any(i in derived for i in ins):
                derived.update(n.output)
                names.append(n.name)
    return names


def first_layer_convs(model) -> list[str]:
    """Names of the convolutions that read the graph's inputs through no learned op (a Concat or a
    Slice in between is fine): the stage's first layer, however many parallel convs it has."""
    inputs = [i.name for i in model.graph.input]
    derived = set(inputs)
    firsts = []
    for n in model.graph.node:
        if not any(i in derived for i in n.input if i):
            continue
        if n.op_type in LEARNED_OPS:
            firsts.append(n.name)
        else:
            derived.update(n.output)
    return firsts


def to_int8(path: Path, calibration: list[dict[str, np.ndarray]],
            state: list[tuple[str, str]] = (), float_inputs: list[str] = (),
            quantize_first_layer: bool = False) -> dict:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quiet = _DropPreprocessAdvice()
    logging.getLogger().addFilter(quiet)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        preprocessed = _preprocess(path, pre)
        src = pre if preprocessed else path
        import onnx

        model = onnx.load(str(src))
        keep_float = recurrent_nodes(model, [i for i, _ in state], [o for _, o in state]) if state else []
        keep_float += input_only_nodes(model, list(float_inputs)) if float_inputs else []
        # The first convolution of a stage that takes images (a drawn pose of 1-pixel lines, an
        # estimate) stays in float: quantized, the image-input fire_gen fell to 13.9 dB against
        # float (38 dB with it in float), the upscaler from 64 to 55 dB and ran no faster. A keypoint
        # stage's first convolution reads its own smooth fields in [0, 1]: quantized, 45.5 -> 44.2 dB
        # and a frame about 8% faster.
        # A stage whose first layer feeds only a learned residual says so (`quantize_first_layer`).
        first_int8 = bool(float_inputs) or quantize_first_layer
        keep_float += [] if first_int8 else first_layer_convs(model)
        quantize_static(
            str(src), str(path), _Reader(calibration),
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=keep_float, op_types_to_quantize=QUANTIZED_OPS,
            extra_options={"CalibTensorRangeSymmetric": False},
        )
    logging.getLogger().removeFilter(quiet)
    return {"quantization": "QDQ u8 activations / s8 per-channel weights, MinMax",
            "calibration_frames": len(calibration), "preprocessed": preprocessed,
            "float_nodes": f"{len(keep_float)} nodes kept in float (recurrence, keypoint rasterizer"
                           + ("" if first_int8 else "; the first layer") + ")",
            "first_layer": "int8" if first_int8 else "float"}
