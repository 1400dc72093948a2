"""The in-graph keypoint rasterizer: keypoints [B, 178, 3] -> part fields [B, C, R, R] in [0, 1].

The first module of the keypoint generator (which hands its fields to the later stages), so training
and every runtime see the same conditioning by construction. Gathers, elementwise arithmetic, Exp
and a batched MatMul per bucket of channels: ops that ONNX, LiteRT and Core ML all run.
`hpv.pose.fields` holds the field definitions and the NumPy reference."""

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
        self.resolution, self.channels = resolution, ia.shape[0]
        # Channels are drawn in buckets of similar splat counts, each padded only to its own
        # longest: padded to the longest of all, 60% of the splats were padding (a finger has a
        # fifth of the palm's), and every one of them cost its Exp and its share of the product.
        self.buckets = splat_buckets(valid.sum(axis=1).astype(int))
        longest = [int(valid[chans].sum(axis=1).max()) for chans in self.buckets]
        self.splats = sum(len(chans) * p for chans, p in zip(self.buckets, longest))  # drawn per frame, padding included
        for k, (chans, p) in enumerate(zip(self.buckets, longest)):
            table = {"ia": torch.from_numpy(ia[chans, :p].reshape(-1)), "ib": torch.from_numpy(ib[chans, :p].reshape(-1)),
                     "t": torch.from_numpy(t[chans, :p]), "valid": torch.from_numpy(valid[chans, :p]),
                     "inv_span": torch.from_numpy(1.0 / ((n[chans] - 1) * SQRT_2PI * sigma[chans]))[:, None],
                     "inv_n": torch.from_numpy(1.0 / n[chans])[:, None],
                     "neg_inv_2s2": torch.from_numpy(-1.0 / (2.0 * sigma[chans] ** 2))[:, None, None]}
            for name, value in table.items():
                self.register_buffer(f"{name}_{k}", value, persistent=False)
        order = [c for chans in self.buckets for c in chans]
        self.register_buffer("unbucket", torch.tensor([order.index(c) for c in range(self.channels)]), persistent=False)
        self.register_buffer("grid", torch.arange(resolution, dtype=torch.float32), persistent=False)
        # Depth layers as contiguous channel ranges: [(start, stop)] nearest first.
        self.layers = [(depths.index(d), len(depths) - depths[::-1].index(d)) for d in sorted(set(depths))]

    def _bucket(self, kp: torch.Tensor, k: int) -> torch.Tensor:
        """[B, C_k, R, R] unclipped fields of bucket k's channels."""
        buf = lambda name: getattr(self, f"{name}_{k}")  # noqa: E731
        B, (C, P) = kp.shape[0], buf("t").shape
        pa = kp.index_select(1, buf("ia")).reshape(B, C, P, 3)
        pb = kp.index_select(1, buf("ib")).reshape(B, C, P, 3)
        on = (pa[..., 2] > 0).to(kp.dtype) * (pb[..., 2] > 0).to(kp.dtype) * buf("valid")
        s = self.resolution / FRAME
        ax, ay = pa[..., 0] * s - 0.5, pa[..., 1] * s - 0.5
        dx, dy = pb[..., 0] * s - 0.5 - ax, pb[..., 1] * s - 0.5 - ay
        length = torch.sqrt(dx * dx + dy * dy)
        w = on * torch.minimum(torch.maximum(length * buf("inv_span"), buf("inv_n")), torch.ones_like(length))
        px, py = ax + buf("t") * dx, ay + buf("t") * dy  # [B, C, P]
        ex, ey = self.grid - px.unsqueeze(-1), self.grid - py.unsqueeze(-1)  # squares as Mul: Pow is slower
        # the exponent's sign folded into the scale (no Neg pass over [B, C, P, R])
        gx = torch.exp(torch.clamp(ex * ex * buf("neg_inv_2s2"), min=-EXP_FLOOR))
        gy = torch.exp(torch.clamp(ey * ey * buf("neg_inv_2s2"), min=-EXP_FLOOR))
        gx = gx * w.unsqueeze(-1)
        return torch.matmul(gy.transpose(-1, -2), gx)  # [B, C, R(y), R(x)]

    def forward(self, kp: torch.Tensor) -> torch.Tensor:
        parts = [self._bucket(kp, k) for k in range(len(self.buckets))]
        fields = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1).index_select(1, self.unbucket)
        fields = fields.clamp(0.0, 1.0)
        out = [fields[:, slice(*self.layers[0])]]
        nearer = None  # summed coverage of every nearer layer, accumulated layer by layer
        for k in range(1, len(self.layers)):
            prev = fields[:, slice(*self.layers[k - 1])].sum(dim=1, keepdim=True)
            nearer = prev if nearer is None else nearer + prev
            out.append(fields[:, slice(*self.layers[k])] * (1.0 - nearer.clamp(0.0, 1.0)))
        return torch.cat(out, dim=1)

    def macs(self) -> int:
        return self.splats * self.resolution * self.resolution


BUCKET_COST = 0.04  # a bucket's fixed cost (its ~20 ops), as a fraction of drawing every channel at the longest


def splat_buckets(counts, most: int = 4) -> list[list[int]]:
    """Channels grouped into at most `most` buckets (each listed in channel order, the buckets by
    their longest) so that the splats drawn, sum over buckets of channels x longest, plus
    BUCKET_COST of the unbucketed total per bucket, is least (dynamic programming over the
    channels sorted by splat count)."""
    counts = [int(c) for c in counts]
    order = sorted(range(len(counts)), key=lambda c: (counts[c], c))
    n, fixed = len(order), BUCKET_COST * len(counts) * max(counts)
    # best[j][m]: (cost, cut points) of the first j sorted channels in m buckets
    best = [[(0.0, ())] + [(float("inf"), ())] * most] + [[(float("inf"), ())] * (most + 1) for _ in range(n)]
    for j in range(1, n + 1):
        for m in range(1, most + 1):
            best[j][m] = min(((best[i][m - 1][0] + (j - i) * counts[order[j - 1]] + fixed, best[i][m - 1][1] + (i,))
                              for i in range(j) if best[i][m - 1][0] < float("inf")), default=(float("inf"), ()))
    cuts = min(best[n][1:], key=lambda b: b[0])[1] + (n,)
    return [sorted(order[a:b]) for a, b in zip(cuts, cuts[1:])]
