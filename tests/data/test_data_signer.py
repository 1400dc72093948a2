import numpy as np
import pytest

from hpv.data.signer import GREEN, Appearance, HairStyle, render_signer
from hpv.errors import ConfigError
from hpv.pose import PoseSequence, default_sequence
from hpv.pose.sequence import SHOULDER_WIDTH


@pytest.fixture(scope="module")
def seq() -> PoseSequence:
    return default_sequence(6, seed=0)


def _keyed(images: np.ndarray) -> np.ndarray:
    """The app's chroma key on [0, 1] floats."""
    r, g, b = np.moveaxis(images.astype(np.float64) / 255, -1, 0)
    return (g > 0.5) & (g > 1.5 * r) & (g > 1.5 * b)


def _background(images: np.ndarray) -> np.ndarray:
    return (images == GREEN).all(axis=-1)


def _with(seq: PoseSequence, points=None, confidence=None) -> PoseSequence:
    return PoseSequence(seq.points if points is None else points.astype(np.float32),
                        seq.confidence if confidence is None else confidence.astype(np.float32), seq.fps, seq.layout)


def _face_centre(seq: PoseSequence, t: int = 0) -> np.ndarray:
    oval = [seq.layout.index("FACE_LANDMARKS", str(i)) for i in (10, 152, 234, 454)]
    return seq.points[t, oval, :2].mean(axis=0)


def test_shape_dtype_and_determinism(seq):
    images = render_signer(seq, 64)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8
    assert render_signer(seq, 64).tobytes() == images.tobytes()
    assert render_signer(seq.frames(0, 0), 32).shape == (0, 32, 32, 3)


@pytest.mark.parametrize("appearance", [Appearance(), Appearance.random(1), Appearance.random(2), Appearance.random(7)])
def test_background_is_keyed_and_the_person_is_not(seq, appearance):
    images = render_signer(seq.frames(0, 3), 128, appearance)
    # pixels the person covers fully are the same on any background; edge pixels mix with it
    covered = (images == render_signer(seq.frames(0, 3), 128, appearance, background=(255, 0, 255))).all(axis=-1)
    assert covered.mean() > 0.2
    assert not _keyed(images)[covered].any()
    background = _background(images)
    assert background.mean() > 0.3 and _keyed(images)[background].all()


def test_resolutions_draw_the_same_picture(seq):
    small = render_signer(seq.frames(0, 3), 128).astype(np.float64)
    large = render_signer(seq.frames(0, 3), 256).astype(np.float64)
    pooled = large.reshape(3, 128, 2, 128, 2, 3).mean(axis=(2, 4))
    assert np.abs(pooled - small).mean() < 2  # about 0.3 measured; the brief allows 8


def test_silhouette_covers_shoulders_and_face(seq):
    R = 128
    images = render_signer(seq, R)
    background = _background(images)
    s = R / 512
    for t in range(seq.num_frames):
        for x, y in [(256, 256), (256 - 0.3 * SHOULDER_WIDTH, 262), (256 + 0.3 * SHOULDER_WIDTH, 262)]:
            assert not background[t, int(y * s), int(x * s)]
        cx, cy = _face_centre(seq, t) * s
        assert not background[t, int(cy) - 2:int(cy) + 3, int(cx) - 2:int(cx) + 3].any()


def _hand_at_face(seq, z_offset):
    """Frame 0 with the right hand's palm moved onto the face centre, its wrist z_offset from the shoulders."""
    layout, points = seq.layout, seq.points[:1].copy()
    hand = layout.component_slice("RIGHT_HAND_LANDMARKS")
    palm = [layout.index("RIGHT_HAND_LANDMARKS", n) for n in
            ("WRIST", "INDEX_FINGER_MCP", "MIDDLE_FINGER_MCP", "RING_FINGER_MCP", "PINKY_MCP")]
    points[0, hand, :2] += _face_centre(seq) - points[0, palm, :2].mean(axis=0)
    wrist = layout.index("POSE_LANDMARKS", "RIGHT_WRIST")
    shoulder = layout.index("POSE_LANDMARKS", "RIGHT_SHOULDER")
    points[0, wrist, :2] = points[0, hand.start, :2]
    points[0, wrist, 2] = points[0, shoulder, 2] + z_offset
    return _with(seq.frames(0, 1), points=points)


def test_a_nearer_hand_covers_the_face_and_a_further_one_does_not(seq):
    R = 128
    near = render_signer(_hand_at_face(seq, -2 * SHOULDER_WIDTH), R)[0].astype(int)
    far = render_signer(_hand_at_face(seq, 2 * SHOULDER_WIDTH), R)[0].astype(int)
    conf = seq.confidence[:1].copy()
    conf[:, seq.layout.component_slice("RIGHT_HAND_LANDMARKS")] = 0
    handless = render_signer(_with(seq.frames(0, 1), confidence=conf), R)[0].astype(int)
    cx, cy = (_face_centre(seq) * R / 512).astype(int)
    patch = np.s_[cy - 3:cy + 4, cx - 3:cx + 4]
    assert np.abs(far[patch] - handless[patch]).max() <= 1  # the face hides the hand
    assert np.abs(near[patch] - handless[patch]).mean() > 10  # the hand hides the face


def test_unseen_hand_is_not_drawn(seq):
    hand = seq.layout.component_slice("LEFT_HAND_LANDMARKS")
    conf = seq.confidence.copy()
    conf[:, hand] = 0
    unseen = render_signer(_with(seq, confidence=conf), 96)
    points = seq.points.copy()
    points[:, hand] = np.nan  # garbage behind confidence 0 must not leak
    assert np.array_equal(render_signer(_with(seq, points, conf), 96), unseen)
    # only pixels where the hand was change, and they do
    full = render_signer(seq, 96)
    changed = (unseen != full).any(axis=-1)
    assert changed.any(axis=(1, 2)).all()
    s, margin = 96 / 512, 0.1 * SHOULDER_WIDTH
    for t in range(seq.num_frames):
        xy = seq.points[t, hand, :2]
        (x0, y0), (x1, y1) = (xy.min(axis=0) - margin) * s, (xy.max(axis=0) + margin) * s
        ys, xs = np.nonzero(changed[t])
        assert (xs >= x0 - 1).all() and (xs <= x1 + 1).all() and (ys >= y0 - 1).all() and (ys <= y1 + 1).all()


def test_missing_parts_are_skipped(seq):
    nothing = _with(seq.frames(0, 2), confidence=np.zeros_like(seq.confidence[:2]))
    assert _background(render_signer(nothing, 48)).all()
    conf = seq.confidence[:2].copy()
    conf[:, seq.layout.component_slice("FACE_LANDMARKS")] = 0
    conf[:, seq.layout.index("POSE_LANDMARKS", "LEFT_ELBOW")] = 0
    conf[:, seq.layout.index("POSE_LANDMARKS", "LEFT_HIP")] = 0
    images = render_signer(_with(seq.frames(0, 2), confidence=conf), 48)
    assert not _background(images).all()


def test_appearance_is_validated_and_seeded():
    assert Appearance() == Appearance()
    assert Appearance.random(3) == Appearance.random(3) and Appearance.random(3) != Appearance.random(4)
    assert Appearance(hair_style="long").hair_style is HairStyle.LONG
    with pytest.raises(ConfigError, match="chroma green"):
        Appearance(shirt=(40, 200, 60))
    with pytest.raises(ConfigError, match="hair_style"):
        Appearance(hair_style="mohawk")
    with pytest.raises(ConfigError):
        render_signer(default_sequence(1), 0)
