"""A seeded synthetic signer in the full holistic layout, for tests and benchmarks without real data.

Every motion is a sum of a few seeded sinusoids (smooth, loops never repeat exactly); arms use
2-link IK so the elbows follow the wrists; fingers bend per joint; the face's contours are drawn as
shapes (oval, eyes that blink, brows that rise, lips that open) and the head turns slightly.
Coordinates follow MediaPipe: x, y in pixels; z in units of the image width, relative to the hips
(body), the wrist (hands) or the head center (face); larger z = further.
"""

from __future__ import annotations

import numpy as np
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody

from hpv.errors import ConfigError
from hpv.pose.holistic import FACE_CONTOURS, FACE_NUM_POINTS, POSE_POINTS, holistic_header
from hpv.pose.reader import load_sequence
from hpv.pose.sequence import PoseSequence

_P = {name: i for i, name in enumerate(POSE_POINTS)}


def _signals(rng: np.random.Generator, t: np.ndarray, n: int, low=0.15, high=1.0, terms=3) -> np.ndarray:
    """[T, n] smooth seeded signals in [-1, 1]."""
    freq = rng.uniform(low, high, (terms, n))
    phase = rng.uniform(0, 2 * np.pi, (terms, n))
    amp = rng.uniform(0.5, 1.0, (terms, n))
    amp /= amp.sum(axis=0)
    return (amp * np.sin(2 * np.pi * freq * t[:, None, None] + phase)).sum(axis=1)


def _path(ids, a0, a1, b, bulge):
    """Template (a, b) for points `ids` spread from a0 to a1, bulging by `bulge` * sin(pi s) in b."""
    s = np.linspace(0, 1, len(ids))
    return {i: (a0 + (a1 - a0) * sk, b + bulge * np.sin(np.pi * sk)) for i, sk in zip(ids, s)}


def _chain(edges):
    """Point ids in order along a path given as consecutive edges."""
    return [edges[0][0]] + [b for _, b in edges]


def _face_template(openness: float, mouth: float, brow: float) -> dict[int, tuple[float, float]]:
    """Contour points in face units (a: -1 image-left .. 1 image-right, b: -1 top .. 1 chin)."""
    c = FACE_CONTOURS
    oval = _chain(c["FACE_OVAL"])[:-1]
    pts = {p: (np.sin(2 * np.pi * k / len(oval)), -np.cos(2 * np.pi * k / len(oval))) for k, p in enumerate(oval)}
    for side, eye, browname in ((-1, "RIGHT_EYE", "RIGHT_EYEBROW"), (1, "LEFT_EYE", "LEFT_EYEBROW")):
        lower, upper = _chain(c[eye][:8]), _chain(c[eye][8:])  # both run outer corner -> inner corner
        outer, inner = side * 0.55, side * 0.2
        pts |= _path(lower, outer, inner, -0.12, 0.06)
        pts |= _path(upper, outer, inner, -0.12, -0.08 * openness)
        bl, bu = _chain(c[browname][:4]), _chain(c[browname][4:])
        pts |= _path(bl, side * 0.62, side * 0.12, -0.3 - 0.06 * brow, -0.04)
        pts |= _path(bu, side * 0.62, side * 0.12, -0.36 - 0.06 * brow, -0.05)
    lips = c["LIPS"]  # outer lower, outer upper, inner lower, inner upper; each runs 61/78 -> 291/308
    pts |= _path(_chain(lips[0:10]), -0.24, 0.24, 0.5, 0.08 + 0.6 * mouth)
    pts |= _path(_chain(lips[10:20]), -0.24, 0.24, 0.5, -0.07)
    pts |= _path(_chain(lips[20:30]), -0.18, 0.18, 0.5, 0.01 + 0.55 * mouth)
    pts |= _path(_chain(lips[30:40]), -0.18, 0.18, 0.5, -0.01)
    return pts


# Non-contour mesh points: a fixed scatter inside the oval (same for every seed, so only motion varies).
_INTERIOR = np.random.default_rng(468).uniform(-1, 1, (FACE_NUM_POINTS, 2)) * [0.8, 0.85]
_INTERIOR *= np.minimum(1.0, 0.85 / np.maximum(np.hypot(*_INTERIOR.T), 1e-6))[:, None]
# Body landmarks on the face, in face units: nose, left eye inner/eye/outer, right ..., ears, mouth.
_POSE_FACE = np.array([
    (0, 0.15), (0.2, -0.12), (0.38, -0.12), (0.55, -0.12), (-0.2, -0.12), (-0.38, -0.12),
    (-0.55, -0.12), (1.0, 0.0), (-1.0, 0.0), (0.22, 0.5), (-0.22, 0.5),
])


