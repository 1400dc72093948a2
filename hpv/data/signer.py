"""The procedural signer: a plausible person drawn from a pose sequence on chroma green.

No licensed signer video exists, so this is the generators' training target: they learn to map the
conditioning image (`hpv.pose.render`) to this person. Every part is a signed distance field (capsules
for limbs and finger segments, polygons for the torso, palm, eyes, brows and lips, a radial profile
for the face oval and hair) evaluated only over its bounding box and composited with coverage
`clip(0.5 - sdf_px, 0, 1)`. Shapes live in the 512x512 pose frame, so a frame drawn at 128, 256 or
768 is the same picture, only sharper.

Depth: the torso is always at the back; the head (one layer), upper arms, forearms, palms and finger
segments are painted far to near by z. MediaPipe gives hand z relative to the hand's wrist and face z
relative to the head, so hands are placed at the body wrist's z and the face just in front of the
shoulders; a hand nearer than that covers the face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from enum import Enum
from typing import NamedTuple

import numpy as np

from hpv.errors import ConfigError
from hpv.pose.holistic import FACE_CONTOURS
from hpv.pose.layout import PoseLayout
from hpv.pose.sequence import FRAME_SIZE, SHOULDER_WIDTH, PoseSequence

GREEN = (0, 177, 64)  # the app keys g > 0.5, g > 1.5 r, g > 1.5 b; this is well inside that
_SW = SHOULDER_WIDTH  # every size below is a fraction of it, in pose-frame units
FACE_DEPTH = 0.25  # the face's z: this many shoulder widths in front of the shoulders

Color = tuple[int, int, int]


class HairStyle(str, Enum):
    SHORT = "short"  # a cap over the top of the head, ears showing
    BOB = "bob"  # down to the jaw
    LONG = "long"  # down behind the shoulders


@dataclass(frozen=True)
class Appearance:
    """How the signer looks. The product shows one consistent signer: `Appearance()`."""

    skin: Color = (224, 172, 138)
    shirt: Color = (40, 48, 72)  # also the sleeves; dark solid clothing, as interpreters wear
    hair: Color = (56, 38, 28)
    hair_style: HairStyle = HairStyle.SHORT
    hair_volume: float = 0.25  # hair above the forehead, in face half-heights
    fringe: float = 0.3  # how far the fringe comes down the forehead, 0 (none) to 1
    lips: Color = (176, 92, 94)
    iris: Color = (88, 58, 38)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "Color":
                if len(value) != 3 or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in value):
                    raise ConfigError(f"Appearance.{f.name} must be 3 ints in 0..255; got {value!r}")
                object.__setattr__(self, f.name, tuple(int(c) for c in value))
                r, g, b = (c / 255 for c in value)
                # 1.1: the top-lit gradient brightens by up to 6%; keep a margin from the app's key
                if 1.1 * g > 0.5 and g > 1.3 * r and g > 1.3 * b:
                    raise ConfigError(
                        f"Appearance.{f.name} {value!r} is too close to the chroma green the app keys "
                        f"out; pick a color whose green is below 1.3x its red or blue")
        try:
            object.__setattr__(self, "hair_style", HairStyle(self.hair_style))
        except ValueError:
            raise ConfigError(f"hair_style must be one of {[s.value for s in HairStyle]}; "
                              f"got {self.hair_style!r}") from None
        if not 0 <= self.hair_volume <= 0.6:
            raise ConfigError(f"hair_volume must be in [0, 0.6]; got {self.hair_volume}")
        if not 0 <= self.fringe <= 1:
            raise ConfigError(f"fringe must be in [0, 1]; got {self.fringe}")

    @classmethod
    def random(cls, seed: int) -> Appearance:
        """A seeded variation, for training variety."""
        rng = np.random.default_rng(seed)

        def pick(palette, jitter=10):
            base = np.asarray(palette[rng.integers(len(palette))], float)
            return tuple(int(c) for c in np.clip(base + rng.integers(-jitter, jitter + 1, 3), 0, 255))

        skin = pick(_SKINS, 6)
        lips = tuple(int(c) for c in np.clip(np.multiply(skin, (0.8, 0.53, 0.56)) + rng.integers(-8, 9, 3), 0, 255))
        return cls(
            skin=skin, shirt=pick(_SHIRTS), hair=pick(_HAIRS, 6), lips=lips, iris=pick(_IRISES, 6),
            hair_style=list(HairStyle)[rng.integers(len(HairStyle))],
            hair_volume=float(rng.uniform(0.12, 0.4)), fringe=float(rng.uniform(0.0, 0.7)),
        )


_SKINS = ((250, 220, 196), (240, 196, 164), (224, 172, 138), (198, 140, 102), (164, 110, 76),
          (126, 84, 58), (92, 60, 44))
_SHIRTS = ((40, 48, 72), (28, 28, 32), (70, 72, 78), (110, 30, 40), (60, 40, 90), (30, 70, 140),
           (150, 150, 156), (200, 90, 40), (220, 210, 190))
_HAIRS = ((22, 20, 20), (56, 38, 28), (100, 68, 44), (132, 64, 36), (190, 154, 100), (150, 146, 142))
_IRISES = ((88, 58, 38), (50, 34, 26), (70, 110, 160), (110, 90, 52), (96, 112, 130))


# --- signed distance fields over a pixel box: X is [1, W], Y is [H, 1], both in frame units ---


def _unit(x):
    """clip(x, 0, 1) in place; np.clip's Python wrapper costs more than the work on small boxes."""
    return np.minimum(np.maximum(x, 0.0, out=x), 1.0, out=x)


