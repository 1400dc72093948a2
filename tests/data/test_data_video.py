import io
from fractions import Fraction

import numpy as np
import pytest

from hpv.errors import ConfigError, DataError, PoseFileError
from hpv.pose import load_sequence, synthetic_pose
from hpv.pose.reader import NormalizationTransform, normalization_transform

av = pytest.importorskip("av")

from hpv.data.video import GREEN, frame_video, load_pairs, read_video  # noqa: E402

W, H, FRAMES, R = 160, 96, 8, 128
GRAY, MARK = 40, 3  # background level; the marker covers pixel centers within MARK px of the shoulder


def write_pose(path, pose):
    buffer = io.BytesIO()
    pose.write(buffer)
    path.write_bytes(buffer.getvalue())
    return path


def write_video(path, frames, fps=25.0, codec="libx264"):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "4"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def marked_frames(pose):
    """Gray frames with a white square centered on each frame's raw left shoulder."""
    shoulder = np.asarray(pose.body.data.data)[:, 0, pose.header.get_point_index("POSE_LANDMARKS", "LEFT_SHOULDER"), :2]
    cy, cx = np.mgrid[0:H, 0:W] + 0.5  # pixel centers
    frames = np.full((len(shoulder), H, W, 3), GRAY, np.uint8)
    for t, (x, y) in enumerate(shoulder):
        frames[t][(abs(cx - x) <= MARK) & (abs(cy - y) <= MARK)] = 255
    return frames


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    pose = synthetic_pose(FRAMES, seed=2, width=W, height=H)
    return write_video(d / "signer.mp4", marked_frames(pose)), write_pose(d / "signer.pose", pose)


def test_read_video_returns_rgb_frames_and_fps(pair):
    frames, fps = read_video(pair[0])
    assert frames.shape == (FRAMES, H, W, 3) and frames.dtype == np.uint8
    assert fps == pytest.approx(25.0)
    assert abs(int(frames[0, 2, 2, 0]) - GRAY) <= 3


def test_marker_lands_on_the_normalized_shoulder(pair):
    sequence, frames = load_pairs(pair[0], pair[1], R)
    assert frames.shape == (FRAMES, R, R, 3) and frames.dtype == np.uint8
    assert np.array_equal(sequence.points, load_sequence(pair[1]).points)
    expected = sequence.points[:, sequence.layout.index("POSE_LANDMARKS", "LEFT_SHOULDER"), :2] * (R / 512)
    weight = np.clip(frames[..., 0].astype(np.float64) - GRAY, 0, None)  # red: zero in gray and green
    cy, cx = np.mgrid[0:R, 0:R] + 0.5
    total = weight.sum(axis=(1, 2))
    found = np.stack([(weight * cx).sum(axis=(1, 2)) / total, (weight * cy).sum(axis=(1, 2)) / total], -1)
    assert np.abs(found - expected).max() < 0.5, (found, expected)


def test_outside_the_video_is_green(pair):
    _, frames = load_pairs(pair[0], pair[1], R)
    # The crop is ~146 source px tall around y ~ 58 in a 96 px tall video: top and bottom rows are outside.
    assert (frames[:, 0] == GREEN).all() and (frames[:, -1] == GREEN).all()


def test_frame_video_identity_and_area_average():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 512, 512, 3), dtype=np.uint8)
    identity = NormalizationTransform(scale=1.0, offset_x=0.0, offset_y=0.0)
    assert np.array_equal(frame_video(frames, identity, 512), frames)
    half = frames.astype(np.float64).reshape(2, 256, 2, 256, 2, 3).mean(axis=(2, 4))
    assert np.abs(frame_video(frames, identity, 256).astype(np.float64) - half).max() <= 0.5


def test_frame_video_shift_and_scale():
    frames = np.zeros((1, 64, 64, 3), np.uint8)
    frames[0, 10, 20] = 255  # one pixel, center (20.5, 10.5)
    t = NormalizationTransform(scale=4.0, offset_x=100.0, offset_y=50.0)  # -> center (182, 92) in the 512 frame
    out = frame_video(frames, t, 512)[0, ..., 0].astype(np.float64)
    cy, cx = np.mgrid[0:512, 0:512] + 0.5
    assert (out * cx).sum() / out.sum() == pytest.approx(182.0, abs=1e-6)
    assert (out * cy).sum() / out.sum() == pytest.approx(92.0, abs=1e-6)
    assert (frame_video(frames, t, 512)[0, 500, 500] == GREEN).all()  # beyond 100 + 4 * 64 = 356


