"""Building blocks shared by the stages. Recurrent cells are written out in plain convolutions and
linear layers (no fused LSTM/GRU ops) so that every converter sees ops it supports."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Fire(nn.Module):
    """SqueezeNet's Fire module: 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""

    def __init__(self, in_ch: int, out_ch: int, squeeze: int | None = None):
        super().__init__()
        squeeze = squeeze or max(out_ch // 4, 8)
        e1 = out_ch // 2
        self.squeeze = nn.Conv2d(in_ch, squeeze, 1)
        self.expand1 = nn.Conv2d(squeeze, e1, 1)
        self.expand3 = nn.Conv2d(squeeze, out_ch - e1, 3, padding=1)
        self.act = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._expand(self.act(self.squeeze(x)))

    def _expand(self, s: torch.Tensor) -> torch.Tensor:
        return self.act(torch.cat([self.expand1(s), self.expand3(s)], dim=1))


class UpFire(Fire):
    """`Fire(cat([upsample2x_nearest(low), skip]))`, computed cheaper: the 1x1 squeeze is pointwise,
    so it commutes with nearest upsampling. The low-resolution input is squeezed (`squeeze_low`)
    before it is upsampled, so only `squeeze` channels are upsampled instead of the wide input, and
    nothing is concatenated at the high resolution. A Fire's weights load into it (its squeeze is
    split by input channels)."""

    def __init__(self, low_ch: int, skip_ch: int, out_ch: int, squeeze: int | None = None):
        super().__init__(skip_ch, out_ch, squeeze)
        self.low_ch = low_ch
        self.squeeze_low = nn.Conv2d(low_ch, self.squeeze.out_channels, 1, bias=False)

    def forward(self, low: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.squeeze_low(low), scale_factor=2.0, mode="nearest")
        return self._expand(self.act(up + self.squeeze(skip)))

    def upgrade_state(self, state: dict, prefix: str) -> None:
        """Split a Fire checkpoint's squeeze weight (in place) into this module's two squeezes."""
        w = state.get(prefix + "squeeze.weight")
        if w is not None and prefix + "squeeze_low.weight" not in state and w.shape[1] == self.low_ch + self.squeeze.in_channels:
            state[prefix + "squeeze_low.weight"] = w[:, :self.low_ch].contiguous()
            state[prefix + "squeeze.weight"] = w[:, self.low_ch:].contiguous()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.upgrade_state(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def conv_relu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1), nn.ReLU())


class ConvGRUCell(nn.Module):
    """Convolutional GRU: one state tensor h, bounded in [-1, 1]."""

    def __init__(self, in_ch: int, hidden: int):
        super().__init__()
        self.gates = nn.Conv2d(in_ch + hidden, 2 * hidden, 3, padding=1)
        self.candidate = nn.Conv2d(in_ch + hidden, hidden, 3, padding=1)
        self.hidden = hidden

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        n = torch.tanh(self.candidate(torch.cat([x, r * h], dim=1)))
        return (1 - z) * h + z * n


class LSTMCell(nn.Module):
    """torch.nn.LSTMCell's math (same parameter names), from two Linear layers."""

    def __init__(self, size: int, hidden: int):
        super().__init__()
        self.ih = nn.Linear(size, 4 * hidden)
        self.hh = nn.Linear(hidden, 4 * hidden)

    def forward(self, x, h, c):
        i, f, g, o = (self.ih(x) + self.hh(h)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c
