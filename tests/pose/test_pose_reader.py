import io

import numpy as np
import pytest
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

from hpv.errors import ConfigError, PoseFileError
from hpv.pose import load_sequence, read_pose, synthetic_pose
from hpv.pose.holistic import holistic_header


def pose_bytes(pose) -> bytes:
    buffer = io.BytesIO()
    pose.write(buffer)
    return buffer.getvalue()


def _pose(data, conf, header=None, fps=25.0):
    return Pose(header or holistic_header(500, 500), NumPyPoseBody(fps, data.astype(np.float32), conf.astype(np.float32)))


def test_reduce_gives_178_points_and_normalizes_by_shoulders():
    seq = load_sequence(synthetic_pose(30, seed=7))
    assert seq.points.shape == (30, 178, 3)
    left = seq.layout.index("POSE_LANDMARKS", "LEFT_SHOULDER")
    right = seq.layout.index("POSE_LANDMARKS", "RIGHT_SHOULDER")
    mid = (seq.points[:, left, :2] + seq.points[:, right, :2]) / 2
    width = np.linalg.norm(seq.points[:, left, :2] - seq.points[:, right, :2], axis=-1)
    np.testing.assert_allclose(np.median(mid, axis=0), [256, 256], atol=1e-3)
    np.testing.assert_allclose(np.median(width), 204.8, atol=1e-3)


def test_one_transform_for_the_whole_sequence():
    # A still pose with one frame of shoulder noise: the median ignores it, so the other frames stay put.
    pose = synthetic_pose(9, seed=1)
    data = np.repeat(pose.body.data.data[:1], 9, axis=0)
    data[4, 0, 11, 0] += 40
    seq = load_sequence(_pose(data, np.repeat(pose.body.confidence[:1], 9, axis=0)))
    np.testing.assert_array_equal(seq.points[0], seq.points[8])
    left, right = seq.points[0, 0, :2], seq.points[0, 1, :2]
    np.testing.assert_allclose((left + right) / 2, [256, 256], atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(left - right), 204.8, atol=1e-3)


def test_missing_points_get_zero_confidence():
    pose = synthetic_pose(4, seed=2)
    data, conf = pose.body.data.data.copy(), pose.body.confidence.copy()
    conf[1, 0, 501:522] = 0  # left hand lost in frame 1
    data[2, 0, 13] = np.nan  # left elbow NaN in frame 2
    seq = load_sequence(_pose(data, conf))
    hand = seq.layout.component_slice("LEFT_HAND_LANDMARKS")
    assert (seq.confidence[1, hand] == 0).all() and (seq.confidence[0, hand] > 0).all()
    assert seq.confidence[2, seq.layout.index("POSE_LANDMARKS", "LEFT_ELBOW")] == 0
    assert np.isfinite(seq.points).all()


def test_no_shoulders_is_an_error():
    pose = synthetic_pose(3)
    conf = pose.body.confidence.copy()
    conf[:, 0, 11] = 0
    with pytest.raises(PoseFileError, match="both shoulders"):
        load_sequence(_pose(pose.body.data.data, conf))


def test_person_out_of_range():
    with pytest.raises(ConfigError, match="person"):
        load_sequence(synthetic_pose(2), person=1)


def test_reads_path(tmp_path, synthetic_bytes):
    path = tmp_path / "a.pose"
    path.write_bytes(synthetic_bytes)
    assert read_pose(path).body.data.shape[:3] == (12, 1, 576)
    assert load_sequence(str(path)).num_frames == 12


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(seed):
    junk = np.random.default_rng(seed).bytes(2000)
    with pytest.raises(PoseFileError):
        read_pose(junk)


def test_random_bytes_behind_a_valid_version(synthetic_bytes):
    rng = np.random.default_rng(0)
    for _ in range(20):
        with pytest.raises(PoseFileError):
            read_pose(synthetic_bytes[:4] + rng.bytes(int(rng.integers(0, 3000))))


def test_truncated_at_many_lengths(synthetic_bytes):
    n = len(synthetic_bytes)
    for length in [0, 1, 3, 4, 5, 9, 30, 200, 1000, 5000, n // 2, n - 5, n - 1]:
        with pytest.raises(PoseFileError) as info:
            read_pose(synthetic_bytes[:length])
        if length > n // 3:
            assert "truncated: expected" in str(info.value)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.pose").write_bytes(b"")
    with pytest.raises(PoseFileError, match="empty"):
        read_pose(tmp_path / "empty.pose")
    with pytest.raises(PoseFileError, match="no such file"):
        read_pose(tmp_path / "nope.pose")
    with pytest.raises(PoseFileError, match="cannot read"):
        read_pose(tmp_path)


def test_zero_frames_people_and_nan_only():
    pose = synthetic_pose(2)
    with pytest.raises(PoseFileError, match="zero frames"):
        read_pose(pose_bytes(_pose(pose.body.data.data[:0], pose.body.confidence[:0])))
    with pytest.raises(PoseFileError, match="zero people"):
        read_pose(pose_bytes(_pose(pose.body.data.data[:, :0], pose.body.confidence[:, :0])))
    with pytest.raises(PoseFileError, match="no usable point"):
        read_pose(pose_bytes(_pose(np.full_like(pose.body.data.data, np.nan), pose.body.confidence)))


def test_non_holistic_layout_lists_expected_components():
    header = PoseHeader(0.2, PoseHeaderDimensions(100, 100), [
        PoseHeaderComponent("BODY", ["a", "b"], [(0, 1)], [(255, 0, 0)], "XYC")])
    pose = _pose(np.ones((2, 1, 2, 2)), np.ones((2, 1, 2)), header)
    with pytest.raises(PoseFileError, match="MediaPipe Holistic \\(POSE_LANDMARKS 33.*This file has: BODY \\(2\\)"):
        read_pose(pose_bytes(pose))
    with pytest.raises(PoseFileError, match="not a supported pose layout"):
        load_sequence(pose)


@pytest.mark.parametrize("fps", [float("nan"), float("inf"), 0.0, -25.0, 1e6])
def test_a_header_fps_that_no_video_can_have_is_refused(tmp_path, fps):
    pose = synthetic_pose(2)
    path = tmp_path / "bad-fps.pose"
    path.write_bytes(pose_bytes(_pose(pose.body.data.data, pose.body.confidence, fps=fps)))
    for read in (read_pose, load_sequence):
        with pytest.raises(PoseFileError, match="bad-fps.pose: the header's fps must be positive, between 0.001 and 1000"):
            read(path)


@pytest.mark.parametrize("fps", [0.5, 29.97, 1000.0])
def test_fractional_and_high_header_fps_are_kept(fps):
    pose = synthetic_pose(2)
    seq = load_sequence(pose_bytes(_pose(pose.body.data.data, pose.body.confidence, fps=fps)))
    assert seq.fps == pytest.approx(fps, rel=1e-6)
