import io

import numpy as np

from hpv.pose import default_sequence, synthetic_pose
from hpv.pose.reader import read_pose


def test_same_seed_same_pose_other_seed_differs():
    a, b, c = synthetic_pose(20, seed=1), synthetic_pose(20, seed=1), synthetic_pose(20, seed=2)
    assert np.array_equal(a.body.data.data, b.body.data.data)
    assert np.array_equal(a.body.confidence, b.body.confidence)
    assert not np.allclose(a.body.data.data, c.body.data.data)


def test_write_read_round_trip():
    pose = synthetic_pose(15, seed=4, fps=30.0)
    buffer = io.BytesIO()
    pose.write(buffer)
    back = read_pose(buffer.getvalue())
    assert [c.name for c in back.header.components] == [c.name for c in pose.header.components]
    assert back.header.total_points() == 576 and back.body.fps == 30.0
    assert np.array_equal(back.body.data.data, pose.body.data.data)
    assert np.array_equal(back.body.confidence, pose.body.confidence)


def test_plausible_proportions_and_motion():
    pose = synthetic_pose(50, seed=5, width=500)
    data = np.asarray(pose.body.data.data)[:, 0]
    assert np.isfinite(data).all()
    width = np.linalg.norm(data[:, 11, :2] - data[:, 12, :2], axis=-1)
    assert (0.3 * 500 < width).all() and (width < 0.45 * 500).all()
    wrists = data[:, 15:17, :2]
    assert np.abs(np.diff(wrists, axis=0)).max() < 0.1 * 500  # smooth at 25 fps
    assert wrists.std(axis=0).min() > 3  # but moving
    assert (data[:, 0, 1] < data[:, 11, 1]).all()  # nose above shoulders


def test_default_sequence_is_reduced_and_normalized():
    seq = default_sequence(10, seed=0)
    assert seq.points.shape == (10, 178, 3) and seq.num_frames == 10
    assert seq.layout.component_names == ("POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS",
                                          "RIGHT_HAND_LANDMARKS")
    assert seq.frames(2, 5).num_frames == 3