class _Caps(NamedTuple):
    """A tapered capsule from a (radius ra) to b (radius rb), shaded as a cylinder."""

    a: tuple[float, float]
    b: tuple[float, float]
    ra: float
    rb: float
    color: tuple[float, float, float]
    ambient: float
    opacity: float = 1.0


def _capsule_table(caps) -> np.ndarray:
    """[K, 11] float32: ax, ay, bx, by, ra, rb, ambient, opacity, r, g, b."""
    return np.array([(*c.a, *c.b, c.ra, c.rb, c.ambient, c.opacity, *c.color) for c in caps], np.float32)


def _capsules(X, Y, table):
    """sdf and local radius [K, H, W] of K capsules (rows of `_capsule_table`) at once."""
    ax, ay, bx, by, ra, rb = (v[:, None, None] for v in table[:, :6].T)
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    inv = np.where(l2 > 1e-12, 1.0 / np.maximum(l2, 1e-12), 0.0).astype(np.float32)  # a point: t = 0
    px, py = X - ax, Y - ay
    t = px * (dx * inv) + py * (dy * inv)
    _unit(t)
    qx, qy = px - dx * t, py - dy * t
    r = ra + (rb - ra) * t
    return np.sqrt(qx * qx + qy * qy) - r, r


def _polygon(X, Y, verts):
    """Exact sdf of a closed polygon (even-odd fill), all edges at once."""
    v = np.asarray(verts, np.float32)
    e = np.roll(v, 1, axis=0) - v  # edge i runs from vertex i back to vertex i - 1
    vx, vy, ex, ey = (c[:, None, None] for c in (v[:, 0], v[:, 1], e[:, 0], e[:, 1]))
    ee = ex * ex + ey * ey
    inv = np.where(ee > 1e-12, 1.0 / np.maximum(ee, 1e-12), 0.0).astype(np.float32)
    wx, wy = X - vx, Y - vy  # [E, 1, W], [E, H, 1]
    h = wx * (ex * inv) + wy * (ey * inv)
    _unit(h)
    bx, by = wx - ex * h, wy - ey * h
    d = np.sqrt((bx * bx + by * by).min(axis=0))
    # even-odd: a ray to +x crosses edge i where the edge spans the row and the pixel lies on the
    # edge's left; (c1 == c2 == c3) is the crossing test of the classic point-in-polygon loop
    c1, c2 = Y >= vy, Y < vy + ey
    crossing = (c1 == c2) & ((ex * wy > ey * wx) == c1)
    inside = np.bitwise_xor.reduce(crossing, axis=0)
    return np.where(inside, -d, d)


def _star(X, Y, center, verts):
    """Approximate sdf of a shape star-shaped about `center`: radius minus the outline's radius at
    the same angle (exact for circles; within a few percent for a face-like oval)."""
    rel = np.asarray(verts) - center
    px, py = X - float(center[0]), Y - float(center[1])
    theta = np.arctan2(py, px)
    outline = np.interp(theta, np.arctan2(rel[:, 1], rel[:, 0]), np.hypot(rel[:, 0], rel[:, 1]), period=2 * np.pi)
    return np.sqrt(px * px + py * py) - outline.astype(np.float32)


