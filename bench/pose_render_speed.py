"""Render speed of hpv.pose.render on the synthetic signer: prints ms per frame (not a test)."""

import time

import numpy as np

from hpv.pose import default_sequence, render, to_model_input


def main(num_frames: int = 100, resolution: int = 256, repeats: int = 20) -> None:
    seq = default_sequence(num_frames)
    render(seq, resolution)  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render(seq, resolution)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    to_model_input(render(seq, resolution))
    with_input = time.perf_counter() - start
    ms = np.array(times) * 1e3 / num_frames
    print(f"render {num_frames} frames at {resolution}x{resolution}: median {np.median(ms):.3f} ms/frame, "
          f"best {ms.min():.3f}; with to_model_input {with_input * 1e3 / num_frames:.3f} ms/frame")


if __name__ == "__main__":
    main()
