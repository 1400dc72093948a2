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


def to_int8(path: Path, calibration: list[dict[str, np.ndarray]]) -> dict:
    from ai_edge_quantizer import quantizer, recipe

    with _quiet():
        qt = quantizer.Quantizer(str(path))
        qt.load_quantization_recipe(recipe.static_wi8_ai8())
        result = qt.calibrate({SIGNATURE: calibration})
        qt.quantize(result).export_model(str(path), overwrite=True)
    return {"quantization": "static int8 weights and activations (ai-edge-quantizer static_wi8_ai8), int8 I/O",
            "calibration_frames": len(calibration)}
