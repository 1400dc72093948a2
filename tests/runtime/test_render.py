"""`hpv render` on the default pipeline's small build: MP4s that read back with the right frame
count, size and frame rate; the scheduler's plan from a profile; batched sequences; bad input."""

import json
import os
import signal
import subprocess
import sys
import time

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("av")

from hpv.cli.main import cli  # noqa: E402
from hpv.data.video import read_video  # noqa: E402
from hpv.profiles.local import profile_local  # noqa: E402
from hpv.profiles.schema import PROFILE_SCHEMA_VERSION, ProfileFile, write_profile  # noqa: E402


def _render(*args):
    return CliRunner().invoke(cli, ["render", *map(str, args)])


def test_render_the_synthetic_default(small_build, tmp_path):
    out = tmp_path / "out.mp4"
    run = _render("-o", out, "--artifacts", small_build.folder, "--frames", 12, "-k", 1, "--fps", 25, "--json")
    assert run.exit_code == 0, run.output
    frames, fps = read_video(out)
    size = next(t.shape[-1] for a in small_build.manifest.artifacts for t in a.outputs if t.name == "upscaled")
    assert frames.shape == (12, size, size, 3) and fps == 25
    report = json.loads(run.output)
    assert report["k_histogram"] == {"1": 12} and report["frames"] == 12 and report["achieved_fps"] > 0
    assert frames.std() > 1  # a picture, not a blank
    assert not list(tmp_path.glob(".*partial*"))  # nothing half-written left behind


def test_without_plan_or_steps_render_runs_the_best_k_of_the_quality_table(small_build, tmp_path):
    from hpv.pipelines import PIPELINES
    from hpv.profiles.quality import best_steps

    pipeline = PIPELINES.get(small_build.manifest.pipeline)
    want = best_steps(pipeline.name, pipeline.max_steps)
    run = _render("-o", tmp_path / "out.mp4", "--artifacts", small_build.folder, "--frames", 4, "--fps", 25)
    assert run.exit_code == 0, run.output
    assert f"k per frame k={pipeline.max_steps if want is None else want}: 4 frames" in " ".join(run.output.split())


def test_render_a_pose_file_at_the_plan_of_a_profile(small_build, pose_file, tmp_path):
    device = profile_local(small_build.folder, runs=5, warmup=1, pipeline_runs=3, peak_gmacs=1.0)
    profile = tmp_path / "profile.json"
    write_profile(profile, ProfileFile(schema_version=PROFILE_SCHEMA_VERSION, generator="t", devices=[device]))
    # A frame rate every configuration holds: the plan is the best quality (most steps at best precision).
    slowest = max(p.per_frame_p90_ms for p in device.pipelines)
    fps = 0.85 * 1000 / slowest / 2
    out = tmp_path / "signer.mp4"
    run = _render(pose_file, "-o", out, "--artifacts", small_build.folder, "--profile", profile, "--fps", fps, "--json")
    assert run.exit_code == 0, run.output
    report = json.loads(run.output)
    frames, _ = read_video(out)
    assert len(frames) == 16 == report["frames"]  # the pose file's 16 frames
    # Behaviour, not speed (a loaded CI machine misses deadlines; bench/render_speed.py times it):
    # the plan came from the profile and the deadline from --fps.
    assert report["plan"] and abs(report["deadline_ms"] - 1000 / fps) < 1e-6
    assert 0 <= report["missed"] <= report["frames"]


def test_independent_sequences_batched_in_order(small_build, pose_file, tmp_path):
    run = _render(pose_file, pose_file, "-o", tmp_path / "videos", "--artifacts", small_build.folder, "-k", 1)
    assert run.exit_code == 0, run.output
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == ["signer-0.mp4", "signer-1.mp4"]
    first, second = (read_video(v)[0] for v in videos)
    assert len(first) == 16 and np.abs(first.astype(int) - second).mean() < 1.0  # same input, same video


def test_recurrent_state_is_carried(small_build, tmp_path):
    """Two renders of the same input are identical (deterministic), and the frames differ over time."""
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    for out in (a, b):
        assert _render("-o", out, "--artifacts", small_build.folder, "--frames", 6, "-k", 0).exit_code == 0
    fa, fb = read_video(a)[0], read_video(b)[0]
    assert np.array_equal(fa, fb) and np.abs(fa[0].astype(int) - fa[-1]).mean() > 0


