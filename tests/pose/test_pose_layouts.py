"""The layouts and versions users' `.pose` files come in: each built with pose-format's own API,
written to disk and read back through the project's reader."""

import io
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderDimensions
from pose_format.utils import openpose
from pose_format.utils.cocowholebody133_header import cocowholebody_components
from pose_format.utils.generic import reduce_holistic

from hpv.errors import PoseFileError
from hpv.pose import load_sequence, read_pose, synthetic_pose
from hpv.pose import pose_file
from hpv.pose.holistic import FACE_NUM_POINTS, POSE_POINTS, holistic_header
from hpv.pose.reader import PoseNoteWarning, normalization_transform
from hpv.pose.source_layouts import OPENPOSE_BODY, OPENPOSE_FACE, OPENPOSE_MISSING_FACE_POINTS


def write(tmp_path, pose, name="a.pose"):
    path = tmp_path / name
    with open(path, "wb") as f:
        pose.write(f)
    return path


def _same(a, b):
    np.testing.assert_allclose(a.points, b.points, atol=2e-3)
    np.testing.assert_array_equal(a.confidence, b.confidence)


# 1. The app's own reduced layout

def test_reduced_layout_reads_like_the_holistic_file_it_came_from(tmp_path):
    pose = synthetic_pose(6, seed=4)
    path = write(tmp_path, reduce_holistic(pose))
    seq = load_sequence(path)
    assert seq.points.shape == (6, 178, 3) and seq.notes == ()
    _same(seq, load_sequence(pose))