def _along(X, Y, origin, direction):
    """Signed distance from `origin` along the unit `direction`, per pixel."""
    return (X - float(origin[0])) * float(direction[0]) + (Y - float(origin[1])) * float(direction[1])


def _hull(points):
    """Convex hull (monotone chain): always a simple polygon, however the points fold."""
    pts = sorted(map(tuple, np.asarray(points, float).tolist()))
    if len(pts) < 3:
        return np.asarray(pts)

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    return np.asarray(half(pts) + half(pts[::-1]))


def _shade(sdf, falloff, ambient):
    """Rounded-surface shading: the normal's z for a cylinder whose edge is at sdf 0."""
    q = sdf * (-1.0 / falloff) if np.isscalar(falloff) else -sdf / falloff
    _unit(q)
    return ambient + (1.0 - ambient) * np.sqrt(q * (2.0 - q))


class _Canvas:
    """One frame's float RGB image and the pixel-centre grid, in frame units."""

    def __init__(self, resolution: int):
        self.R = resolution
        self.px = resolution / FRAME_SIZE  # pixels per frame unit
        self.centers = ((np.arange(resolution) + 0.5) / self.px).astype(np.float32)
        self.light = (1.06 - 0.12 * self.centers / FRAME_SIZE).astype(np.float32)  # lit from above
        self.image = np.empty((resolution, resolution, 3), np.float32)

    def pixel_box(self, lo, hi):
        """Pixel index bounds (x0, y0, x1, y1) of frame-unit box [lo, hi] plus the anti-aliasing margin."""
        px, R = self.px, self.R
        return (max(math.floor(float(lo[0]) * px - 1), 0), max(math.floor(float(lo[1]) * px - 1), 0),
                min(math.ceil(float(hi[0]) * px + 1), R), min(math.ceil(float(hi[1]) * px + 1), R))

    def grid(self, x0, y0, x1, y1):
        c = self.centers
        return (slice(y0, y1), slice(x0, x1)), c[None, x0:x1], c[y0:y1, None]

    def box(self, lo, hi):
        """(slices, X, Y) covering frame-unit box [lo, hi] plus the anti-aliasing margin, or None."""
        x0, y0, x1, y1 = self.pixel_box(lo, hi)
        return None if x0 >= x1 or y0 >= y1 else self.grid(x0, y0, x1, y1)

    def coverage(self, sdf):
        alpha = sdf * -self.px
        alpha += 0.5
        return _unit(alpha)

    def paint(self, box, sdf, color, shade=None, opacity=1.0):
        alpha = self.coverage(sdf)
        if opacity != 1.0:
            alpha *= opacity
        light = self.light[box[0], None]
        light = light if shade is None else shade * light
        region = self.image[box]
        region += alpha[..., None] * (np.asarray(color, np.float32) * light[..., None] - region)

    def paint_capsules(self, caps):
        """Composite capsules (far first) in one pass: exact painter's order via transmittance."""
        table = _capsule_table(caps)
        r = table[:, 4:6].max(axis=1)
        lo = np.minimum(table[:, 0:2], table[:, 2:4]).min(axis=0) - r.max()
        hi = np.maximum(table[:, 0:2], table[:, 2:4]).max(axis=0) + r.max()
        g = self.box(lo, hi)
        if g is None:
            return
        box, X, Y = g
        sdf, radius = _capsules(X, Y, table)
        alpha = self.coverage(sdf)
        opacity = table[:, 7]
        if (opacity != 1).any():
            alpha *= opacity[:, None, None]
        shade = _shade(sdf, radius, table[:, 6, None, None])
        clear = 1.0 - alpha
        behind = np.cumprod(clear[::-1], axis=0)[::-1]  # behind[k]: light through layer k and nearer
        weight = alpha * shade
        weight[:-1] *= behind[1:]
        region = self.image[box]
        region *= behind[0][..., None]
        region += np.einsum("khw,kc->hwc", weight, table[:, 8:]) * self.light[box[0], None, None]


