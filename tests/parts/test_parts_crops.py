"""Part crop boxes (issue 14): inside the frame for poses at and beyond its edges, steady under
keypoint noise, following real motion with bounded lag, missing parts held then absent, reset on
a new sequence; the crop transforms and the left hand's mirror."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpv.metrics import part_boxes
from hpv.parts import PARTS, BoxState, BoxTracker, PartBox, Smoothing, box_array, raw_box, track_boxes
from hpv.pose import default_sequence, load_sequence
from hpv.pose.keypoints import keypoints

SIGNER = Path(__file__).resolve().parents[2] / "examples" / "signer.pose"
FPS = 25.0


@pytest.fixture(scope="module")
def signer() -> np.ndarray:
    """The real fingerspelled letter's keypoints [21, 178, 3] (right hand and face seen)."""
    return keypoints(load_sequence(SIGNER))


@pytest.fixture(scope="module")
def synthetic() -> np.ndarray:
    """100 frames of the synthetic signer, both hands moving."""
    return keypoints(default_sequence(num_frames=100, seed=2, style="mixed"))


def moved(kp: np.ndarray, dx: float, dy: float, scale: float = 1.0) -> np.ndarray:
    out = kp.copy()
    seen = out[..., 2] > 0
    out[..., :2] = np.where(seen[..., None], (out[..., :2] - 256) * scale + 256 + (dx, dy), 0.0)
    return out


def inside(box: PartBox) -> bool:
    h = box.side / 2
    return 0 <= box.cx - h and box.cx + h <= 512 and 0 <= box.cy - h and box.cy + h <= 512 and box.side > 0


def test_boxes_stay_inside_the_frame_at_its_edges_and_beyond(signer):
    """The signer slid to every edge and corner, partly and wholly out of the frame, and scaled up
    until the face box is larger than the frame: every drawn box lies inside; a part wholly outside
    is held for hold_frames, then absent."""
    frame = signer[10]
    poses = [moved(frame, dx, dy, s) for dx in (-400, -250, 0, 250, 400) for dy in (-400, -250, 0, 250, 400)
             for s in (1.0, 3.0)]
    held = absent = 0
    for pose in poses:
        boxes = track_boxes(np.repeat(pose[None], 8, 0), FPS)
        for frame_boxes in boxes:
            for box in frame_boxes.values():
                if box.drawn:
                    assert inside(box), box
                held += box.state is BoxState.HELD
                absent += box.state is BoxState.ABSENT
    assert absent > 0  # poses with a part wholly outside exist, and those parts are absent

    # A sequence that jumps between those poses every frame: the smoothed box lags and is clamped.
    rng = np.random.default_rng(0)
    seq = np.stack([poses[i] for i in rng.integers(0, len(poses), 200)])
    for frame_boxes in track_boxes(seq, FPS):
        for box in frame_boxes.values():
            assert not box.drawn or inside(box), box


def test_a_part_leaving_the_frame_is_held_then_absent_then_snaps_back(signer):
    base = signer[10]
    gone = moved(base, 0, 700)  # every part below the frame
    seq = np.concatenate([np.repeat(base[None], 10, 0), np.repeat(gone[None], 8, 0), np.repeat(moved(base, 60, 0)[None], 3, 0)])
    boxes = track_boxes(seq, FPS)
    hold = Smoothing().hold_frames
    states = [b["right_hand"].state for b in boxes]
    assert states[:10] == [BoxState.SEEN] * 10
    assert states[10:10 + hold] == [BoxState.HELD] * hold
    assert states[10 + hold:18] == [BoxState.ABSENT] * (8 - hold)
    assert boxes[10 + hold - 1]["right_hand"].cx == boxes[9]["right_hand"].cx  # held: the last box
    # Back after the hold: the box starts afresh at the new place instead of sliding from the old.
    assert boxes[18]["right_hand"].cx == pytest.approx(raw_box(seq[18], PARTS["right_hand"])[0])
    assert all(b["left_hand"].state is BoxState.ABSENT for b in boxes)  # never seen in this file