def _face(n_frames, openness, mouth, brow):
    """[T, 468 + 11, 3] face points in face units, z from an ellipsoid (negative = toward camera)."""
    ab = np.broadcast_to(np.concatenate([_INTERIOR, _POSE_FACE]), (n_frames, FACE_NUM_POINTS + 11, 2)).copy()
    for t in range(n_frames):  # only 128 contour points per frame; cheap next to the vectorized rest
        for p, (a, b) in _face_template(openness[t], mouth[t], brow[t]).items():
            ab[t, p] = (a, b)
    depth = -0.6 * np.sqrt(np.clip(1 - (ab**2).sum(-1), 0.05, None))
    depth[:, FACE_NUM_POINTS] = -0.9  # nose tip stands out
    return np.concatenate([ab, depth[..., None]], axis=-1)


def _rotation(yaw, pitch, roll):
    """[T, 3, 3] rotations from per-frame angles."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(-1, 3, 3)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return rz @ rx @ ry


def _elbow(shoulder, wrist, upper, fore, pole):
    """3D 2-link IK: elbow [T, 3] toward `pole` for wrist targets (clamped to reach), and the wrist.
    In 3D, so a hand near the chest folds the elbow down and back rather than out to the side."""
    d = wrist - shoulder
    norm = np.linalg.norm(d, axis=-1, keepdims=True)
    dist = np.clip(norm, abs(upper - fore) + 1e-3, 0.98 * (upper + fore))
    u = d / np.maximum(norm, 1e-9)
    along = (upper**2 - fore**2 + dist**2) / (2 * dist)
    h = np.sqrt(np.maximum(upper**2 - along**2, 0))
    perp = pole - (u @ pole)[:, None] * u
    perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
    return shoulder + u * along + h * perp, shoulder + u * dist


# Hand geometry in shoulder widths: MCP (u along the hand, v across toward the thumb), in-plane spread,
# finger length. Order: index, middle, ring, pinky.
_MCP = np.array([(0.27, 0.08), (0.28, 0.025), (0.265, -0.03), (0.24, -0.08)])
_SPREAD = np.array([0.12, 0.0, -0.1, -0.22])
_FINGER = np.array([0.2, 0.22, 0.2, 0.16])
_PHALANX = np.array([0.45, 0.3, 0.25])
_BEND = np.array([1.0, 1.1, 0.7])


def _hand(rng, t, scale):
    """[T, 21, 3] hand points in hand units (u, v, w) * shoulder width, wrist at the origin."""
    n = len(t)
    flex = np.clip(0.5 * (0.7 + _signals(rng, t, 5, 0.2, 1.5)), 0, None)  # [T, 5]: thumb, index..pinky
    spread = 0.08 * _signals(rng, t, 4, 0.2, 1.0)
    out = np.zeros((n, 21, 3))
    # thumb: CMC near the wrist, swinging across the palm as it flexes
    joint = np.tile([0.07, 0.07, 0.0], (n, 1))
    out[:, 1] = joint
    for k, length in enumerate((0.11, 0.08, 0.07)):
        psi = 0.9 - 0.35 * (k + 1) * flex[:, 0]
        phi = 0.5 * (k + 1) * flex[:, 0]
        joint = joint + length * np.stack([np.cos(phi) * np.cos(psi), np.cos(phi) * np.sin(psi), np.sin(phi)], -1)
        out[:, 2 + k] = joint
    for f in range(4):
        joint = np.tile([*_MCP[f], 0.0], (n, 1))
        out[:, 5 + 4 * f] = joint
        psi = _SPREAD[f] + spread[:, f]
        phi = np.zeros(n)
        for k in range(3):
            phi = phi + _BEND[k] * flex[:, 1 + f]
            seg = _FINGER[f] * _PHALANX[k]
            joint = joint + seg * np.stack([np.cos(phi) * np.cos(psi), np.cos(phi) * np.sin(psi), np.sin(phi)], -1)
            out[:, 6 + 4 * f + k] = joint
    return out * scale


ARM_STYLES = ("sign", "rest", "face", "cross", "wide")
STYLES = (*ARM_STYLES, "mixed")


def _arm_target(style_weights, side, reach, sig, S, cx, sy, torso):
    """[T, 3] wrist target: the per-frame blend of each arm style's target (x, y, z in px)."""
    tx, ty = torso[:, 0], torso[:, 1]
    targets = {
        # the signing space: chest to face, the dominant hand roaming further
        "sign": (cx + side * (0.3 + 0.3 * reach * sig[:, 0]) * S + tx, sy + (0.15 - 0.55 * reach * sig[:, 1]) * S + ty,
                 -(0.35 + 0.1 * reach * sig[:, 2]) * S),
        # hanging at rest: the hands below the frame
        "rest": (cx + side * (0.55 + 0.05 * sig[:, 0]) * S + tx, sy + (1.5 + 0.05 * sig[:, 1]) * S + ty,
                 -(0.05 + 0.05 * sig[:, 2]) * S),
        # at the face (in front of it)
        "face": (cx + side * (0.08 + 0.15 * sig[:, 0]) * S + tx, sy - (0.55 + 0.15 * sig[:, 1]) * S + ty,
                 -(0.6 + 0.05 * sig[:, 2]) * S),
        # across the body to the other side
        "cross": (cx - side * (0.15 + 0.2 * sig[:, 0]) * S + tx, sy + (0.25 - 0.3 * sig[:, 1]) * S + ty,
                  -(0.45 + 0.1 * sig[:, 2]) * S),
        # wide and high, out to the side
        "wide": (cx + side * (1.0 + 0.25 * sig[:, 0]) * S + tx, sy - (0.1 + 0.45 * sig[:, 1]) * S + ty,
                 -(0.2 + 0.1 * sig[:, 2]) * S),
    }
    return sum(w[:, None] * np.stack(targets[name], -1) for name, w in style_weights.items())


