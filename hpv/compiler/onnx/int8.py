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


def to_int8(path: Path, calibration: list[dict[str, np.ndarray]]) -> dict:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quiet = _DropPreprocessAdvice()
    logging.getLogger().addFilter(quiet)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        preprocessed = _preprocess(path, pre)
        src = pre if preprocessed else path
        quantize_static(
            str(src), str(path), _Reader(calibration),
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"CalibTensorRangeSymmetric": False},
        )
    logging.getLogger().removeFilter(quiet)
    return {"quantization": "QDQ u8 activations / s8 per-channel weights, MinMax",
            "calibration_frames": len(calibration), "preprocessed": preprocessed}
