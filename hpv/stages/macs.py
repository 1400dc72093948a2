"""Multiply-accumulates per frame, counted from the layers that do the work (conv, transposed
conv, linear) with forward hooks on one batch-1 call."""

from __future__ import annotations

import torch
from torch import nn

from hpv.stages.base import Stage


@torch.no_grad()
def count_macs(stage: Stage) -> int:
    total = 0

    def conv(m: nn.Conv2d, _inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += out.numel() * k

    def conv_t(m: nn.ConvTranspose2d, inp, _out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.out_channels // m.groups)
        total += inp[0].numel() * k

    def linear(m: nn.Linear, _inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    def raster(m, _inp, out):
        nonlocal total
        total += m.macs() * out.shape[0]

    from hpv.stages.raster import KeypointRaster

    hooks = []
    for m in stage.modules():
        if isinstance(m, KeypointRaster):
            hooks.append(m.register_forward_hook(raster))
        fn = {nn.Conv2d: conv, nn.ConvTranspose2d: conv_t, nn.Linear: linear}.get(type(m))
        if fn:
            hooks.append(m.register_forward_hook(fn))
    try:
        itf = stage.interface()
        stage(*(torch.zeros(t.concrete_shape(1)) for t in itf.inputs))
    finally:
        for h in hooks:
            h.remove()
    return total
