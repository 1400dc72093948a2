import warnings

import numpy as np
import pytest
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

from hpv.pose import APP_BACKGROUNDS, PoseLayout, PoseSequence, load_sequence, render, to_model_input
from hpv.pose.holistic import BODY_COLOR, FACE_COLOR, HAND_COLORS, holistic_header

WHITE = np.array(APP_BACKGROUNDS["white"])

# A tiny reference layout: a body limb, a face limb and the hand's WRIST-THUMB_CMC limb.
HEADER = PoseHeader(0.2, PoseHeaderDimensions(512, 512), [
    PoseHeaderComponent("BODY", ["a", "b"], [(0, 1)], [BODY_COLOR], "XYZC"),
    PoseHeaderComponent("FACE", ["a", "b"], [(0, 1)], [FACE_COLOR], "XYZC"),
    PoseHeaderComponent("HAND", ["WRIST", "THUMB_CMC"], [(0, 1)], list(HAND_COLORS[:2]), "XYZC"),
])
LAYOUT = PoseLayout.from_header(HEADER)


def _seq(points, conf):
    points = np.asarray(points, np.float32).reshape(1, -1, 3)
    return PoseSequence(points, np.asarray(conf, np.float32).reshape(1, -1), 25.0, LAYOUT)


def _far(y):  # a point off in a corner where nothing else is drawn
    return [(500, y, 0), (500, y, 0)]


def test_limb_colors_match_the_visualizer():
    # body limb on row 100 (512 frame) -> row 50 at 256; face on row 50 -> 100; hand on row 150 -> 200
    points = [(100, 200, 0), (400, 200, 0), (100, 100, 0), (400, 100, 0), (100, 400, 0), (400, 400, -4)]
    image = render(_seq(points, [1, 1, 1, 1, 1, 1]), 256)[0]
    assert (image[100, 60:190] == BODY_COLOR).all()
    assert (image[50, 60:190] == FACE_COLOR).all()
    wrist, cmc = np.array(HAND_COLORS[0]), np.array(HAND_COLORS[1])
    assert (image[200, 60:190] == np.rint((wrist + cmc) / 2)).all()  # mean of the two point colors
    # Points are drawn as dots, in z order with the limbs: the wrist (z 0) lies behind its limb
    # (z -2), the thumb CMC (z -4) in front.
    assert (image[200, 50] == np.rint((wrist + cmc) / 2)).all() and (image[200, 200] == cmc).all()
    assert (image[0] == WHITE).all() and (image[:, 0] == WHITE).all() and (image[128] == WHITE).all()
    assert (image != WHITE).any(axis=-1).sum() == 3 * 151


def test_confidence_blends_with_the_background():
    points = [(100, 200, 0), (400, 200, 0), (100, 100, 0), (400, 100, 0), (100, 400, 0), (400, 400, 0)]
    image = render(_seq(points, [0.5, 0.5, 1, 0, 0.5, 0.5]), 256)[0]
    assert tuple(image[100, 128]) == (255, 127, 127)  # trunc(255 * .5 + 127.5), trunc(0 * .5 + 127.5)
    drawn = np.flatnonzero((image[50] != WHITE).any(axis=-1))  # a limb with a conf-0 end is not drawn,
    assert list(drawn) == [50] and tuple(image[50, 50]) == FACE_COLOR  # only its visible point
    lavender = np.array(APP_BACKGROUNDS["lavender"])
    image = render(_seq(points, [0.5, 0.5, 1, 0, 0, 0]), 64, background=tuple(lavender))[0]
    assert tuple(image[25, 32]) == (227, 100, 127)  # 255/2 + 200/2, 0/2 + 200/2, 0/2 + 255/2, truncated
    assert tuple(image[0, 0]) == tuple(lavender)


@pytest.mark.parametrize("body_z, face_z, winner", [(5, -5, FACE_COLOR), (-5, 5, BODY_COLOR),
                                                      (0, 0, FACE_COLOR)])  # ties: later component
