"""The upscaler's full-resolution tail in ONNX Runtime on this CPU, two layouts of one function
(not a test):
  depth_to_space   1x1 conv (features -> 3*s*s) + grouped 3x3 bilinear base conv, Add, DepthToSpace, Clip
  conv_transpose   fixed 3x3 neighbourhood conv, Concat, ConvTranspose (kernel = stride = s), Clip
(`hpv.stages.fire_upscaler` uses the second; its `upgrade_state` maps the first's weights onto it
exactly). Both are exported from the same random weights at 128 -> 768 and checked equal first;
then they run in turns, --rounds rounds of --runs calls each, 2 intra-op threads, spinning off.
The last line is
  conv_transpose_over_depth_to_space: <median ms ratio>

  .venv/bin/python bench/upscaler_tail.py [--rounds 8] [--runs 15]"""

from __future__ import annotations

import argparse
import warnings
import io
import time

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

from hpv.stages import STAGES, build_stage
from hpv.stages.fire_upscaler import FEATURES, bilinear_subpixel_kernel, transposed_weight


class DepthToSpaceTail(nn.Module):
    def __init__(self, residual, bias, base, s):
        super().__init__()
        self.residual = nn.Conv2d(FEATURES, 3 * s * s, 1)
        self.base = nn.Conv2d(3, 3 * s * s, 3, padding=1, groups=3, bias=False)
        with torch.no_grad():
            self.residual.weight.copy_(residual[:, :, None, None])
            self.residual.bias.copy_(bias)
            self.base.weight.copy_(base)
        self.s = s

    def forward(self, image, features):
        return F.pixel_shuffle(self.base(image) + self.residual(features), self.s).clamp(0.0, 1.0)


class ConvTransposeTail(nn.Module):
    def __init__(self, up):
        super().__init__()
        self.up = up

    def forward(self, image, features):
        n = F.conv2d(image, self.up.neighbour_weight, self.up.neighbour_bias, padding=1)
        return self.up.out(torch.cat([features, n], dim=1)).clamp(0.0, 1.0)


def session(module, image, features):
    buf = io.BytesIO()
    torch.onnx.export(module, (image, features), buf, input_names=["image", "features"], output_names=["y"],
                      dynamo=False)
    o = ort.SessionOptions()
    o.log_severity_level = 3
    o.intra_op_num_threads = 2
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    o.add_session_config_entry("session.set_denormal_as_zero", "1")
    return ort.InferenceSession(buf.getvalue(), o, providers=["CPUExecutionProvider"])


def main() -> None:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    torch.manual_seed(0)
    params = STAGES.get("fire_upscaler").params(resolution=128, out_resolution=768)
    up = build_stage("fire_upscaler", params)
    s = params.scale
    residual, bias = torch.randn(3 * s * s, FEATURES) * 0.05, torch.randn(3 * s * s) * 0.01
    base = bilinear_subpixel_kernel(s).repeat(3, 1, 1, 1)
    with torch.no_grad():
        up.out.weight.copy_(transposed_weight(residual, bias, base, s))
    image, features = torch.rand(1, 3, 128, 128), torch.rand(1, FEATURES, 128, 128)
    variants = {"depth_to_space": DepthToSpaceTail(residual, bias, base, s).eval(), "conv_transpose": ConvTransposeTail(up).eval()}
    feeds = {"image": image.numpy(), "features": features.numpy()}
    sessions = {k: session(m, image, features) for k, m in variants.items()}
    outs = [sess.run(None, feeds)[0] for sess in sessions.values()]
    err = float(np.abs(outs[0] - outs[1]).max())
    assert np.isfinite(err) and err < 1e-4, f"the two tails differ by {err}"
    print(f"same function: max abs difference {err:.1e}")
    times = {k: [] for k in sessions}
    names = list(sessions)
    for r in range(args.rounds + 1):
        for k in names[r % 2:] + names[:r % 2]:
            for _ in range(args.runs):
                t = time.perf_counter()
                sessions[k].run(None, feeds)
                if r:  # round 0 warms up
                    times[k].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    for k in names:
        print(f"{k:16s} median {med[k]:6.2f} ms  min {min(times[k]) * 1e3:6.2f} ms")
    print(f"conv_transpose_over_depth_to_space: {med['conv_transpose'] / med['depth_to_space']:.2f}")


if __name__ == "__main__":
    main()