def _paint_layers(canvas: _Canvas, layers) -> None:
    """Paint in order: callables as they come, runs of consecutive capsules batched while one
    batch costs less than painting them one by one (a numpy pass costs about 2000 pixels' work)."""
    run: list[_Caps] = []
    ux0 = uy0 = ux1 = uy1 = 0.0
    alone = 0.0
    px = canvas.px

    for item in layers:
        if not isinstance(item, _Caps):
            if run:
                canvas.paint_capsules(run)
                run = []
            item()
            continue
        r = max(item.ra, item.rb)
        x0, x1 = min(item.a[0], item.b[0]) - r, max(item.a[0], item.b[0]) + r
        y0, y1 = min(item.a[1], item.b[1]) - r, max(item.a[1], item.b[1]) + r
        own = ((x1 - x0) * px + 2) * ((y1 - y0) * px + 2)
        if run:
            nx0, ny0, nx1, ny1 = min(ux0, x0), min(uy0, y0), max(ux1, x1), max(uy1, y1)
            union = ((nx1 - nx0) * px + 2) * ((ny1 - ny0) * px + 2)
            if (len(run) + 1) * union <= alone + own + 2000.0 * (len(run) + 1):
                run.append(item)
                ux0, uy0, ux1, uy1, alone = nx0, ny0, nx1, ny1, alone + own
                continue
            canvas.paint_capsules(run)
            run = []
        run.append(item)
        ux0, uy0, ux1, uy1, alone = x0, y0, x1, y1, own
    if run:
        canvas.paint_capsules(run)


# --- the signer's parts ---


def _chain(edges):
    return [edges[0][0]] + [b for _, b in edges]


def _loop(edges_a, edges_b):
    """A closed outline from two chains that share both ends (lower lid + upper lid, ...)."""
    a, b = _chain(edges_a), _chain(edges_b)
    return a + b[-2:0:-1]


_FACE_SHAPES = {
    "oval": _chain(FACE_CONTOURS["FACE_OVAL"])[:-1],
    "right_eye": _loop(FACE_CONTOURS["RIGHT_EYE"][:8], FACE_CONTOURS["RIGHT_EYE"][8:]),
    "left_eye": _loop(FACE_CONTOURS["LEFT_EYE"][:8], FACE_CONTOURS["LEFT_EYE"][8:]),
    "right_lid": _chain(FACE_CONTOURS["RIGHT_EYE"][8:]),
    "left_lid": _chain(FACE_CONTOURS["LEFT_EYE"][8:]),
    # brows: lower and upper edges both run outer -> inner, with their own ends
    "right_brow": _chain(FACE_CONTOURS["RIGHT_EYEBROW"][:4]) + _chain(FACE_CONTOURS["RIGHT_EYEBROW"][4:])[::-1],
    "left_brow": _chain(FACE_CONTOURS["LEFT_EYEBROW"][:4]) + _chain(FACE_CONTOURS["LEFT_EYEBROW"][4:])[::-1],
    "lips": _loop(FACE_CONTOURS["LIPS"][0:10], FACE_CONTOURS["LIPS"][10:20]),
    "mouth": _loop(FACE_CONTOURS["LIPS"][20:30], FACE_CONTOURS["LIPS"][30:40]),
    "top": [10], "chin": [152], "right": [234], "left": [454], "upper_lip": [0], "inner_upper_lip": [13],
}
_BODY = ("LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST",
         "LEFT_HIP", "RIGHT_HIP")
_FINGERS = (("THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP"),
            *((f"{f}_MCP", f"{f}_PIP", f"{f}_DIP", f"{f}_TIP")
              for f in ("INDEX_FINGER", "MIDDLE_FINGER", "RING_FINGER", "PINKY")))
_PALM = ("WRIST", "THUMB_CMC", "INDEX_FINGER_MCP", "MIDDLE_FINGER_MCP", "RING_FINGER_MCP", "PINKY_MCP")


def _lookup(layout: PoseLayout, component: str, names) -> tuple[int, ...] | None:
    """Global indices of `names` in `component`, or None when the layout lacks any of them."""
    try:
        return tuple(layout.index(component, str(n)) for n in names)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Rig:
    """Where each part's points live in a layout; None for parts the layout cannot show."""

    body: dict  # name -> index or None
    face: dict | None  # shape -> indices
    hands: dict  # side -> (palm indices, [finger chains])

    @classmethod
    def of(cls, layout: PoseLayout) -> _Rig:
        body = {n: _lookup(layout, "POSE_LANDMARKS", [n]) for n in _BODY}
        face = {k: _lookup(layout, "FACE_LANDMARKS", v) for k, v in _FACE_SHAPES.items()}
        if any(v is None for v in face.values()):
            face = None
        hands = {}
        for side in ("LEFT", "RIGHT"):
            comp = f"{side}_HAND_LANDMARKS"
            palm, fingers = _lookup(layout, comp, _PALM), [_lookup(layout, comp, f) for f in _FINGERS]
            if palm is not None and all(f is not None for f in fingers):
                hands[side] = (palm, fingers)
        return cls({k: (v[0] if v is not None else None) for k, v in body.items()}, face, hands)


