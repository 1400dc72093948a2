import numpy as np
import pytest

from hpv.errors import ConfigError
from hpv.pose import default_sequence, load_sequence, synthetic_pose
from hpv.pose.augment import drop, jitter, mirror
from hpv.pose.keypoints import COMPONENTS, NUM_KEYPOINTS, index, keypoints
from hpv.pose.synthetic import STYLES


def test_layout_is_what_the_reader_reduces_to():
    seq = load_sequence(synthetic_pose(2))
    names = seq.layout.point_names
    assert NUM_KEYPOINTS == 178 == len(names)
    assert tuple(names) == tuple(p for _, pts in COMPONENTS for p in pts)
    assert keypoints(seq).shape == (2, 178, 3)


def test_missing_points_are_zero_and_finite():
    seq = default_sequence(3)
    seq.confidence[1, 10] = 0.0
    seq.points[2, 11] = np.nan
    kp = keypoints(seq)
    assert np.isfinite(kp).all()
    assert (kp[1, 10] == 0).all() and (kp[2, 11] == 0).all()


def test_other_layouts_are_refused():
    seq = default_sequence(2)
    from hpv.pose.layout import PoseLayout
    from hpv.pose.sequence import PoseSequence
    from pose_format.pose_header import PoseHeaderComponent

    header = PoseHeaderComponent("HAND", [str(i) for i in range(21)], [], [(0, 0, 0)], "XYZC")

    class _H:  # a minimal header with one component
        components = [header]

    other = PoseSequence(seq.points[:, :21], seq.confidence[:, :21], 25.0, PoseLayout.from_header(_H))
    with pytest.raises(ConfigError, match="178"):
        keypoints(other)


def test_mirror_twice_is_identity_and_swaps_sides():
    seq = default_sequence(5, seed=2)
    once, twice = mirror(seq), mirror(mirror(seq))
    np.testing.assert_allclose(twice.points, seq.points, atol=1e-4)
    l, r = index("POSE_LANDMARKS", "LEFT_WRIST"), index("POSE_LANDMARKS", "RIGHT_WRIST")
    np.testing.assert_allclose(once.points[:, l, 0], 512 - seq.points[:, r, 0], atol=1e-4)


def test_jitter_and_drop_stay_valid():
    seq = default_sequence(8, seed=4)
    rng = np.random.default_rng(0)
    j = jitter(seq, rng)
    assert not np.allclose(j.points, seq.points)
    d = drop(seq, np.random.default_rng(1))
    assert (d.confidence == 0).sum() > (seq.confidence == 0).sum()
    assert np.isfinite(keypoints(d)).all()


@pytest.mark.parametrize("style", STYLES)
def test_styles(style):
    kp = keypoints(default_sequence(30, seed=1, style=style))
    wrists = kp[:, [index("POSE_LANDMARKS", "LEFT_WRIST"), index("POSE_LANDMARKS", "RIGHT_WRIST")], 1]
    if style == "rest":
        assert (wrists > 500).all()  # hanging: the hands below the 512 frame
    if style == "face":
        face_y = kp[:, 8:136, 1].mean()
        assert abs(wrists.mean() - face_y) < 120


def test_unknown_style_is_refused():
    with pytest.raises(ConfigError, match="style"):
        synthetic_pose(2, style="dance")
