"""Multiply-accumulates per frame of one batch-1 call: convolutions, transposed convolutions, linear
layers and matrix products."""

from __future__ import annotations

import torch

from hpv.stages.base import Stage


@torch.no_grad()
def count_macs(stage: Stage) -> int:
    """From PyTorch's FLOP counter on the aten ops (convolutions, matrix products, the rasterizer's
    batched MatMul included), so functional calls inside a module count too; 2 FLOPs per MAC."""
    from torch.utils.flop_counter import FlopCounterMode

    itf = stage.interface()
    counter = FlopCounterMode(display=False)
    with counter:
        stage(*(torch.zeros(t.concrete_shape(1)) for t in itf.inputs))
    return counter.get_total_flops() // 2