class _Frame:
    """One frame's points, and which are seen (confidence > 0 and finite)."""

    def __init__(self, points, confidence):
        self.xy = points[:, :2].astype(np.float64)
        self.z = points[:, 2].astype(np.float64)
        self.seen = ((confidence > 0) & np.isfinite(points).all(axis=-1)).tolist()

    def ok(self, *idx) -> bool:
        """Whether every index is seen; False for None (a point the layout lacks)."""
        return all(i is not None and self.seen[i] for i in idx)


def render_signer(seq: PoseSequence, resolution: int = 256, appearance: Appearance = Appearance(),
                  *, background: Color = GREEN) -> np.ndarray:
    """uint8 [T, R, R, 3]: the signer of `appearance` posed as `seq`, on `background` (the chroma
    green the app keys out; another color shows which pixels the person covers fully)."""
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 1:
        raise ConfigError(f"resolution must be an int >= 1; got {resolution!r}")
    if not isinstance(appearance, Appearance):
        raise ConfigError(f"appearance must be an Appearance; got {type(appearance).__name__}")
    rig = _Rig.of(seq.layout)
    canvas = _Canvas(int(resolution))
    out = np.empty((seq.num_frames, resolution, resolution, 3), np.uint8)
    fill = np.asarray(background, np.float32)
    if fill.shape != (3,) or not ((fill >= 0) & (fill <= 255)).all():
        raise ConfigError(f"background must be 3 values in 0..255; got {background!r}")
    for t in range(seq.num_frames):
        canvas.image[:] = fill
        _draw(canvas, rig, _Frame(seq.points[t], seq.confidence[t]), appearance)
        np.rint(np.clip(canvas.image, 0, 255, out=canvas.image), out=canvas.image)
        out[t] = canvas.image
    return out


def _draw(canvas: _Canvas, rig: _Rig, f: _Frame, look: Appearance) -> None:
    b = rig.body
    shoulders = f.ok(b["LEFT_SHOULDER"], b["RIGHT_SHOULDER"])
    if shoulders:
        ls, rs = f.xy[b["LEFT_SHOULDER"]], f.xy[b["RIGHT_SHOULDER"]]
        mid, mid_z = (ls + rs) / 2, float(f.z[b["LEFT_SHOULDER"]] + f.z[b["RIGHT_SHOULDER"]]) / 2
    else:
        mid, mid_z = None, 0.0
    head = _head_frame(rig, f)

    if head is not None:
        _hair_back(canvas, head, look)
    if shoulders:
        _torso(canvas, rig, f, ls, rs, mid, head, look)

    layers = []  # (z, capsule or painter); painted far first, ties in insertion order
    if head is not None:
        layers.append((mid_z - FACE_DEPTH * _SW, lambda: _face(canvas, head, look)))
    for side in ("LEFT", "RIGHT"):
        layers += _arm(canvas, rig, f, side, mid_z, look)
    layers.sort(key=lambda layer: -layer[0])
    _paint_layers(canvas, [item for _, item in layers])


def _scaled(color, k):
    return tuple(k * c for c in color)


def _caps(a, b, ra, rb, color, ambient, opacity=1.0):
    return _Caps((float(a[0]), float(a[1])), (float(b[0]), float(b[1])), float(ra), float(rb),
                 tuple(float(c) for c in color), float(ambient), float(opacity))


# --- torso and arms ---


