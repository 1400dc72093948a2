"""Speed of hpv.data.signer.render_signer on the synthetic signer: prints ms per frame per resolution
(not a test). Targets on a 2-core machine: 15 ms at 128, 40 ms at 256, 250 ms at 768."""

import time

import numpy as np

from hpv.data.signer import render_signer
from hpv.pose import default_sequence


def main(num_frames: int = 50, resolutions=(128, 256, 768), repeats: int = 3) -> None:
    seq = default_sequence(num_frames)
    render_signer(seq.frames(0, 2), 128)  # warm up
    for resolution in resolutions:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            render_signer(seq, resolution)
            times.append(time.perf_counter() - start)
        ms = np.array(times) * 1e3 / num_frames
        print(f"render_signer {num_frames} frames at {resolution}x{resolution}: "
              f"median {np.median(ms):.1f} ms/frame, best {ms.min():.1f}")


if __name__ == "__main__":
    main()
