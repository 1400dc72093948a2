"""Pass 1: litert-torch conversion with channel-last (NHWC) named inputs and outputs, as Android
apps feed images, at one fixed batch size (litert-torch's dynamic batch did not convert)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from hpv.errors import ExportError
from hpv.stages import Stage, StageInterface, TensorSpec


def channel_last(spec: TensorSpec) -> bool:
    return len(spec.shape) == 4


def nhwc_shape(spec: TensorSpec, batch: int) -> tuple[int, ...]:
    shape = spec.concrete_shape(batch)
    return (shape[0], *shape[2:], shape[1]) if channel_last(spec) else shape


class ChannelLastStage(nn.Module):
    """The stage with NHWC image/state tensors and named outputs (a dict), for the converter."""

    def __init__(self, stage: Stage):
        super().__init__()
        self.stage = stage
        self.itf: StageInterface = stage.interface()

    def forward(self, **inputs):
        args = [inputs[t.name].permute(0, 3, 1, 2) if channel_last(t) else inputs[t.name] for t in self.itf.inputs]
        outs = self.stage(*args)
        return {t.name: o.permute(0, 2, 3, 1) if channel_last(t) else o for t, o in zip(self.itf.outputs, outs)}


@contextlib.contextmanager
def _quiet():
    """litert-torch prints a progress line per pass and TF/absl log lines: keep the build's output readable."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.getLogger("absl").setLevel(logging.ERROR)
        yield


def convert_tflite(stage: Stage, batch: int, path: Path) -> None:
    import litert_torch

    itf = stage.interface()
    sample = {t.name: torch.zeros(nhwc_shape(t, batch)) for t in itf.inputs}
    try:
        with _quiet():
            edge = litert_torch.convert(ChannelLastStage(stage).eval(), sample_kwargs=sample)
            edge.export(str(path))
    except Exception as e:  # the converter raises many types; name the stage and the cause
        raise ExportError(f"stage {stage.name!r} ({stage.tag}) failed to convert to LiteRT: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