def _torso(canvas, rig, f, ls, rs, mid, head, look):
    across = ls - rs
    sw = float(np.hypot(*across))
    if sw < 1e-6:
        return
    e = across / sw
    up = np.array([e[1], -e[0]])  # image-up when the left shoulder is on the image right
    if up[1] > 0:
        up = -up
    hips = rig.body["LEFT_HIP"], rig.body["RIGHT_HIP"]
    if f.ok(*hips):
        lh, rh = f.xy[hips[0]], f.xy[hips[1]]
    else:  # hips are often off-frame: continue the torso down
        lh, rh = ls - up * 1.35 * _SW - e * 0.2 * _SW, rs - up * 1.35 * _SW + e * 0.2 * _SW
    verts = _hull([ls - up * 0.02 * _SW - e * 0.06 * _SW, rs - up * 0.02 * _SW + e * 0.06 * _SW,
                   mid + up * 0.1 * _SW - e * 0.15 * _SW, mid + up * 0.1 * _SW + e * 0.15 * _SW,
                   lh - e * 0.02 * _SW + up * 0.1 * _SW, rh + e * 0.02 * _SW + up * 0.1 * _SW])
    _fill_polygon(canvas, verts, 0.1 * _SW, look.shirt, falloff=0.35 * _SW, ambient=0.62)

    # neck: from the face down into a round collar
    neck_r = 0.11 * _SW
    top = head["c"] if head is not None else mid + up * 0.5 * _SW
    base = mid + up * (0.02 * _SW + neck_r)  # the neckline's lowest point lies just above the shoulders
    collar = neck_r + 0.022 * _SW
    canvas.paint_capsules([_caps(base, base, collar, collar, _scaled(look.shirt, 0.75), 0.7)])
    g = canvas.box(np.minimum(top, base) - neck_r, np.maximum(top, base) + neck_r)
    if g is not None:
        box, X, Y = g
        sdf, r = _capsules(X, Y, _capsule_table([_caps(top, base, 0.95 * neck_r, neck_r, look.skin, 0.6)]))
        sdf, r = sdf[0], r[0]
        # shadow under the chin: darker the closer to the face
        along = _unit(_along(X, Y, base, up) * (1.0 / (0.22 * _SW)))
        canvas.paint(box, sdf, look.skin, _shade(sdf, r, 0.6) * (1.0 - 0.22 * along))


def _arm(canvas, rig, f, side, mid_z, look):
    """(z, capsule or painter) layers for one arm and its hand."""
    b = rig.body
    s, e, w = b[f"{side}_SHOULDER"], b[f"{side}_ELBOW"], b[f"{side}_WRIST"]
    palm, fingers = rig.hands.get(side, (None, None))
    hand_seen = palm is not None and f.ok(palm[0])
    wrist_xy = f.xy[palm[0]] if hand_seen else (f.xy[w] if f.ok(w) else None)
    # hand z is relative to the hand's own wrist (MediaPipe); anchor it at the body wrist
    wrist_z = float(f.z[w]) if f.ok(w) else mid_z - 0.35 * _SW
    sleeve, cuff, skin = look.shirt, _scaled(look.shirt, 0.8), look.skin
    layers = []
    if f.ok(s, e):
        sxy, exy = f.xy[s], f.xy[e]
        layers.append(((f.z[s] + f.z[e]) / 2, _caps(sxy, exy, 0.095 * _SW, 0.08 * _SW, sleeve, 0.55)))
        if wrist_xy is not None:
            fz = (f.z[e] + wrist_z) / 2
            layers.append((fz, _caps(exy, wrist_xy, 0.082 * _SW, 0.062 * _SW, sleeve, 0.55)))
            d = wrist_xy - exy
            n = float(np.hypot(*d))
            if n > 1e-6:
                d = d / n
                layers.append((fz, _caps(wrist_xy - d * 0.09 * _SW, wrist_xy - d * 0.03 * _SW,
                                         0.066 * _SW, 0.066 * _SW, cuff, 0.55)))
    if palm is None or not hand_seen:
        return layers
    base_z = float(f.z[palm[0]])

    def depth(*idx):
        return wrist_z + float(np.mean(f.z[list(idx)])) - base_z

    if f.ok(*palm):
        pts = f.xy[list(palm)]
        axis = pts[3] - pts[0]
        n = float(np.hypot(*axis))
        perp = np.array([-axis[1], axis[0]]) / n if n > 1e-6 else np.zeros(2)
        verts = _hull(np.vstack([pts, pts[0] + perp * 0.045 * _SW, pts[0] - perp * 0.045 * _SW]))
        layers.append((depth(*palm), lambda: _fill_polygon(canvas, verts, 0.028 * _SW, skin, 0.06 * _SW, 0.62)))
    for k, finger in enumerate(fingers):
        chain = (palm[1],) + finger[1:] if k == 0 else finger  # the thumb starts at its CMC
        r0 = 0.036 * _SW if k == 0 else 0.027 * _SW
        for j in range(len(chain) - 1):
            a, c = chain[j], chain[j + 1]
            if f.ok(a, c):
                ra, rb = r0 * (1 - 0.08 * j), r0 * (1 - 0.08 * (j + 1))  # fingers taper to the tip
                layers.append((depth(a, c), _caps(f.xy[a], f.xy[c], ra, rb, skin, 0.58)))
    return layers