def _style_weights(rng, t, style):
    """Per-frame weights of each arm style for one arm: one-hot, or for "mixed" a slowly moving
    softmax so that a sequence passes through rest, signing, face, crossing and wide positions."""
    if style != "mixed":
        return {style: np.ones_like(t)}
    logits = 4.0 * _signals(rng, t, len(ARM_STYLES), 0.05, 0.3)
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return dict(zip(ARM_STYLES, w.T))


def synthetic_pose(num_frames: int = 100, seed: int = 0, fps: float = 25.0, width: int = 500,
                   height: int = 500, style: str = "sign") -> Pose:
    """A plausible signing pose: 576-point holistic layout (with world landmarks), XYZC, one person.

    style: where the arms go: "sign" (the signing space, the default), "rest" (hanging, hands below
    the frame), "face", "cross", "wide", or "mixed" (each arm moving between all of them)."""
    if num_frames < 1 or not fps > 0 or width < 1 or height < 1:
        raise ConfigError(f"need num_frames >= 1, fps > 0, width, height >= 1; got "
                          f"{num_frames}, {fps}, {width}, {height}")
    if style not in STYLES:
        raise ConfigError(f"style must be one of {list(STYLES)}; got {style!r}")
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / fps
    S = rng.uniform(0.32, 0.42) * width  # shoulder width, px
    cx, sy = width / 2 + rng.uniform(-0.03, 0.03) * width, 0.6 * height

    sway = _signals(rng, t, 3, 0.08, 0.4)
    torso = np.stack([0.03 * S * sway[:, 0], 0.015 * S * sway[:, 1] + 0.01 * S * np.sin(2 * np.pi * 0.25 * t)], -1)
    body = np.zeros((num_frames, 33, 3))
    body_conf = np.full((num_frames, 33), 0.99)
    lean = 0.04 * sway[:, 2]  # shoulder line tilt, rad
    for name, side in (("LEFT", 1), ("RIGHT", -1)):
        body[:, _P[f"{name}_SHOULDER"], :2] = [cx, sy] + torso + side * S / 2 * np.stack([np.cos(lean), np.sin(lean)], -1)
        body[:, _P[f"{name}_HIP"], :2] = [cx + side * 0.3 * S, sy + 1.35 * S] + 0.3 * torso
        for k, joint in enumerate(("KNEE", "ANKLE")):
            body[:, _P[f"{name}_{joint}"], :2] = [cx + side * 0.3 * S, sy + (2.25 + 0.9 * k) * S]
        body[:, _P[f"{name}_HEEL"], :2] = body[:, _P[f"{name}_ANKLE"], :2] + [0, 0.06 * S]
        body[:, _P[f"{name}_FOOT_INDEX"], :2] = body[:, _P[f"{name}_ANKLE"], :2] + [side * 0.1 * S, 0.12 * S]
    body[:, [_P["LEFT_HIP"], _P["RIGHT_HIP"]], 2] = 0.0
    body[:, [_P["LEFT_SHOULDER"], _P["RIGHT_SHOULDER"]], 2] = -0.15
    body_conf[:, 23:25], body_conf[:, 25:] = 0.6, 0.05  # hips at the frame edge, legs off it

    # Arms: the dominant (right) hand roams chest to face; the other moves less.
    hands = {}
    for name, side, reach in (("LEFT", 1, 0.6), ("RIGHT", -1, 1.0)):
        shoulder = np.concatenate([body[:, _P[f"{name}_SHOULDER"], :2], np.zeros((num_frames, 1))], -1)
        sig = _signals(rng, t, 4, 0.2, 1.1)
        weights = _style_weights(np.random.default_rng([seed, side + 2]), t, style)
        target = _arm_target(weights, side, reach, sig, S, cx, sy, torso)
        elbow3, wrist3 = _elbow(shoulder, target, 0.75 * S, 0.62 * S, np.array([0.4 * side, 1.0, 0.3]))
        elbow, wrist = elbow3[:, :2], wrist3[:, :2]
        shoulder_z = body[:, _P[f"{name}_SHOULDER"], 2]
        body[:, _P[f"{name}_ELBOW"]] = np.concatenate([elbow, (shoulder_z + elbow3[:, 2] / width)[:, None]], -1)
        body[:, _P[f"{name}_WRIST"]] = np.concatenate([wrist, (shoulder_z + wrist3[:, 2] / width)[:, None]], -1)

        local = _hand(rng, t, S)
        axis = wrist - elbow
        angle = np.arctan2(axis[:, 1], axis[:, 0]) + 0.35 * sig[:, 2]
        roll = 0.6 * sig[:, 3]  # pronation: the palm turns, foreshortening the hand's width
        v = local[..., 1] * np.cos(roll)[:, None] - local[..., 2] * np.sin(roll)[:, None]
        w = local[..., 1] * np.sin(roll)[:, None] + local[..., 2] * np.cos(roll)[:, None]
        u_dir = np.stack([np.cos(angle), np.sin(angle)], -1)[:, None]
        v_dir = -side * np.stack([-np.sin(angle), np.cos(angle)], -1)[:, None]  # thumb faces the body's midline
        xy = wrist[:, None] + local[..., :1] * u_dir + v[..., None] * v_dir
        hands[name] = np.concatenate([xy, (w / width)[..., None]], -1)
        for pose_name, hand_index in (("PINKY", 17), ("INDEX", 5), ("THUMB", 4)):
            body[:, _P[f"{name}_{pose_name}"], :2] = xy[:, hand_index]
            body[:, _P[f"{name}_{pose_name}"], 2] = body[:, _P[f"{name}_WRIST"], 2] + w[:, hand_index] / width

    # Face: template in face units, rotated by a slightly moving head, placed above the shoulders.
    fsig = _signals(rng, t, 6, 0.1, 0.8)
    blink = np.clip(1.6 * _signals(rng, t, 1, 0.2, 0.5, terms=2)[:, 0] + 1.1, 0.1, 1.0)
    mouth = np.clip(0.12 * _signals(rng, t, 1, 0.8, 3.0)[:, 0] + 0.04, 0.0, 0.15)
    face_units = _face(num_frames, blink, mouth, fsig[:, 3])
    half = np.array([0.22 * S, 0.3 * S, 0.22 * S])  # face half-width, half-height, depth unit (px)
    rot = _rotation(0.15 * fsig[:, 0], 0.1 * fsig[:, 1], 0.08 * fsig[:, 2])
    face_px = np.einsum("tij,tpj->tpi", rot, face_units * half)
    head = np.stack([cx + 0.02 * S * fsig[:, 4], sy - 0.62 * S + 0.02 * S * fsig[:, 5]], -1) + torso
    face_xy = head[:, None] + face_px[..., :2]
    face = np.concatenate([face_xy[:, :FACE_NUM_POINTS], face_px[:, :FACE_NUM_POINTS, 2:] / width], -1)
    body[:, :11, :2] = face_xy[:, FACE_NUM_POINTS:]
    body[:, :11, 2] = -0.35 + face_px[:, FACE_NUM_POINTS:, 2] / width

    # World landmarks: metres from the hip midpoint, assuming 0.38 m shoulders.
    hip_mid = body[:, [_P["LEFT_HIP"], _P["RIGHT_HIP"]], :2].mean(axis=1, keepdims=True)
    metres = 0.38 / S
    world = np.concatenate([(body[..., :2] - hip_mid) * metres, body[..., 2:] * width * metres], -1)

    data = np.concatenate([body, face, hands["LEFT"], hands["RIGHT"], world], axis=1)
    conf = np.concatenate([body_conf, np.ones((num_frames, FACE_NUM_POINTS + 42)), body_conf], axis=1)
    body_ = NumPyPoseBody(fps=fps, data=data[:, None].astype(np.float32), confidence=conf[:, None].astype(np.float32))
    return Pose(holistic_header(width, height), body_)


def default_sequence(num_frames: int = 100, seed: int = 0, style: str = "sign") -> PoseSequence:
    """The synthetic signer, reduced and normalized like a real file."""
    return load_sequence(synthetic_pose(num_frames=num_frames, seed=seed, style=style))