def test_normalization_transform_maps_raw_shoulders_like_load_sequence(pose_file):
    from hpv.pose import read_pose

    pose = read_pose(pose_file)
    t, seq = normalization_transform(pose), load_sequence(pose)
    raw = np.asarray(pose.body.data.data)[:, 0, pose.header.get_point_index("POSE_LANDMARKS", "LEFT_SHOULDER"), :2]
    mapped = t.apply(raw)
    assert np.allclose(mapped, seq.points[:, seq.layout.index("POSE_LANDMARKS", "LEFT_SHOULDER"), :2], atol=1e-3)
    assert np.allclose(t.invert(mapped), raw, atol=1e-4)


def test_frame_count_mismatch(tmp_path, pair):
    pose = write_pose(tmp_path / "long.pose", synthetic_pose(FRAMES + 2, seed=2, width=W, height=H))
    with pytest.raises(DataError, match=rf"has {FRAMES} frames but .*long.pose has {FRAMES + 2}.*re-export"):
        load_pairs(pair[0], pose, R)


def test_fps_mismatch(tmp_path, pair):
    pose = write_pose(tmp_path / "fast.pose", synthetic_pose(FRAMES, seed=2, fps=30.0, width=W, height=H))
    with pytest.raises(DataError, match=r"25 fps but .*fast.pose at 30 fps.*re-export"):
        load_pairs(pair[0], pose, R)


def test_fps_within_tolerance_is_accepted(tmp_path, pair):
    pose = write_pose(tmp_path / "near.pose", synthetic_pose(FRAMES, seed=2, fps=25.4, width=W, height=H))
    assert load_pairs(pair[0], pose, 32)[1].shape == (FRAMES, 32, 32, 3)


def test_video_size_mismatch(tmp_path, pair):
    pose = write_pose(tmp_path / "big.pose", synthetic_pose(FRAMES, seed=2, width=2 * W, height=H))
    with pytest.raises(DataError, match=rf"is {W}x{H} but .*big.pose states {2 * W}x{H}"):
        load_pairs(pair[0], pose, R)


def test_missing_video(tmp_path, pair):
    with pytest.raises(DataError, match=r"nothing.mp4: no such file"):
        load_pairs(tmp_path / "nothing.mp4", pair[1], R)


def test_missing_pose_is_a_pose_error(tmp_path, pair):
    with pytest.raises(PoseFileError, match="no such file"):
        load_pairs(pair[0], tmp_path / "nothing.pose", R)


@pytest.mark.parametrize("content, cause", [
    (b"", "empty file"),
    (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "corrupt or truncated|no video stream"),
    (b"hello, this is a text file\n" * 50, "corrupt or truncated|no video stream"),
])
def test_bad_video_bytes(tmp_path, content, cause):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"bad.mp4: ({cause})"):
        read_video(path)


def test_pose_file_is_not_a_video(pair):
    with pytest.raises(DataError, match="signer.pose: "):
        read_video(pair[1])


def test_directory_is_not_a_video(tmp_path):
    with pytest.raises(DataError, match="not a file"):
        read_video(tmp_path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_video_is_an_error_never_a_short_pair(tmp_path, pair, keep):
    data = pair[0].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError, match="cut.mp4"):
        load_pairs(path, pair[1], R)


def test_truncated_mpeg4_stream(tmp_path, pair):
    # A transport stream (no index) that lost its tail decodes to fewer frames: a count mismatch.
    frames = marked_frames(synthetic_pose(FRAMES, seed=2, width=W, height=H))
    full = write_video(tmp_path / "full.ts", frames, codec="mpeg4")
    cut = tmp_path / "cut.ts"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.9)])
    with pytest.raises(DataError, match=rf"cut.ts has [1-{FRAMES - 1}] frames but .*signer.pose has {FRAMES}"):
        load_pairs(cut, pair[1], R)


@pytest.mark.parametrize("resolution", [0, 12.5, "64"])
def test_bad_resolution(pair, resolution):
    with pytest.raises(ConfigError, match="resolution"):
        load_pairs(pair[0], pair[1], resolution)
