"""Pass 1: torch.export -> ONNX with the new exporter at opset 18, batch dimension dynamic."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

from hpv.errors import ExportError
from hpv.stages import Stage

MAX_BATCH = 64


def export_onnx(stage: Stage, path: Path, opset: int) -> None:
    itf = stage.interface()
    # Example batch 2: torch.export specializes a dimension of size 1.
    args = tuple(torch.zeros(t.concrete_shape(2)) for t in itf.inputs)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    dynamic = {t.name: {0: batch} for t in itf.inputs}
    # The exporter logs a warning per missing torchvision op on every call: not ours to act on.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                stage, args, dynamo=True, opset_version=opset, input_names=itf.input_names,
                output_names=itf.output_names, dynamic_shapes=dynamic, verbose=False, report=False,
            )
            program.save(str(path))
    except Exception as e:  # the exporter raises many types; name the stage and the cause
        raise ExportError(f"stage {stage.name!r} ({stage.tag}) failed to export to ONNX opset {opset}: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