def test_nearest_limb_wins_at_a_crossing(body_z, face_z, winner):
    points = [(56, 256, body_z), (456, 256, body_z), (256, 56, face_z), (256, 456, face_z), *_far(10)]
    image = render(_seq(points, [1, 1, 1, 1, 0, 0]), 256)[0]
    assert tuple(image[128, 128]) == winner
    assert tuple(image[128, 100]) == BODY_COLOR and tuple(image[100, 128]) == FACE_COLOR


def test_off_frame_limbs_are_clipped():
    points = [(256, 256, 0), (1e7, 256, 0), (-1e9, -1e9, 0), (-2e9, 5, 0), *_far(10)]
    image = render(_seq(points, [1, 1, 1, 1, 0, 0]), 128)[0]
    assert (image[64, 64:] == BODY_COLOR).all() and (image[64, :63] == WHITE).all()
    assert (image != WHITE).any(axis=-1).sum() == 64


def test_holistic_framing_shoulders_centered_at_point_four():
    data = np.zeros((1, 1, 576, 3), np.float32)
    conf = np.zeros((1, 1, 576), np.float32)
    data[0, 0, 11], data[0, 0, 12] = (300, 180, 0), (220, 180, 0)  # left, right shoulder, 500x500
    conf[0, 0, [11, 12]] = 1
    seq = load_sequence(Pose(holistic_header(500, 500), NumPyPoseBody(25.0, data, conf)))
    R = 256
    image = render(seq, R)[0]
    drawn = np.argwhere((image != WHITE).any(axis=-1))
    assert set(drawn[:, 0]) == {R // 2}
    span = drawn[:, 1].max() - drawn[:, 1].min()
    assert abs(span - 0.4 * R) <= 1 and abs((drawn[:, 1].max() + drawn[:, 1].min()) / 2 - R / 2) <= 1
    assert (image[R // 2, drawn[:, 1]] == BODY_COLOR).all()


def test_renders_every_frame_and_model_input_range():
    from hpv.pose import default_sequence

    seq = default_sequence(6, seed=2)
    images = render(seq, 64)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8
    assert not np.array_equal(images[0], images[5])
    assert np.array_equal(render(seq.frames(5, 6), 64)[0], images[5])  # frames are independent
    x = to_model_input(images)
    assert x.shape == (6, 3, 64, 64) and x.dtype == np.float32
    np.testing.assert_allclose(x, images.transpose(0, 3, 1, 2) / 127.5 - 1, atol=1e-6)
    assert x.min() >= -1 and x.max() == 1


@pytest.mark.parametrize("conf, blended", [(np.inf, 0.0), (-np.inf, 0.0), (np.nan, 0.0), (7.0, 1.0), (1e38, 1.0),
                                           (-3.0, 0.0), (0.5, 0.5)])
def test_confidence_is_clamped_and_non_finite_counts_as_missing(conf, blended):
    points = [(100, 200, 0), (400, 200, 0), *_far(10), *_far(20)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns when casting NaN colors to uint8
        with np.errstate(all="raise"):
            image = render(_seq(points, [conf, conf, 0, 0, 0, 0]), 256)[0]
    if blended == 0:  # conf <= 0 or non-finite: the point is missing, so neither it nor its limb is drawn
        assert (image == WHITE).all()
    else:
        expected = np.trunc(np.array(BODY_COLOR) * blended + (1 - blended) * WHITE)
        assert (image[100, 50:201] == expected).all()
        assert (image != WHITE).any(axis=-1).sum() == 151


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_coordinates_never_draw(bad):
    points = [(100, 200, 0), (bad, 200, 0), (100, bad, 0), (400, 100, bad), *_far(10)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = render(_seq(points, [1, 1, 1, 1, 0, 0]), 256)[0]
    # The body's a-b limb and the face's a point are not drawn; the body's a and the face's b (its
    # non-finite z is ignored) are dots.
    assert (image != WHITE).any(axis=-1).sum() == 2
    assert tuple(image[100, 50]) == BODY_COLOR and tuple(image[50, 200]) == FACE_COLOR