def test_missing_keypoints_hold_the_box_for_a_dropout(signer):
    seq = signer.copy()
    right = list(PARTS["right_hand"].indices)
    seq[8:10, right] = 0.0  # the detector lost the hand for two frames
    boxes = box_array(track_boxes(seq, FPS), "right_hand")
    assert (boxes[:, 3] == 1).all()
    assert (boxes[8] == boxes[7]).all() and (boxes[9] == boxes[7]).all()


def test_reset_makes_sequences_independent(signer, synthetic):
    tracker = BoxTracker("right_hand", FPS)
    for frame in synthetic[:30]:
        tracker.update(frame)
    tracker.reset()
    after = [tracker.update(f) for f in signer]
    fresh = [b["right_hand"] for b in track_boxes(signer, FPS)]
    assert after == fresh
    assert track_boxes(signer, FPS) == track_boxes(signer, FPS)  # deterministic


def noisy(seq: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    out = seq.copy()
    seen = out[..., 2] > 0
    out[..., :2] += np.where(seen[..., None], np.random.default_rng(seed).normal(0, sigma, out[..., :2].shape), 0)
    return out


def step_rms(a: np.ndarray) -> float:
    """RMS frame-to-frame change of [T, D] (vector norm over D)."""
    return float(np.sqrt(np.mean(np.sum(np.diff(a, axis=0) ** 2, axis=-1))))


@pytest.mark.parametrize("name", ["right_hand", "face"])
def test_a_still_part_under_keypoint_noise_barely_moves(signer, name):
    """Still pose, every keypoint jittered by N(0, 2 px) per axis per frame (512 frame; a noisy
    detector): the box's frame-to-frame jitter is a small fraction of the noise, and of what the
    unsmoothed box would do. Measured (right hand / face): centre step RMS 0.045 / 0.002 px (raw box
    2.7 / 2.1), side step RMS 0.18 / 0.03 px (raw 5.3 / 4.1)."""
    sigma = 2.0
    seq = noisy(np.repeat(signer[10][None], 250, 0), sigma, seed=1)
    boxes = box_array(track_boxes(seq, FPS), name)[25:]  # after a second of settling
    raw = np.array([raw_box(f, PARTS[name]) for f in seq])[25:]
    centre, side = step_rms(boxes[:, :2]), step_rms(boxes[:, 2:3])
    assert centre < 0.05 * sigma and centre < 0.05 * step_rms(raw[:, :2])
    assert side < 0.15 * sigma and side < 0.1 * step_rms(raw[:, 2:3])
    assert boxes[:, :2].std(axis=0).max() < 0.15 * sigma  # no slow wander either
    assert boxes[:, 2].std() < 0.5 * sigma


def test_a_moving_part_under_noise_tracks_its_clean_box(synthetic):
    """The synthetic signer's moving hands with N(0, 2 px) noise: the box differs from the clean
    sequence's box by much less than the noise, frame to frame (the noise's own jitter added to the
    box's steps is what a viewer sees)."""
    sigma = 2.0
    clean = track_boxes(synthetic, FPS)
    dirty = track_boxes(noisy(synthetic, sigma, seed=3), FPS)
    for name in ("left_hand", "right_hand", "face"):
        a, b = box_array(clean, name)[10:], box_array(dirty, name)[10:]
        extra = step_rms(b[:, :3]) - step_rms(a[:, :3])
        assert extra < 0.25 * sigma, (name, extra)


@pytest.mark.parametrize("speed", [100.0, 250.0, 400.0])
def test_the_box_follows_real_motion_with_bounded_lag(signer, speed):
    """The real right hand slid sideways at `speed` px/s (512 frame; 400 px/s crosses the signing
    space in half a second) for 0.6 s, then still: the hand's keypoints never leave the box, the box
    trails by at most the dead-band (2% of the side) plus 1.5 frames of motion, and by under 1.5
    frames at the end of the slide (measured: 1.35, 0.64, 0.43 frames, at most 7.2 px, at 100, 250,
    400 px/s: the dead-band dominates slow motion, and the hold on the metric box caps the lag), and
    it settles within 3% of the side two frames after the stop."""
    seq = np.repeat(signer[10][None], 50, 0)
    idx = list(PARTS["right_hand"].indices)
    t = np.arange(len(seq)) / FPS
    seq[:, idx, 0] += (np.clip(t - 0.4, 0, 0.6) * speed)[:, None]
    boxes = box_array(track_boxes(seq, FPS), "right_hand")
    raw = np.array([raw_box(f, PARTS["right_hand"]) for f in seq])
    pts = seq[:, idx, :2]
    outside = np.maximum(np.abs(pts[..., 0] - boxes[:, None, 0]), np.abs(pts[..., 1] - boxes[:, None, 1])) \
        - boxes[:, None, 2] / 2
    assert outside.max() < 0
    step = speed / FPS
    lag = raw[10:26, 0] - boxes[10:26, 0]
    assert (lag <= Smoothing().deadband * boxes[10:26, 2] + 1.5 * step).all()  # the start included
    assert (lag[-6:] / step).max() < 1.5  # steady: the end of the slide
    assert (np.abs(raw[27:, 0] - boxes[27:, 0]) < 0.03 * boxes[27:, 2]).all()


def test_keypoints_stay_in_their_crop_on_real_and_synthetic_motion(signer, synthetic):
    """On the real letter and the synthetic signer (both hands roaming), every seen keypoint of a
    drawn part lies inside its smoothed box, and the box holds the looks metric's box of the part
    (the region hand and face PSNR are scored on) but where the frame's edge cuts it."""
    for seq in (signer, synthetic):
        boxes = track_boxes(seq, FPS)
        for name, spec in PARTS.items():
            metric = part_boxes(seq, spec.indices, 512)
            for t, frame_boxes in enumerate(boxes):
                box = frame_boxes[name]
                if box.state is not BoxState.SEEN:
                    continue
                pts = seq[t, list(spec.indices)]
                pts = pts[pts[:, 2] > 0, :2]
                h = box.side / 2
                lo, hi = np.array([box.cx - h, box.cy - h]), np.array([box.cx + h, box.cy + h])
                assert ((pts >= lo - 1e-3) & (pts <= hi + 1e-3)).all(), (name, t)
                if metric[t, 0] >= 0:
                    # 1-px slack: the metric's box is rounded outwards to whole pixels.
                    assert (metric[t, :2] >= np.floor(lo) - 1).all() and (metric[t, 2:] <= np.ceil(hi) + 1).all(), \
                        (name, t, metric[t], lo, hi)


def test_crop_transform_maps_the_box_onto_the_crop():
    box = PartBox("right_hand", cx=100.0, cy=200.0, side=64.0, state=BoxState.SEEN, mirror=False)
    t = box.transform(size=64, resolution=768)
    np.testing.assert_allclose(t.crop_to_frame([[0, 0], [64, 64]]), [[(100 - 32) * 1.5, (200 - 32) * 1.5],
                                                                     [(100 + 32) * 1.5, (200 + 32) * 1.5]])
    xy = np.random.default_rng(0).uniform(0, 768, (50, 2))
    np.testing.assert_allclose(t.crop_to_frame(t.frame_to_crop(xy)), xy, atol=1e-9)
    assert box.crop_points(np.array([[100.0, 200.0, 1.0], [7.0, 7.0, 0.0]])).tolist() == [[32.0, 32.0, 1.0],
                                                                                         [0.0, 0.0, 0.0]]


def test_mirror_round_trip_and_one_hand_model_for_both(signer):
    """The left hand's crop is mirrored: frame -> crop -> frame is the identity, and a left hand that
    is the mirror image of the right (about the frame's centre line) lands in its crop exactly where
    the right hand lands in its own, so one set of weights draws both."""
    right = signer[10]
    mirrored = right.copy()
    li, ri = list(PARTS["left_hand"].indices), list(PARTS["right_hand"].indices)
    mirrored[li] = right[ri]
    mirrored[li, 0] = 512 - right[ri, 0]
    boxes = track_boxes(mirrored[None], FPS)[0]
    lb, rb = boxes["left_hand"], boxes["right_hand"]
    assert lb.mirror and not rb.mirror
    assert lb.side == pytest.approx(rb.side) and lb.cx == pytest.approx(512 - rb.cx)
    np.testing.assert_allclose(lb.crop_points(mirrored[li]), rb.crop_points(mirrored[ri]), atol=1e-3)
    t = lb.transform(64, 768)
    assert t.mirror
    uv = np.random.default_rng(1).uniform(0, 64, (40, 2))
    np.testing.assert_allclose(t.frame_to_crop(t.crop_to_frame(uv)), uv, atol=1e-9)
    # The crop's left edge (u = 0) is the box's right edge in the frame.
    x0, _, x1, _ = t.frame_extent()
    assert t.crop_to_frame([0.0, 0.0])[0] == pytest.approx(x1) and x1 - x0 == pytest.approx(lb.side * 1.5)


def test_bad_settings_and_inputs_say_what_is_wrong():
    from hpv.errors import ConfigError, UnknownNameError

    with pytest.raises(ConfigError, match="min_cutoff_hz"):
        Smoothing(min_cutoff_hz=0)
    with pytest.raises(ConfigError, match="fps"):
        BoxTracker("face", 0)
    with pytest.raises(UnknownNameError, match="right_hand"):
        BoxTracker("right_hnd", FPS)
    with pytest.raises(ConfigError, match=r"\[T, 178, 3\]"):
        track_boxes(np.zeros((178, 3)), FPS)
    with pytest.raises(ConfigError, match="absent"):
        PartBox("face", 0, 0, 0, BoxState.ABSENT, False).transform()


def test_real_fingerspelling_keeps_every_part_in_its_box_and_steadies_it():
    """60 real fingerspelling sequences (the `poses` extra): every drawn box lies inside the frame;
    wherever the part's metric box lies inside the frame, every seen keypoint lies inside the smoothed
    box; and frame to frame the box moves less than the unsmoothed one. Measured on 150 sequences
    (3875 frames), the median step over the side, smoothed vs unsmoothed: right hand centre x 0.006
    vs 0.011, y 0.014 vs 0.031, side 0.001 vs 0.017; face 0.000 vs 0.0015."""
    pytest.importorskip("spoken_to_signed")
    import warnings

    from hpv.data.real_poses import real_sequences
    from hpv.parts import metric_box

    steps = {name: ([], []) for name in PARTS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sequences = list(real_sequences(limit=60))
    assert len(sequences) == 60
    for _, seq in sequences:
        kp = keypoints(seq)
        boxes = track_boxes(kp, seq.fps)
        for name, spec in PARTS.items():
            raws = [raw_box(f, spec) for f in kp]
            for t, frame_boxes in enumerate(boxes):
                box = frame_boxes[name]
                if not box.drawn:
                    continue
                assert inside(box), (name, t, box)
                if box.state is not BoxState.SEEN:
                    continue
                cx, cy, side = metric_box(kp[t], spec)
                if min(cx, cy) - side / 2 >= 0 and max(cx, cy) + side / 2 <= 512:
                    pts = kp[t, list(spec.indices)]
                    pts = pts[pts[:, 2] > 0, :2]
                    h = box.side / 2
                    assert (np.abs(pts - (box.cx, box.cy)) <= h + 1e-3).all(), (name, t)
                prev = boxes[t - 1][name] if t else None
                if prev is not None and prev.state is BoxState.SEEN and raws[t - 1] is not None:
                    steps[name][0].append(np.abs(np.subtract((box.cx, box.cy, box.side), (prev.cx, prev.cy, prev.side))))
                    steps[name][1].append(np.abs(np.subtract(raws[t], raws[t - 1])))
    assert len(steps["right_hand"][0]) > 500 and len(steps["face"][0]) > 500
    for name, (smooth, raw) in steps.items():
        if len(smooth) < 100:  # the left hand is seldom seen in one-handed fingerspelling
            continue
        smooth, raw = np.median(smooth, axis=0), np.median(raw, axis=0)
        assert (smooth[:2] <= 0.7 * raw[:2]).all() and smooth[2] <= 0.25 * raw[2], (name, smooth, raw)