def _fill_polygon(canvas, verts, round_, color, falloff, ambient, opacity=1.0):
    g = canvas.box(verts.min(axis=0) - round_, verts.max(axis=0) + round_)
    if g is None:
        return
    box, X, Y = g
    sdf = _polygon(X, Y, verts) - round_
    canvas.paint(box, sdf, color, _shade(sdf, falloff, ambient) if falloff else None, opacity)


# --- head ---


def _head_frame(rig, f):
    """The face's outline and axes, or None when the face is not seen."""
    if rig.face is None or not all(f.ok(*v) for v in rig.face.values()):
        return None
    P = {k: f.xy[list(v)] for k, v in rig.face.items()}
    top, chin = P["top"][0], P["chin"][0]
    h = float(np.hypot(*(chin - top))) / 2
    if h < 1e-3:
        return None
    down = (chin - top) / (2 * h)
    right = np.array([down[1], -down[0]])
    w = max(float(np.hypot(*(P["left"][0] - P["right"][0]))) / 2, 0.3 * h)
    return {"P": P, "c": P["oval"].mean(axis=0), "h": h, "w": w, "down": down, "right": right}


def _hair_back(canvas, head, look):
    """The hair behind the head (and for long styles, behind the shoulders): drawn before the body."""
    c, h, w, down = head["c"], head["h"], head["w"], head["down"]
    style = look.hair_style
    side = {HairStyle.SHORT: 0.07, HairStyle.BOB: 0.2, HairStyle.LONG: 0.2}[style] * w
    cut = {HairStyle.SHORT: -0.05, HairStyle.BOB: 0.8, HairStyle.LONG: 2.4}[style] * h
    outline = _hair_outline(head, look.hair_volume, side)
    reach = h * (1 + look.hair_volume) + side
    lo = np.minimum(c - reach, c + down * cut - w - side)
    hi = np.maximum(c + reach, c + down * cut + w + side)
    g = canvas.box(lo, hi)
    if g is None:
        return
    box, X, Y = g
    sdf = _star(X, Y, c, outline)
    if style is HairStyle.LONG:  # falls straight down from the sides of the head
        fall, _ = _capsules(X, Y, _capsule_table([_caps(c, c + down * (cut - w), w + side, w + side, look.hair, 0)]))
        sdf = np.minimum(sdf, fall[0])
    below = _along(X, Y, c, down) - cut
    sdf = np.maximum(sdf, below)
    canvas.paint(box, sdf, look.hair, _shade(sdf, 0.3 * h, 0.55))


def _hair_outline(head, volume, side):
    """The oval pushed out: most above the forehead, `side` at the temples."""
    c, h, down = head["c"], head["h"], head["down"]
    rel = head["P"]["oval"] - c
    above = np.clip(-(rel @ down) / h, 0, 1)  # 1 at the top of the oval, 0 from mid-face down
    radius = np.hypot(rel[:, 0], rel[:, 1])
    grow = volume * h * above**0.7 + side * (0.4 + 0.6 * above)
    return c + rel * ((radius + grow) / np.maximum(radius, 1e-6))[:, None]