@pytest.mark.parametrize("args, message", [
    (["--steps", "9"], "refines 0..1"),
    (["--precision", "fp64"], "unknown precision"),
    (["--fps", "0"], "fps must be positive"),
    (["--profile", "missing.json", "--fps", "25"], "no profile"),
])
def test_bad_input_exits_2(small_build, tmp_path, args, message):
    run = _render("-o", tmp_path / "x.mp4", "--artifacts", small_build.folder, "--frames", 2, *args)
    assert run.exit_code == 2 and message in run.output, run.output
    assert not (tmp_path / "x.mp4").exists()


def test_batches_sequences_when_the_profile_says_it_pays(small_build, pose_file, tmp_path):
    from tests.profiles import factory

    from hpv.pipelines import PIPELINES

    K = PIPELINES.get("default").max_steps
    device = factory.device(precisions=("fp32",), max_steps=K)
    # Batch 2 costs 60% of batch 1 per frame on this (handmade) device: batching pays.
    batched = [factory.pipeline(k, (6 + 8 * k + 10) * 0.6, batch=2) for k in range(K + 1)]
    device = device.model_copy(update={"pipelines": device.pipelines + batched})
    profile = tmp_path / "profile.json"
    write_profile(profile, factory.profile(device))
    run = _render(pose_file, pose_file, "-o", tmp_path / "videos", "--artifacts", small_build.folder,
                  "--profile", profile, "--fps", 20, "--json")
    assert run.exit_code == 0, run.output
    report = json.loads(run.output)
    assert report["batch"] == 2 and report["sequences"] == 2
    assert len(report["k_per_frame"]) == 16  # one call per frame for both sequences
    first, second = (read_video(v)[0] for v in sorted((tmp_path / "videos").glob("*.mp4")))
    assert len(first) == len(second) == 16 and np.abs(first.astype(int) - second).mean() < 1.0


def test_the_part_stages_follow_no_parts_and_the_controllers_level(small_build, tmp_path, monkeypatch):
    """A build with part stages (pretended: the small default build has none) draws them without a
    plan, not with --no-parts, and per frame as the controller's level says with a plan."""
    from hpv.runtime.pipeline import CompiledPipeline
    from tests.profiles import factory

    drawn, frame = [], CompiledPipeline.frame

    def slow_with_parts(self, poses, k, parts=True):
        drawn.append(parts)
        if parts:  # drawing the parts takes 60 ms: over the 42.5 ms budget of 20 fps
            time.sleep(0.06)
        return frame(self, poses, k, parts)

    monkeypatch.setattr(CompiledPipeline, "has_parts", property(lambda self: True))
    monkeypatch.setattr(CompiledPipeline, "frame", slow_with_parts)
    # the plan (at 20 fps) draws them at k=1; its ladder: without them at k=1, then k=0
    profile = write_profile(tmp_path / "profile.json", factory.profile(factory.parts_device("default")))
    base = ("-o", tmp_path / "out.mp4", "--artifacts", small_build.folder, "--frames", 20, "--fps", 20, "--json")
    cases = [((), [True] * 20), (("--no-parts",), [False] * 20), (("--no-parts", "--profile", profile), [False] * 20),
             # the median of a full window (9 frames) is over budget: the parts go, k stays
             (("--profile", profile), [True] * 9 + [False] * 11)]
    for args, want in cases:
        drawn.clear()
        run = _render(*base, *args)
        assert run.exit_code == 0, run.output
        report = json.loads(run.output)
        assert report["parts_per_frame"] == drawn == want, args
        assert report["parts_histogram"] == {"on": sum(want), "off": 20 - sum(want)} and report["has_parts"]
    assert report["k_histogram"] == {"1": 20} and report["switches"] == 1


@pytest.mark.parametrize("fps, rate", [(0.5, "1/2"), (29.97, "2997/100"), (float(np.float32(30000 / 1001)), "30000/1001"),
                                       (25.0, "25"), (1000.0, "1000")])