def test_reduced_layout_is_mapped_by_point_names(tmp_path):
    # Components in another order: the 178 points are found by their names, not their positions.
    reduced = reduce_holistic(synthetic_pose(3, seed=5))
    names = ["RIGHT_HAND_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "POSE_LANDMARKS"]
    path = write(tmp_path, reduced.get_components(names))
    seq = load_sequence(path)
    assert seq.layout.component_names == ("POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS",
                                          "RIGHT_HAND_LANDMARKS")
    _same(seq, load_sequence(reduced))


# 2. OpenPose

def _openpose_from(pose: Pose) -> Pose:
    """The synthetic signer as OpenPose would see it, built with pose-format's `load_openpose`."""
    data, conf = pose.body.data.data[:, 0], pose.body.confidence[:, 0]
    body_at = {name: i for i, name in enumerate(POSE_POINTS)}
    to_openpose = {op: body_at[mp] for mp, op in OPENPOSE_BODY.items()} | {"Nose": body_at["NOSE"]}
    face0, left0 = len(POSE_POINTS), len(POSE_POINTS) + FACE_NUM_POINTS
    frames = {}
    for t in range(len(data)):
        def points(indices):
            out = []
            for i in indices:
                out += [0.0] * 3 if i is None else [float(data[t, i, 0]), float(data[t, i, 1]), float(conf[t, i])]
            return out
        frames[t] = {"people": [{
            "pose_keypoints_2d": points(to_openpose.get(p) for p in openpose.BODY_POINTS),
            "face_keypoints_2d": points(face0 + OPENPOSE_FACE[k] if k in OPENPOSE_FACE else None for k in range(70)),
            "hand_left_keypoints_2d": points(range(left0, left0 + 21)),
            "hand_right_keypoints_2d": points(range(left0 + 21, left0 + 42)),
        }]}
    return openpose.load_openpose(frames, fps=25, width=500, height=500)


def test_openpose_maps_body_and_hands_one_to_one_and_marks_missing_face_points(tmp_path):
    holistic = synthetic_pose(4, seed=6)
    path = write(tmp_path, _openpose_from(holistic))
    with pytest.warns(PoseNoteWarning, match="69 of the 128 face points have no OpenPose counterpart"):
        seq = load_sequence(path)
    want = load_sequence(holistic)  # same shoulders, so the same normalization
    assert seq.points.shape == (4, 178, 3) and len(seq.notes) == 1 and "a.pose: OpenPose" in seq.notes[0]
    for part in ("POSE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"):
        s = seq.layout.component_slice(part)
        np.testing.assert_allclose(seq.points[:, s, :2], want.points[:, s, :2], atol=2e-3)
        assert (seq.confidence[:, s] > 0).all()
    face = seq.layout.component_slice("FACE_LANDMARKS")
    seen = seq.confidence[0, face] > 0
    assert seen.sum() == 59
    names = np.array(seq.layout.point_names[face])
    assert set(names[~seen]) == set(OPENPOSE_MISSING_FACE_POINTS) and len(OPENPOSE_MISSING_FACE_POINTS) == 69
    np.testing.assert_allclose(seq.points[:, face][:, seen, :2], want.points[:, face][:, seen, :2], atol=2e-3)
    assert (seq.points[:, face][:, ~seen] == 0).all() and (seq.confidence[:, face][:, ~seen] == 0).all()
    # Correspondences that any dlib-68 to MediaPipe map agrees on: chin, mouth and outer eye corners.
    for openpose_index, mediapipe in ((8, 152), (48, 61), (54, 291), (36, 33), (45, 263), (51, 0), (57, 17)):
        assert OPENPOSE_FACE[openpose_index] == mediapipe


def test_openpose_mapping_keeps_body_sides():
    pose = _openpose_from(synthetic_pose(2, seed=1))
    seq = load_sequence(pose)
    left = seq.points[:, seq.layout.index("POSE_LANDMARKS", "LEFT_SHOULDER")]
    right = seq.points[:, seq.layout.index("POSE_LANDMARKS", "RIGHT_SHOULDER")]
    assert (left[:, 0] > right[:, 0]).all()  # the signer's left is on the image's right


# 3. Version 0.0

def _v0_0_bytes(pose: Pose) -> bytes:
    """`pose` in the 0.0 layout pose-format reads: its header (version patched to 0.0), then fps and
    frame count as uint16 and, per frame, a people count and per person an id and (x, y, ..., c) points."""
    buffer = io.BytesIO()
    pose.header.write(buffer)
    out = bytearray(buffer.getvalue())
    out[:4] = struct.pack("<f", 0.0)
    data, conf = pose.body.data.data, pose.body.confidence
    out += struct.pack("<HH", int(pose.body.fps), len(data))
    for frame, frame_conf in zip(data, conf):
        out += struct.pack("<H", len(frame))
        for person, (points, c) in enumerate(zip(frame, frame_conf)):
            out += struct.pack("<h", person)
            out += np.concatenate([points, c[:, None]], axis=-1).astype("<f4").tobytes()
    return bytes(out)


def test_version_0_0_is_read(tmp_path):
    pose = synthetic_pose(5, seed=8)
    path = tmp_path / "old.pose"
    path.write_bytes(_v0_0_bytes(pose))
    read = read_pose(path)
    assert read.header.version == 0.0 and read.body.data.shape == (5, 1, 576, 3)
    _same(load_sequence(path), load_sequence(pose))


def test_version_0_0_openpose_is_read(tmp_path):
    pose = _openpose_from(synthetic_pose(3, seed=2))
    path = tmp_path / "old-openpose.pose"
    path.write_bytes(_v0_0_bytes(pose))
    with pytest.warns(PoseNoteWarning):
        seq = load_sequence(path)
    _same(seq, load_sequence(pose))


def test_version_0_1_is_read(tmp_path, synthetic_bytes):
    # 0.1: the same header, then fps, frames, people as uint16 (pose-format counts frames from the bytes).
    header_end = len(synthetic_bytes) - 12 * 576 * 4 * 4 - 10
    fps, frames, people = struct.unpack_from("<fIH", synthetic_bytes, header_end)
    old = (struct.pack("<f", 0.1) + synthetic_bytes[4:header_end] + struct.pack("<HHH", int(fps), frames, people)
           + synthetic_bytes[header_end + 10:])
    path = tmp_path / "v01.pose"
    path.write_bytes(old)
    _same(load_sequence(path), load_sequence(synthetic_bytes))
    with pytest.raises(PoseFileError, match="unexpected bytes after the frame data"):
        read_pose(old + b"\0")


def test_version_0_0_truncated_or_padded():
    data = _v0_0_bytes(synthetic_pose(3, seed=8))
    for length in (20, 5000, len(data) // 2, len(data) - 1):
        with pytest.raises(PoseFileError, match="truncated"):
            read_pose(data[:length])
    with pytest.raises(PoseFileError, match="unexpected bytes after the frame data"):
        read_pose(data + b"\0")


# 4. Other layouts

def _pose_with(components, width=500):
    header = PoseHeader(0.2, PoseHeaderDimensions(width, width), components)
    n = header.total_points()
    return Pose(header, NumPyPoseBody(25, np.ones((2, 1, n, 2), np.float32), np.ones((2, 1, n), np.float32)))


@pytest.mark.parametrize("components, have", [
    (cocowholebody_components(), "BODY (23), FACE (68), LEFT_HAND (21), RIGHT_HAND (21)"),
    ([openpose.OpenPose_Hand_Component("hand_left_keypoints_2d")], "hand_left_keypoints_2d (21)"),
    ([c for c in holistic_header(500, 500, "XYC").components if "HAND" in c.name],
     "LEFT_HAND_LANDMARKS (21), RIGHT_HAND_LANDMARKS (21)"),
])
def test_other_layouts_are_refused_with_the_supported_ones(tmp_path, components, have):
    path = write(tmp_path, _pose_with(components))
    for read in (read_pose, load_sequence):
        with pytest.raises(PoseFileError) as info:
            read(path)
        message = str(info.value)
        assert "not a supported pose layout" in message and f"This file has: {have}." in message
        for supported in ("MediaPipe Holistic (POSE_LANDMARKS 33", "reduced 178-point layout (POSE_LANDMARKS 8",
                          "OpenPose (pose_keypoints_2d 25, face_keypoints_2d 70"):
            assert supported in message


# 5. Rotated phone video

def _turned(pose: Pose, quarter_turns: int) -> Pose:
    """`pose` with x, y turned `quarter_turns` times clockwise on screen about the frame centre."""
    dims = pose.header.dimensions
    center = np.array([dims.width, dims.height]) / 2
    data = pose.body.data.data.copy()
    xy = data[..., :2] - center
    for _ in range(quarter_turns):
        xy = np.stack([-xy[..., 1], xy[..., 0]], -1)
    data[..., :2] = xy + center
    return Pose(pose.header, NumPyPoseBody(pose.body.fps, data, pose.body.confidence.copy()))


@pytest.mark.parametrize("stored_turns", [1, 2, 3])
def test_a_sideways_pose_is_turned_upright(tmp_path, stored_turns):
    upright = synthetic_pose(5, seed=9, width=640, height=480)
    path = write(tmp_path, _turned(upright, stored_turns))
    with pytest.warns(PoseNoteWarning, match=f"turned it {90 * (4 - stored_turns)} degrees clockwise"):
        seq = load_sequence(path)
    assert "lies rotated" in seq.notes[0]
    _same(seq, load_sequence(upright))
    with pytest.raises(PoseFileError, match="turn the video upright"):
        normalization_transform(path)


def test_a_sideways_pose_without_a_face_is_turned_by_its_shoulders(tmp_path):
    pose = synthetic_pose(3, seed=3)
    conf = pose.body.confidence.copy()
    conf[..., :11] = 0  # the body's face points
    conf[..., 33:33 + FACE_NUM_POINTS] = 0
    upright = Pose(pose.header, NumPyPoseBody(25, pose.body.data.data, conf))
    with pytest.warns(PoseNoteWarning, match="no face seen"):
        seq = load_sequence(write(tmp_path, _turned(upright, 1)))
    _same(seq, load_sequence(upright))


def test_shoulders_tiny_against_the_face_are_refused(tmp_path):
    pose = synthetic_pose(3, seed=3)
    data = pose.body.data.data.copy()
    left, right = POSE_POINTS.index("LEFT_SHOULDER"), POSE_POINTS.index("RIGHT_SHOULDER")
    mid = (data[:, :, left] + data[:, :, right]) / 2
    for i in (left, right):
        data[:, :, i, :2] = mid[..., :2] + 0.1 * (data[:, :, i, :2] - mid[..., :2])
    path = write(tmp_path, Pose(pose.header, NumPyPoseBody(25, data, pose.body.confidence)))
    with pytest.raises(PoseFileError, match="shoulders are .* px apart but the face is .* px tall"):
        load_sequence(path)


def test_vertical_shoulders_under_an_upright_head_are_refused(tmp_path):
    pose = synthetic_pose(3, seed=3)
    data = pose.body.data.data.copy()
    left, right = POSE_POINTS.index("LEFT_SHOULDER"), POSE_POINTS.index("RIGHT_SHOULDER")
    mid = (data[:, :, left, :2] + data[:, :, right, :2]) / 2
    half = (data[:, :, left, :2] - data[:, :, right, :2]) / 2
    data[:, :, left, :2] = mid + half[..., ::-1]
    data[:, :, right, :2] = mid - half[..., ::-1]
    path = write(tmp_path, Pose(pose.header, NumPyPoseBody(25, data, pose.body.confidence)))
    with pytest.raises(PoseFileError, match="degrees from horizontal while the head is above"):
        load_sequence(path)


# Reading is bounded by the header's claims

def test_dev_zero_is_refused_quickly_without_reading_it():
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
            "from hpv.errors import PoseFileError\nfrom hpv.pose import read_pose\n"
            "try:\n    read_pose('/dev/zero')\nexcept PoseFileError as e:\n    print(e)\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "/dev/zero: not a .pose file: its header lists no components" in r.stdout


def test_a_header_that_claims_terabytes_is_refused_before_reading(tmp_path):
    good = io.BytesIO()
    synthetic_pose(1).write(good)
    data = good.getvalue()
    body = len(data) - 576 * 4 * 4 - 10
    huge = data[:body] + struct.pack("<fIH", 25.0, 2**32 - 1, 1) + data[body + 10:]
    path = tmp_path / "huge.pose"
    path.write_bytes(huge)
    for source in (huge, path):
        with pytest.raises(PoseFileError, match="the header claims 4294967295 frames .* more than the 4 GiB"):
            read_pose(source)


def test_a_body_over_the_limit_is_refused(tmp_path, monkeypatch, synthetic_bytes):
    path = tmp_path / "long.pose"
    path.write_bytes(synthetic_bytes)
    monkeypatch.setattr(pose_file, "MAX_BODY_BYTES", 10_000)
    with pytest.raises(PoseFileError, match="more than the"):
        read_pose(path)
