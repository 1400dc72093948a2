"""Looks metrics on constructed cases: they see what a viewer sees and ignore the background."""

import numpy as np
import pytest

from hpv.data.signer import GREEN, render_signer
from hpv.errors import ConfigError
from hpv.metrics import (LooksAccumulator, boxes_mask, chroma_foreground, dilate, evaluate_looks, part_boxes,
                         silhouette_iou)
from hpv.pose import default_sequence
from hpv.pose.keypoints import OFFSETS, index, keypoints

R = 192


@pytest.fixture(scope="module")
def case():
    seq = default_sequence(3, seed=5)
    truth = render_signer(seq, R).transpose(0, 3, 1, 2).astype(np.float64) / 255
    return seq, truth, keypoints(seq)


def _without_arm(seq):
    conf = seq.confidence.copy()
    arm = [index("POSE_LANDMARKS", "RIGHT_ELBOW"), index("POSE_LANDMARKS", "RIGHT_WRIST")]
    arm += list(range(OFFSETS["RIGHT_HAND_LANDMARKS"], OFFSETS["RIGHT_HAND_LANDMARKS"] + 21))
    conf[:, arm] = 0.0
    from hpv.pose.sequence import PoseSequence

    return PoseSequence(seq.points, conf, seq.fps, seq.layout)


def test_identical_is_perfect(case):
    _, truth, kp = case
    m = evaluate_looks(truth, truth, kp)
    assert m.silhouette_iou == 1.0 and m.person_psnr_db == m.hand_psnr_db == 200.0


def test_missing_arm_lowers_iou_and_person_psnr(case):
    seq, truth, kp = case
    armless = render_signer(_without_arm(seq), R).transpose(0, 3, 1, 2) / 255
    m = evaluate_looks(armless, truth, kp)
    assert m.silhouette_iou < 0.97
    assert m.person_psnr_db < 20
    assert m.hand_psnr_db < m.person_psnr_db + 5


def test_hole_in_torso_lowers_person_psnr_and_iou(case):
    _, truth, kp = case
    holed = truth.copy()
    y = int(0.62 * R)  # the chest, below the shoulders (256/512) and above the hips
    holed[:, :, y:y + 10, R // 2 - 6:R // 2 + 6] = np.asarray(GREEN)[None, :, None, None] / 255
    m = evaluate_looks(holed, truth, kp)
    assert m.silhouette_iou < 1.0
    assert m.person_psnr_db < 30


def test_background_change_changes_nothing_that_counts(case):
    _, truth, kp = case
    other = truth.copy()
    bg = ~chroma_foreground(truth)
    shade = np.array([10, 150, 50]) / 255  # still keyed green, another shade
    for c in range(3):
        other[:, c][bg] = shade[c]
    m = evaluate_looks(other, truth, kp)
    assert m.silhouette_iou == 1.0
    full = evaluate_looks(other, truth, kp).psnr_db
    assert full < 40  # the whole-frame figure moves ...
    # ... the person figure only through the 4-px dilated rim of background it includes
    assert m.person_psnr_db > full + 3


def test_hand_boxes_hold_the_hand_and_clip_to_the_frame(case):
    _, _, kp = case
    hand = range(OFFSETS["LEFT_HAND_LANDMARKS"], OFFSETS["LEFT_HAND_LANDMARKS"] + 21)
    box = part_boxes(kp, hand, R)
    pts = kp[:, list(hand), :2] * R / 512
    for t in range(len(kp)):
        x0, y0, x1, y1 = box[t]
        assert x0 <= pts[t, :, 0].min() and pts[t, :, 0].max() <= x1
        assert y0 <= pts[t, :, 1].min() and pts[t, :, 1].max() <= y1
    rest = keypoints(default_sequence(2, seed=1, style="rest"))
    b = part_boxes(rest, range(OFFSETS["RIGHT_HAND_LANDMARKS"], OFFSETS["RIGHT_HAND_LANDMARKS"] + 21), R)
    assert ((b == -1).all(axis=1) | (b[:, 3] <= R)).all()
    assert boxes_mask(b, R).shape == (2, R, R)


def test_nan_is_refused(case):
    _, truth, kp = case
    bad = truth.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        LooksAccumulator().add(bad, truth, kp)


def test_dilate_and_iou_basics():
    m = np.zeros((1, 9, 9), bool)
    m[0, 4, 4] = True
    assert dilate(m, 2).sum() == 25
    a = np.zeros((1, 3, 4, 4))
    a[:, 1] = 1.0  # all green: all keyed
    assert silhouette_iou(a, a) == 1.0


def test_flicker_sees_shimmer(case):
    _, truth, kp = case
    noisy = truth.copy()
    rng = np.random.default_rng(0)
    noisy += rng.normal(0, 0.05, noisy.shape) * chroma_foreground(truth)[:, None]
    noisy = np.clip(noisy, 0, 1)
    assert evaluate_looks(noisy, truth, kp).flicker > evaluate_looks(truth, truth, kp).flicker + 0.01
