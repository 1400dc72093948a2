"""The in-graph keypoint rasterizer against its NumPy reference, and the properties the stages rely
on: confidence masking, depth order, anti-aliasing, off-frame points."""

import numpy as np
import pytest
import torch

from hpv.pose import default_sequence
from hpv.pose.fields import FIELD_GROUPS, NUM_FIELDS, keypoint_fields
from hpv.pose.keypoints import NUM_KEYPOINTS, OFFSETS, index, keypoints
from hpv.stages.raster import KeypointRaster


def _kp(frames=4, seed=3, style="mixed"):
    return keypoints(default_sequence(frames, seed=seed, style=style))


@pytest.mark.parametrize("resolution", [16, 32, 64, 128])
def test_matches_numpy_reference(resolution):
    kp = _kp()
    kp[1, OFFSETS["LEFT_HAND_LANDMARKS"]:OFFSETS["RIGHT_HAND_LANDMARKS"], 2] = 0.0  # a lost hand
    kp[2, :8, :2] += 300.0  # body points far off the frame
    ref = keypoint_fields(kp, resolution)
    got = KeypointRaster(resolution)(torch.from_numpy(kp)).numpy()
    assert got.shape == (4, NUM_FIELDS, resolution, resolution)
    assert np.isfinite(got).all()
    assert np.abs(got - ref).max() < 1e-4
    assert ref.max() > 0.9  # lines reach full strength


def test_confidence_zero_draws_nothing():
    kp = _kp(1)
    kp[..., 2] = 0.0
    assert keypoint_fields(kp, 64).max() == 0.0
    kp = _kp(1)
    hand = slice(OFFSETS["RIGHT_HAND_LANDMARKS"], NUM_KEYPOINTS)
    kp[:, hand, 2] = 0.0
    f = keypoint_fields(kp, 64)[0]
    right = [c for c, g in enumerate(FIELD_GROUPS) if g.name.startswith("right_") and g.depth == 0]
    assert f[right].max() == 0.0
    assert f[[c for c, g in enumerate(FIELD_GROUPS) if g.name.startswith("left_") and g.depth == 0]].max() > 0.5


def test_hand_in_front_hides_the_face():
    kp = _kp(1)
    face = [c for c, g in enumerate(FIELD_GROUPS) if g.name == "face_oval"][0]
    alone = kp.copy()
    alone[:, OFFSETS["LEFT_HAND_LANDMARKS"]:, 2] = 0.0  # no hands
    oval = keypoint_fields(alone, 128)[0, face]
    # put the right hand over the face: its wrist at the face centre
    fc = kp[0, OFFSETS["FACE_LANDMARKS"]:OFFSETS["LEFT_HAND_LANDMARKS"], :2].mean(axis=0)
    hand = slice(OFFSETS["RIGHT_HAND_LANDMARKS"], NUM_KEYPOINTS)
    covered = kp.copy()
    covered[0, OFFSETS["LEFT_HAND_LANDMARKS"]:OFFSETS["RIGHT_HAND_LANDMARKS"], 2] = 0.0
    covered[0, hand, :2] += fc - covered[0, index("RIGHT_HAND_LANDMARKS", "WRIST"), :2]
    hidden = keypoint_fields(covered, 128)[0, face]
    assert hidden.sum() < 0.9 * oval.sum()  # the face's lines under the hand are hidden
    assert np.all(hidden <= oval + 1e-6)


def test_subpixel_motion_moves_the_field_smoothly():
    kp = _kp(1)
    a = keypoint_fields(kp, 64)
    changes = []
    for px in (0.125, 0.25, 0.5):  # fractions of a pixel at 64
        moved = kp.copy()
        moved[..., 0] += px * 512 / 64
        changes.append(np.abs(a - keypoint_fields(moved, 64)).max())
    # anti-aliased: a sub-pixel move changes the field a little, more for a larger move (a 1-px
    # drawing rounded to whole pixels would not change at all, then jump by 1)
    assert 0.0 < changes[0] < changes[1] < changes[2] < 0.8
    assert changes[0] < 0.3


def test_torch_raster_exports_keep_points_finite():
    raster = KeypointRaster(32)
    out = raster(torch.zeros(2, NUM_KEYPOINTS, 3))
    assert out.shape == (2, NUM_FIELDS, 32, 32) and float(out.abs().max()) == 0.0