def test_video_rate_is_the_exact_rational(fps, rate):
    from fractions import Fraction

    from hpv.runtime.render import video_rate

    assert video_rate(fps) == Fraction(rate)


@pytest.mark.parametrize("fps", [float("nan"), float("inf"), 1e300, 0.0, -1.0, 1001.0])
def test_fps_no_video_can_have_is_a_config_error_before_anything_loads(tmp_path, fps):
    from hpv.errors import ConfigError
    from hpv.runtime.render import render_video

    with pytest.raises(ConfigError, match="fps must be positive, between 0.001 and 1000"):
        render_video(tmp_path / "no-build", [tmp_path / "x.mp4"], fps=fps)
    run = _render("-o", tmp_path / "x.mp4", "--artifacts", tmp_path / "no-build", "--fps", repr(fps))
    assert run.exit_code == 2 and "between 0.001 and 1000" in run.output and "Traceback" not in run.output


@pytest.mark.parametrize("fps", [0.5, 29.97])
def test_videos_keep_a_fractional_frame_rate(tmp_path, fps):
    """0.5 fps was written as 1 fps and 29.97 as 30 (`max(1, round(fps))`)."""
    from hpv.runtime.render import _Writer, video_rate

    out = tmp_path / "v.mp4"
    writer = _Writer([out], video_rate(fps), 32)
    for i in range(4):
        writer.write(np.full((1, 32, 32, 3), 40 * i, np.uint8))
    writer.close(keep=True)
    frames, read_fps = read_video(out)
    assert len(frames) == 4 and read_fps == pytest.approx(fps)


@pytest.mark.parametrize("case", ["existing folder", "parent is a file", "unwritable parent"])
def test_outputs_that_cannot_be_written_are_refused_before_rendering(small_build, tmp_path, monkeypatch, case):
    """`-o` naming an existing folder failed only after the whole render, leaving .partial.mp4."""
    from hpv.runtime import pipeline

    if case == "existing folder":
        out, message = tmp_path / "videos", "is an existing folder"
        out.mkdir()
    elif case == "parent is a file":
        (tmp_path / "notes.txt").write_text("x")
        out, message = tmp_path / "notes.txt" / "x.mp4", "is a file, not a folder"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        if os.geteuid() == 0:  # root writes in any folder: the permission check as a user would see it
            access = os.access
            monkeypatch.setattr(os, "access", lambda p, mode: access(p, mode) and Path(p) != locked)
        out, message = locked / "x.mp4", "no permission to write in"
    loads = []
    monkeypatch.setattr(pipeline.CompiledPipeline, "__init__", lambda *a, **k: loads.append(a) or 1 / 0)
    run = _render("-o", out, "--artifacts", small_build.folder, "--frames", 2, "-k", 0)
    assert run.exit_code == 2 and message in run.output, run.output
    assert not loads  # refused before the pipeline loaded
    assert not list(tmp_path.rglob("*.partial.mp4"))


