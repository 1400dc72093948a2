"""The web runtime package in Chromium against the Python runtime, on the same .pose file: the
default build's whole-body frame with its hands and face drawn apart and stitched in (and, cheaper
levels, without them)."""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
POSE = ROOT / "examples" / "signer.pose"


def python_frames(build: Path, count: int, k: int, pose: Path = POSE, parts: bool = True) -> np.ndarray:
    """What `hpv render` draws: the part boxes tracked at the pose's fps, its z ordering the hands."""
    from hpv.pose.conditioning import DEPTH, conditioning
    from hpv.pose.keypoints import depth
    from hpv.pose.reader import load_sequence
    from hpv.runtime.build import load_build
    from hpv.runtime.pipeline import CompiledPipeline

    pipe = CompiledPipeline(load_build(build), "fp32")
    seq = load_sequence(pose)
    n = min(count, seq.num_frames)
    poses = conditioning(seq.frames(0, n), pipe.conditioning_keys)
    poses[DEPTH] = depth(seq.frames(0, n))
    pipe.reset(fps=seq.fps)
    return np.concatenate([pipe.frame({key: v[t:t + 1] for key, v in poses.items()}, k, parts=parts)
                           for t in range(n)])


def psnr(a, b, peak=1.0):
    mse = float(np.mean((np.asarray(a, np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


@pytest.mark.parametrize("worker", [True, False], ids=["worker", "main-thread"])
def test_web_frames_match_the_python_runtime(wasm_build, worker):
    from hpv.compiler.web.page import RuntimePage

    with RuntimePage(wasm_build.folder, POSE, worker=worker) as page:
        assert page.ready["where"] == ("worker" if worker else "main")
        assert page.has_parts  # the default pipeline draws the hands and the face apart
        k = page.ready["maxSteps"]
        assert k >= 1 and k == wasm_build.manifest.max_steps  # the build's K, read from its manifest
        got, times = page.frames(12, k)
        plain, _ = page.frames(12, k, parts=False)
    want = python_frames(wasm_build.folder, 12, k)
    body = python_frames(wasm_build.folder, 12, k, parts=False)
    assert got.shape == want.shape and len(times) == 12
    score = psnr(got, want)
    assert score >= 45.0, score
    assert float(np.std(want)) > 0.01  # a picture, not a constant
    # The small build's untrained part stages change the frame little (about 57 dB): the web frames
    # must be far closer to Python's with the parts than to the body frame alone.
    assert psnr(got, body) < score - 10
    assert psnr(plain, body) >= 45.0  # the parts off: the body frame alone, as Python's


def test_web_frames_match_on_a_second_real_pose(wasm_build, real_pose):
    from hpv.compiler.web.page import RuntimePage

    with RuntimePage(wasm_build.folder, real_pose) as page:
        k = page.ready["maxSteps"]
        got, _ = page.frames(12, k)
    want = python_frames(wasm_build.folder, 12, k, real_pose)
    assert got.shape == want.shape and psnr(got, want) >= 45.0
