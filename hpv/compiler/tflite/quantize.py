"""Pass 2: precision with ai-edge-quantizer. fp16: float casting of the weights. int8: static
int8 weights and activations (full integer, int8 inputs and outputs), calibrated on NHWC inputs
from rendered poses with the recurrent state rolled out over real sequences."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpv.compiler.tflite.convert import _quiet

SIGNATURE = "serving_default"


def to_fp16(path: Path) -> dict:
    from ai_edge_quantizer import quantizer, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    rm = recipe_manager.RecipeManager()
    rm.add_weight_only_config(regex=".*", operation_name=TFLOperationName.ALL_SUPPORTED, num_bits=16,
                              algorithm_key=AlgorithmName.FLOAT_CASTING)
    with _quiet():
        qt = quantizer.Quantizer(str(path))
        qt.load_quantization_recipe(rm.get_quantization_recipe())
        qt.quantize().export_model(str(path), overwrite=True)
    return {"quantization": "fp16 weights (float casting), float32 I/O"}


# Ops inside the keypoint rasterizer stay float (their tensors are named after the module's scope):
# an int8 keypoint input would have one scale for x, y (0..512) and confidence (0..1), rounding every
# confidence to 0; the Gaussians need float range. The fields then enter the int8 network.
FLOAT_SCOPES = (".*KeypointRaster.*", ".*_keypoints$")


def float_inputs(path: Path, names: list[str]) -> list[str]:
    """Make the named int8 inputs float32 again: the quantizer gives every graph input an int8
    tensor and a DEQUANTIZE; for these the DEQUANTIZE's float output becomes the input (renamed to
    the input's name, in the subgraph and its signature). Returns the inputs changed."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

    model = fb.read_model(path)
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    from ai_edge_litert import schema_py_generated as schema

    dequant = schema.BuiltinOperator.DEQUANTIZE
    changed = []
    for k, t_in in enumerate(list(graph.inputs)):
        tname = graph.tensors[t_in].name.decode() if isinstance(graph.tensors[t_in].name, bytes) else graph.tensors[t_in].name
        if not any(tname == n or tname.endswith("_" + n) for n in names):
            continue
        op = next((o for o in graph.operators if codes[o.opcodeIndex] == dequant and list(o.inputs) == [t_in]), None)
        if op is None:
            continue
        out = op.outputs[0]
        graph.operators.remove(op)
        graph.inputs[k] = out
        graph.tensors[out].name, graph.tensors[t_in].name = graph.tensors[t_in].name, tname + "_int8_unused"
        for sig in model.signatureDefs or []:
            for item in sig.inputs:
                if item.tensorIndex == t_in:
                    item.tensorIndex = out
        changed.append(tname)
    if changed:
        from hpv.atomic import write_bytes

        write_bytes(path, _serialize(model))
    return changed


def _serialize(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def to_int8(path: Path, calibration: list[dict[str, np.ndarray]], float_names: list[str] = ()) -> dict:
    from ai_edge_quantizer import quantizer, recipe

    rules = recipe.static_wi8_ai8() + [{"regex": r, "operation": "*", "algorithm_key": "no_quantize"}
                                       for r in FLOAT_SCOPES]
    with _quiet():
        qt = quantizer.Quantizer(str(path))
        qt.load_quantization_recipe(rules)
        result = qt.calibrate({SIGNATURE: calibration})
        qt.quantize(result).export_model(str(path), overwrite=True)
    kept = float_inputs(path, list(float_names)) if float_names else []
    return {"quantization": "static int8 weights and activations (ai-edge-quantizer static_wi8_ai8), int8 I/O"
                            + (f"; keypoint rasterizer and its input ({', '.join(kept)}) in float32" if kept else ""),
            "calibration_frames": len(calibration)}