def _render_process(small_build, out, pace: bool):
    """`hpv render` of the 100-frame default in a child process (paced: 4 s long). SIGINT restored
    to its default: a background job may inherit it ignored."""
    return subprocess.Popen(
        [sys.executable, "-c", "from hpv.cli.main import main; main()", "render", "-o", str(out),
         "--artifacts", str(small_build.folder), "-k", "1", *(["--pace", "--fps", "25"] if pace else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("pace", [True, False])
def test_a_signal_mid_render_exits_cleanly_and_removes_the_partial_file(small_build, tmp_path, signum, code, pace):
    """SIGTERM left .partial.mp4; Ctrl-C aborted ("terminate called without an active exception")
    with the render thread still inside ONNX Runtime. Unpaced, the render thread is mid-inference."""
    out = tmp_path / "out.mp4"
    proc = _render_process(small_build, out, pace)
    partial = tmp_path / ".out.partial.mp4"
    deadline = time.monotonic() + 120
    while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert partial.exists(), proc.communicate()[1]
    time.sleep(0.2 if pace else 0.02)  # unpaced, 100 frames take about 0.3 s
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "terminate called" not in err and "Traceback" not in err
    assert not partial.exists() and not out.exists()


def test_background_keys_the_green_as_the_app_does():
    """Keyed pixels (the app's rule) become the colour or alpha 0; the person stays as drawn."""
    from hpv.runtime.render import Background

    unit = np.zeros((1, 3, 4, 4), np.float32)
    unit[:, 1] = 0.8  # chroma green everywhere ...
    unit[:, :, 1:3, 1:3] = 0.4  # ... but a grey person in the middle
    rgb = np.clip(unit * 255 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    person = np.zeros((1, 4, 4), bool)
    person[:, 1:3, 1:3] = True
    white = Background.parse("white").apply(unit, rgb)
    assert (white[~person] == 255).all() and (white[person] == rgb[person]).all()
    teal = Background.parse("#008080").apply(unit, rgb)
    assert (teal[~person] == (0, 128, 128)).all()
    rgba = Background.parse("alpha").apply(unit, rgb)
    assert rgba.shape[-1] == 4 and (rgba[..., 3] == person * 255).all() and (rgba[..., :3] == rgb).all()
    assert Background.parse("keep").apply(unit, rgb) is rgb


def test_alpha_background_writes_an_rgba_mov(small_build, tmp_path):
    import av

    run = _render("-o", tmp_path / "a.mov", "--artifacts", small_build.folder, "--frames", 3, "-k", 0,
                  "--background", "alpha")
    assert run.exit_code == 0, run.output
    with av.open(str(tmp_path / "a.mov")) as c:
        rgba = np.stack([f.to_ndarray(format="rgba") for f in c.decode(video=0)])
    assert rgba.shape[0] == 3 and rgba.shape[-1] == 4 and set(np.unique(rgba[..., 3])) <= {0, 255}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mov"]


@pytest.mark.parametrize("bg, out, message", [
    ("chartreuse-ish", "x.mp4", "#rrggbb"),
    ("alpha", "x.mp4", "x.mov"),
    ("white", "x.mov", "x.mp4"),
])
def test_bad_backgrounds_are_refused_before_rendering(tmp_path, bg, out, message):
    run = _render("-o", tmp_path / out, "--artifacts", tmp_path / "no-build", "--background", bg)
    assert run.exit_code == 2 and message in run.output and "Traceback" not in run.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("background", ["white", "#008080", "black", "alpha", "keep"])
def test_video_frames_are_the_plain_formula_byte_for_byte(background):
    """`VideoFrames` (work arrays kept, bytes keyed by bit masks, planes for the encoder) gives
    exactly `Background.apply` of `(x - lo) / (hi - lo)` scaled to bytes, frame after frame."""
    from hpv.runtime.render import Background, VideoFrames

    rng = np.random.default_rng(3)
    bg = Background.parse(background)
    convert = VideoFrames(-1.0, 1.0, bg)
    for _ in range(2):  # the second call reuses the work arrays
        x = rng.uniform(-1.05, 1.05, (2, 3, 16, 16)).astype(np.float32)  # a little past the range: clipped
        x[:, :, :8] = np.array([-0.8, 0.9, -0.7], np.float32)[:, None, None]  # chroma green: keyed
        unit = (x - -1.0) / (1.0 - -1.0)
        want = bg.apply(unit, np.clip(unit * 255 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))
        got = convert(x)
        np.testing.assert_array_equal(got.transpose(0, 2, 3, 1) if convert.planar else got, want)
    assert convert.planar == (background != "alpha")


def test_planar_frames_encode_as_interleaved_ones(tmp_path):
    """The writer's planar path (GBR planes to the encoder) makes the same video as RGB pixels."""
    from hpv.runtime.render import _Writer, video_rate

    yy, xx = np.mgrid[0:32, 0:32]
    frames = [np.stack([(xx * 8 + 10 * i) % 256, (yy * 8) % 256, (xx + yy + 20 * i) % 256]).astype(np.uint8)
              for i in range(3)]
    decoded = []
    for planar in (False, True):
        out = tmp_path / f"v{planar}.mp4"
        writer = _Writer([out], video_rate(25), 32)
        for f in frames:
            writer.write(f[None] if planar else f.transpose(1, 2, 0)[None], planar=planar)
        writer.close(keep=True)
        decoded.append(read_video(out)[0])
    assert len(decoded[0]) == 3
    np.testing.assert_array_equal(decoded[0], decoded[1])