def _face(canvas, head, look):
    P, c, h, w, down, right = head["P"], head["c"], head["h"], head["w"], head["down"], head["right"]
    skin = look.skin
    if look.hair_style is HairStyle.SHORT:  # ears; longer hair covers them
        ears = [P[s][0] + (P[s][0] - c) * 0.04 for s in ("left", "right")]
        canvas.paint_capsules([_caps(p - down * 0.12 * h, p + down * 0.16 * h, 0.1 * w, 0.08 * w,
                                     _scaled(skin, 0.9), 0.6) for p in ears])

    oval = P["oval"]
    g = canvas.box(oval.min(axis=0), oval.max(axis=0))
    if g is None:
        return
    box, X, Y = g
    sdf = _star(X, Y, c, oval)
    canvas.paint(box, sdf, skin, _shade(sdf, 0.6 * w, 0.68))

    # the nose (the contours have none): soft shading placed from the eyes and upper lip
    eyes = (P["left_eye"].mean(axis=0), P["right_eye"].mean(axis=0))
    between = (eyes[0] + eyes[1]) / 2
    tip = between + 0.7 * (P["upper_lip"][0] - between)
    dark = _scaled(skin, 0.62)
    soft = [_caps(between + 0.2 * (tip - between) + right * 0.07 * w, tip + right * 0.1 * w,
                      0.04 * w, 0.06 * w, dark, 0.0, 0.16)]
    soft.append(_caps(tip - right * 0.11 * w + down * 0.03 * h, tip + right * 0.11 * w + down * 0.03 * h,
                      0.045 * w, 0.045 * w, dark, 0.2, 0.45))
    for s in (-1, 1):
        nostril = tip + right * s * 0.07 * w + down * 0.045 * h
        soft.append(_caps(nostril, nostril, 0.028 * w, 0.028 * w, _scaled(skin, 0.4), 0.5, 0.8))
    canvas.paint_capsules(soft)

    lash = _scaled(look.hair, 0.5)
    for s in ("left", "right"):
        _eye(canvas, P[f"{s}_eye"], look)
        lid = P[f"{s}_lid"]
        canvas.paint_capsules([_caps(a, b, 0.007 * _SW, 0.007 * _SW, lash, 1.0) for a, b in zip(lid[:-1], lid[1:])])
        _fill_polygon(canvas, P[f"{s}_brow"], 0.005 * _SW, _scaled(look.hair, 0.85), 0.015 * _SW, 0.65)
    _mouth(canvas, P, down, h, look)
    _fringe(canvas, head, look)


def _eye(canvas, outline, look):
    """White, iris and pupil, clipped to the lids."""
    g = canvas.box(outline.min(axis=0), outline.max(axis=0))
    if g is None:
        return
    box, X, Y = g
    white = _polygon(X, Y, outline)
    canvas.paint(box, white, (236, 232, 226), _shade(white, 0.02 * _SW, 0.75))
    width = float(np.hypot(*(outline[0] - outline[len(outline) // 2])))  # corner to corner
    cx, cy = (float(v) for v in outline.mean(axis=0))
    centre = np.sqrt((X - cx) ** 2 + (Y - cy) ** 2)
    for radius, color in ((0.23 * width, look.iris), (0.1 * width, (16, 12, 12))):
        canvas.paint(box, np.maximum(centre - radius, white), color)


def _mouth(canvas, P, down, h, look):
    lips = P["lips"]
    g = canvas.box(lips.min(axis=0), lips.max(axis=0))
    if g is None:
        return
    box, X, Y = g
    outer = _polygon(X, Y, lips)
    below_lip = _along(X, Y, P["inner_upper_lip"][0], down)
    lower = _unit(below_lip * (1.0 / (0.08 * h)))
    canvas.paint(box, outer, look.lips, _shade(outer, 0.015 * _SW, 0.6) * (0.88 + 0.12 * lower))
    inner = _polygon(X, Y, P["mouth"])
    canvas.paint(box, inner, (64, 22, 28))
    teeth = np.maximum(inner, below_lip - 0.05 * h)
    canvas.paint(box, teeth, (232, 226, 214))


def _fringe(canvas, head, look):
    """Hair over the top of the forehead, with a side-swept, wavy hairline."""
    P, c, h, w, down, right = head["P"], head["c"], head["h"], head["w"], head["down"], head["right"]
    oval = P["oval"]
    line = -(0.86 - 0.35 * look.fringe) * h
    lo, hi = oval.min(axis=0), oval.max(axis=0)
    g = canvas.box(lo, hi)
    if g is None:
        return
    box, X, Y = g
    u = _along(X, Y, c, right) * (1.0 / w)
    edge = _along(X, Y, c, down) - (line + h * (0.1 * u + 0.035 * np.cos(4.0 * u)))
    sdf = np.maximum(_star(X, Y, c, _hair_outline(head, 0.0, 0.02 * w)), edge)
    canvas.paint(box, sdf, look.hair, _shade(sdf, 0.25 * h, 0.55))
