"""The in-graph keypoint rasterizer: keypoints [B, 178, 3] -> part fields [B, C, R, R] in [0, 1].

The first module of the keypoint generator (which hands its fields to the later stages), so training
and every runtime see the same conditioning by construction. Gathers, elementwise arithmetic, Exp and one batched MatMul: ops that ONNX, LiteRT and
Core ML all run. `hpv.pose.fields` holds the field definitions and the NumPy reference."""

from __future__ import annotations

import torch
from torch import nn

from hpv.pose.fields import EXP_FLOOR, FIELD_GROUPS, FRAME, SQRT_2PI, FieldGroup, splat_table


class KeypointRaster(nn.Module):
    def __init__(self, resolution: int, groups: tuple[FieldGroup, ...] = FIELD_GROUPS):
        super().__init__()
        depths = [g.depth for g in groups]
        if depths != sorted(depths):
            raise ValueError("field groups must be ordered nearest first (by depth)")
        ia, ib, t, valid, n, sigma = splat_table(resolution, groups)
        self.resolution, self.channels, self.points = resolution, ia.shape[0], ia.shape[1]
        self.register_buffer("ia", torch.from_numpy(ia.reshape(-1)), persistent=False)
        self.register_buffer("ib", torch.from_numpy(ib.reshape(-1)), persistent=False)
        self.register_buffer("t", torch.from_numpy(t), persistent=False)
        self.register_buffer("valid", torch.from_numpy(valid), persistent=False)
        self.register_buffer("inv_span", torch.from_numpy(1.0 / ((n - 1) * SQRT_2PI * sigma))[:, None], persistent=False)
        self.register_buffer("inv_n", torch.from_numpy(1.0 / n)[:, None], persistent=False)
        self.register_buffer("inv_2s2", torch.from_numpy(1.0 / (2.0 * sigma**2))[:, None, None], persistent=False)
        self.register_buffer("grid", torch.arange(resolution, dtype=torch.float32), persistent=False)
        # Depth layers as contiguous channel ranges: [(start, stop)] nearest first.
        self.layers = [(depths.index(d), len(depths) - depths[::-1].index(d)) for d in sorted(set(depths))]

    def forward(self, kp: torch.Tensor) -> torch.Tensor:
        B, C, P = kp.shape[0], self.channels, self.points
        pa = kp.index_select(1, self.ia).reshape(B, C, P, 3)
        pb = kp.index_select(1, self.ib).reshape(B, C, P, 3)
        on = (pa[..., 2] > 0).to(kp.dtype) * (pb[..., 2] > 0).to(kp.dtype) * self.valid
        s = self.resolution / FRAME
        ax, ay = pa[..., 0] * s - 0.5, pa[..., 1] * s - 0.5
        dx, dy = pb[..., 0] * s - 0.5 - ax, pb[..., 1] * s - 0.5 - ay
        length = torch.sqrt(dx * dx + dy * dy)
        w = on * torch.minimum(torch.maximum(length * self.inv_span, self.inv_n), torch.ones_like(length))
        px, py = ax + self.t * dx, ay + self.t * dy  # [B, C, P]
        ex, ey = self.grid - px.unsqueeze(-1), self.grid - py.unsqueeze(-1)  # squares as Mul: Pow is slower
        gx = torch.exp(-torch.clamp(ex * ex * self.inv_2s2, max=EXP_FLOOR))
        gy = torch.exp(-torch.clamp(ey * ey * self.inv_2s2, max=EXP_FLOOR))
        gx = gx * w.unsqueeze(-1)
        fields = torch.matmul(gy.transpose(-1, -2), gx).clamp(0.0, 1.0)  # [B, C, R(y), R(x)]
        out = [fields[:, slice(*self.layers[0])]]
        nearer = None  # summed coverage of every nearer layer, accumulated layer by layer
        for k in range(1, len(self.layers)):
            prev = fields[:, slice(*self.layers[k - 1])].sum(dim=1, keepdim=True)
            nearer = prev if nearer is None else nearer + prev
            out.append(fields[:, slice(*self.layers[k])] * (1.0 - nearer.clamp(0.0, 1.0)))
        return torch.cat(out, dim=1)

    def macs(self) -> int:
        return self.channels * self.points * self.resolution * self.resolution
