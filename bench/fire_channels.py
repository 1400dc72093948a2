"""Fire modules in ONNX Runtime on this CPU, their expand channels as the stages have them against
the same modules with the expand channels padded to a multiple of the NCHWc block (16 with
AVX-512), more multiply-adds (not a test):
  as built   three Fire modules in a row (squeeze 12, expand e + e, Concat), random weights
  padded     the same with e rounded up to a multiple of 16
ORT's NCHWc layout runs Concat in its blocked layout only when every input's channels fill whole
blocks; otherwise it puts a ReorderOutput before and a ReorderInput after each Concat (24 of them
in fire_gen, 16 in the refiner). A weight transform that pads with zero filters (and zero input
weights in the consumers) would keep the function; this measures whether it would pay.
They run in turns, --runs rounds, in the runtime's ONNX Runtime sessions (every core, spinning
off, denormals flushed). The last line is
  padded_over_as_built: <median of the sizes' ms ratios>

  .venv/bin/python bench/fire_channels.py [--runs 40]"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hpv.compiler.backends import get_backend
from hpv.targets import get_target


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.e1, self.e3 = nn.Conv2d(squeeze, expand, 1), nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.squeeze(x))
        return torch.relu(torch.cat([self.e1(x), self.e3(x)], 1))


def three_fires(expand: int) -> nn.Module:
    return nn.Sequential(Fire(2 * expand, 12, expand), Fire(2 * expand, 12, expand), Fire(2 * expand, 12, expand)).eval()


def runner(module: nn.Module, x: torch.Tensor, folder: Path):
    """The module exported to ONNX and run as hpv's runtime runs an artifact (the ONNX backend's
    runner: the same session options)."""
    path = folder / f"fire_{x.shape[1]}.onnx"
    torch.onnx.export(module, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    return get_backend("onnx").runner(path, get_target("onnx-cpu"))


# (resolution, expand channels as in fire_gen / the refiner, padded to the block)
SIZES = [(128, 24, 32), (128, 12, 16), (64, 72, 80)]


def main() -> None:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    ratios = []
    for r, e, padded in SIZES:
        ways = {}
        with tempfile.TemporaryDirectory() as tmp:
            for ch in (e, padded):
                x = torch.randn(1, 2 * ch, r, r)
                ways[ch] = (runner(three_fires(ch), x, Path(tmp)), {"x": rng.random((1, 2 * ch, r, r), dtype=np.float32)})
        ms = {ch: [] for ch in ways}
        for _ in range(args.runs):
            for ch, (run, feeds) in ways.items():
                t0 = time.perf_counter()
                run(feeds)
                ms[ch].append((time.perf_counter() - t0) * 1e3)
        a, b = np.median(ms[e]), np.median(ms[padded])
        ratios.append(b / a)
        print(f"{r}x{r}, expand {e} + {e}: {a:.3f} ms; padded to {padded} + {padded}: {b:.3f} ms "
              f"({b / a:.2f}, MACs x{padded / e:.2f})")
    print(f"padded_over_as_built: {np.median(ratios):.3f}")


if __name__ == "__main__":
    main()
