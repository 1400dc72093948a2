"""Stitching the parts into the frame (issue 14): the vectorised `hpv.runtime.stitch` against a slow
per-pixel reference written from docs/stitching.md; the half-pixel convention; occlusion order on
constructed poses (a hand over the face covers it, a hand behind the body is hidden); and the shared
test vectors (stitch_vectors.json, for app teams' ports) replay to what they record.

Regenerate the vectors after a deliberate change of the stitch or the box rule (and tell the app
teams): python -m tests.parts.test_stitch"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from hpv.parts import PARTS, BoxState, CropTransform, PartBox, track_boxes
from hpv.pose import load_sequence
from hpv.pose.keypoints import index, keypoints
from hpv.runtime.stitch import BEHIND_BODY, PartLayer, layer_order, sample_crop, stitch

VECTORS = Path(__file__).parent / "stitch_vectors.json"
SIGNER = Path(__file__).resolve().parents[2] / "examples" / "signer.pose"
TOLERANCE = 1e-5


# --- the reference: one frame pixel at a time, as docs/stitching.md states it ---------------------

def reference_stitch(frame: np.ndarray, layers: dict[str, PartLayer], order) -> np.ndarray:
    out = np.array(frame, np.float64)
    _, rows, cols = out.shape
    for name in order:
        layer = layers[name]
        t = layer.transform
        alpha = np.asarray(layer.alpha, np.float64)[0]
        color = np.asarray(layer.color, np.float64)
        s = t.size

        def tap(r, c):  # premultiplied colour and alpha of crop pixel (row r, column c); 0 outside
            if 0 <= r < s and 0 <= c < s:
                return np.append(color[:, r, c] * alpha[r, c], alpha[r, c])
            return np.zeros(4)

        for i in range(rows):
            for j in range(cols):
                u = (j + 0.5 - t.ox) / t.sx - 0.5
                v = (i + 0.5 - t.oy) / t.sy - 0.5
                c0, r0 = math.floor(u), math.floor(v)
                fu, fv = u - c0, v - r0
                p = ((1 - fu) * (1 - fv) * tap(r0, c0) + fu * (1 - fv) * tap(r0, c0 + 1)
                     + (1 - fu) * fv * tap(r0 + 1, c0) + fu * fv * tap(r0 + 1, c0 + 1))
                out[:, i, j] = p[:3] + (1 - p[3]) * out[:, i, j]
    return out


def random_layer(rng, name, transform) -> PartLayer:
    s = transform.size
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    soft = np.clip(1.2 - np.hypot(xx - s / 2, yy - s / 2) / (s / 2), 0, 1)  # a soft disc, as a part's alpha
    return PartLayer(name, rng.uniform(0, 1, (3, s, s)).astype(np.float32),
                     (soft * rng.uniform(0.6, 1.0, (s, s)))[None].astype(np.float32), transform)


def box(name, cx, cy, side, mirror=None) -> PartBox:
    return PartBox(name, cx, cy, side, BoxState.SEEN, PARTS[name].mirror if mirror is None else mirror)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stitch_matches_the_reference(seed):
    """Three parts (the left hand mirrored) of 16 px crops, upscaled and downscaled, one partly out
    of the frame, into a 48 px frame."""
    rng = np.random.default_rng(seed)
    res = 48
    boxes = {"face": box("face", rng.uniform(150, 350), rng.uniform(80, 200), rng.uniform(100, 220)),
             "left_hand": box("left_hand", rng.uniform(300, 520), rng.uniform(200, 400), rng.uniform(60, 140)),
             "right_hand": box("right_hand", rng.uniform(-20, 200), rng.uniform(200, 500), rng.uniform(20, 140))}
    layers = {n: random_layer(rng, n, b.transform(16, res)) for n, b in boxes.items()}
    frame = rng.uniform(0, 1, (3, res, res)).astype(np.float32)
    order = ("face", "left_hand", "right_hand")
    got = stitch(frame, layers, order)
    np.testing.assert_allclose(got, reference_stitch(frame, layers, order), atol=TOLERANCE)
    assert got.dtype == np.float32 and got.shape == frame.shape


def test_work_arrays_reused_across_sizes_and_threads_change_nothing():
    """A paste's work arrays are kept per thread from one call to the next (`stitch.Scratch`):
    pastes of growing and shrinking crops, in one thread and in two at once, still match the
    reference, and what a paste returns shares no memory with them."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    res = 96
    cases = []
    for s, side in ((24, 200), (8, 60), (32, 330), (16, 120)):
        b = box("right_hand", rng.uniform(150, 350), rng.uniform(150, 350), side)
        cases.append(({"right_hand": random_layer(rng, "right_hand", b.transform(s, res))},
                      rng.uniform(0, 1, (3, res, res)).astype(np.float32)))

    def run_all():
        return [stitch(frame, layers) for layers, frame in cases]

    want = [reference_stitch(frame, layers, ("right_hand",)) for layers, frame in cases]
    first = run_all()
    with ThreadPoolExecutor(2) as pool:
        both = [f.result() for f in [pool.submit(run_all), pool.submit(run_all)]]
    for got in (first, run_all(), *both):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, atol=TOLERANCE)
    assert not any(np.shares_memory(a, b) for a in first for b in first if a is not b)


def test_a_crop_at_one_frame_pixel_per_crop_pixel_is_copied_exactly():
    """The half-pixel convention: at scale 1 and an integer offset, crop pixel centres land on frame
    pixel centres: an opaque crop is copied as is (mirrored for the left hand), nothing bleeds."""
    rng = np.random.default_rng(4)
    s, res = 8, 32
    frame = np.zeros((3, res, res), np.float32)
    color = rng.uniform(0, 1, (3, s, s)).astype(np.float32)
    for name, flip in (("right_hand", False), ("left_hand", True)):
        t = box(name, 12 * 512 / res, 16 * 512 / res, s * 512 / res).transform(s, res)  # rows/cols 12..20
        out = stitch(frame, [PartLayer(name, color, np.ones((1, s, s), np.float32), t)])
        want = color[:, :, ::-1] if flip else color
        np.testing.assert_allclose(out[:, 12:20, 8:16], want, atol=1e-6)
        out[:, 12:20, 8:16] = 0
        assert not out.any()
        np.testing.assert_allclose(sample_crop(stitch(frame, [PartLayer(name, color, np.ones((1, s, s)), t)]), t),
                                   color, atol=1e-6)  # and the crop sampled back is the crop


def test_alpha_zero_changes_nothing_and_a_real_size_stitch_is_quick():
    rng = np.random.default_rng(5)
    res, s = 768, 64
    frame = rng.uniform(0, 1, (3, res, res)).astype(np.float32)
    boxes = {"face": box("face", 256, 130, 190), "left_hand": box("left_hand", 380, 300, 120),
             "right_hand": box("right_hand", 90, 260, 130)}
    clear = {n: PartLayer(n, rng.uniform(0, 1, (3, s, s)), np.zeros((1, s, s)), b.transform(s, res))
             for n, b in boxes.items()}
    np.testing.assert_array_equal(stitch(frame, clear), frame)
    layers = {n: random_layer(rng, n, b.transform(s, res)) for n, b in boxes.items()}
    start = time.perf_counter()
    for _ in range(5):
        stitch(frame, layers, tuple(boxes))
    per_frame_ms = (time.perf_counter() - start) / 5 * 1e3
    assert per_frame_ms < 25, per_frame_ms  # about 2.6 ms at 768 on a busy 2-core CPU, the frame copy included


# --- occlusion on constructed poses ---------------------------------------------------------------

@pytest.fixture(scope="module")
def signer() -> np.ndarray:
    return keypoints(load_sequence(SIGNER))[10]


def with_hand(kp: np.ndarray, hand: str, centre) -> np.ndarray:
    """The real right hand's shape placed as `hand`, centred at `centre` (512 frame)."""
    out = kp.copy()
    src = list(PARTS["right_hand"].indices)
    pts = kp[src].copy()
    seen = pts[:, 2] > 0
    pts[seen, :2] += np.asarray(centre) - (pts[seen, :2].min(0) + pts[seen, :2].max(0)) / 2
    if hand == "left_hand":
        pts[seen, 0] = 2 * centre[0] - pts[seen, 0]
    out[list(PARTS[hand].indices)] = pts
    wrist = index("POSE_LANDMARKS", f"{hand.split('_')[0].upper()}_WRIST")
    out[wrist] = (*pts[0, :2], 1.0)
    return out


def solid_layers(boxes, colors, res=128, s=16):
    return {n: PartLayer(n, np.broadcast_to(np.asarray(colors[n], np.float32)[:, None, None], (3, s, s)).copy(),
                         np.ones((1, s, s), np.float32), b.transform(s, res))
            for n, b in boxes.items() if b.drawn and n in colors}


RED, BLUE, GREEN, GREY = (1, 0, 0), (0, 0, 1), (0, 1, 0), (0.5, 0.5, 0.5)


def inner(b: PartBox, res=128) -> tuple[slice, slice]:
    """Frame rows and columns well inside a box (a pixel's margin from its edges)."""
    r = res / 512
    x0, y0, x1, y1 = ((b.cx - b.side / 2) * r, (b.cy - b.side / 2) * r, (b.cx + b.side / 2) * r, (b.cy + b.side / 2) * r)
    return slice(math.ceil(y0) + 1, math.floor(y1) - 1), slice(math.ceil(x0) + 1, math.floor(x1) - 1)


@pytest.mark.parametrize("with_z", [False, True])
def test_a_hand_in_front_of_the_face_covers_it(signer, with_z):
    face = track_boxes(signer[None], 25)[0]["face"]
    kp = with_hand(signer, "right_hand", (face.cx + 20, face.cy + 10))
    z = np.zeros(len(kp)) if with_z else None
    if with_z:
        z[index("POSE_LANDMARKS", "RIGHT_WRIST")] = -80.0  # in front of the shoulders
    boxes = track_boxes(kp[None], 25)[0]
    order = layer_order(kp, boxes, z)
    assert order == ("face", "right_hand")  # the left hand is absent in this file
    frame = np.full((3, 128, 128), 0.5, np.float32)
    out = stitch(frame, solid_layers(boxes, {"face": RED, "right_hand": BLUE}), order)
    hand = inner(boxes["right_hand"])
    np.testing.assert_allclose(out[:, hand[0], hand[1]], np.broadcast_to(np.array(BLUE)[:, None, None],
                                                                         out[:, hand[0], hand[1]].shape))
    f = inner(boxes["face"])
    face_only = np.zeros((128, 128), bool)
    face_only[f] = True
    h = boxes["right_hand"]
    face_only[inner(PartBox(h.part, h.cx, h.cy, h.side + 48, h.state, h.mirror))] = False
    assert face_only.any() and np.allclose(out[:, face_only], np.array(RED)[:, None])


def test_a_hand_behind_the_body_is_hidden_and_beside_it_is_drawn(signer):
    kp = with_hand(signer, "right_hand", (256, 380))  # on the chest, inside shoulders-hips
    boxes = track_boxes(kp[None], 25)[0]
    width = float(np.linalg.norm(kp[index("POSE_LANDMARKS", "LEFT_SHOULDER"), :2]
                                 - kp[index("POSE_LANDMARKS", "RIGHT_SHOULDER"), :2]))
    z = np.zeros(len(kp))
    z[index("POSE_LANDMARKS", "RIGHT_WRIST")] = (BEHIND_BODY + 0.2) * width  # behind the back
    assert layer_order(kp, boxes) == ("face", "right_hand")  # no z: drawn
    assert layer_order(kp, boxes, z) == ("face",)
    frame = np.full((3, 128, 128), 0.5, np.float32)
    layers = solid_layers(boxes, {"face": RED, "right_hand": BLUE})
    out = stitch(frame, layers, layer_order(kp, boxes, z))
    hand = inner(boxes["right_hand"])
    np.testing.assert_array_equal(out[:, hand[0], hand[1]], frame[:, hand[0], hand[1]])  # the body shows
    z[index("POSE_LANDMARKS", "RIGHT_WRIST")] = (BEHIND_BODY - 0.1) * width  # near the body: in front
    assert layer_order(kp, boxes, z) == ("face", "right_hand")
    # Behind the body but beside it (reaching back past the hip): visible, drawn.
    kp = with_hand(signer, "right_hand", (60, 420))
    z[index("POSE_LANDMARKS", "RIGHT_WRIST")] = (BEHIND_BODY + 0.2) * width
    assert layer_order(kp, track_boxes(kp[None], 25)[0], z) == ("face", "right_hand")


def test_the_nearer_hand_is_drawn_over_the_other(signer):
    kp = with_hand(with_hand(signer, "right_hand", (240, 360)), "left_hand", (270, 370))
    boxes = track_boxes(kp[None], 25)[0]
    z = np.zeros(len(kp))
    lw, rw = index("POSE_LANDMARKS", "LEFT_WRIST"), index("POSE_LANDMARKS", "RIGHT_WRIST")
    z[lw], z[rw] = -50.0, -10.0
    assert layer_order(kp, boxes, z) == ("face", "right_hand", "left_hand")
    z[lw], z[rw] = -10.0, -50.0
    order = layer_order(kp, boxes, z)
    assert order == ("face", "left_hand", "right_hand")
    out = stitch(np.zeros((3, 128, 128), np.float32), solid_layers(boxes, {"face": RED, "left_hand": GREEN,
                                                                            "right_hand": BLUE}), order)
    overlap = tuple(slice(max(a.start, b.start), min(a.stop, b.stop))
                    for a, b in zip(inner(boxes["left_hand"]), inner(boxes["right_hand"])))
    assert np.allclose(out[:, overlap[0], overlap[1]], np.array(BLUE)[:, None, None])
    # Without z, the larger box (the nearer-looking hand) goes on top.
    big = dict(boxes, left_hand=PartBox("left_hand", boxes["left_hand"].cx, boxes["left_hand"].cy,
                                        boxes["right_hand"].side + 10, BoxState.SEEN, True))
    assert layer_order(kp, big) == ("face", "right_hand", "left_hand")


def test_bad_layers_say_what_is_wrong():
    from hpv.errors import ConfigError

    t = box("face", 256, 256, 100).transform(16, 64)
    with pytest.raises(ConfigError, match=r"\[3, 16, 16\]"):
        PartLayer("face", np.zeros((3, 8, 8)), np.zeros((1, 8, 8)), t)
    layer = PartLayer("face", np.zeros((3, 16, 16)), np.zeros((1, 16, 16)), t)
    with pytest.raises(ConfigError, match="64 frame"):
        stitch(np.zeros((3, 32, 32)), [layer])
    with pytest.raises(ConfigError, match="no layer"):
        stitch(np.zeros((3, 64, 64)), [layer], ["right_hand"])


# --- shared test vectors --------------------------------------------------------------------------

def _round(a, digits=6) -> list:
    return np.round(np.asarray(a, np.float64), digits).tolist()


def make_vectors() -> dict:
    """Small cases, inputs rounded to 6 decimals first so that what the file holds is what ran."""
    rng = np.random.default_rng(2026)
    stitch_cases = []
    for k, (res, s) in enumerate([(12, 4), (20, 6), (16, 8)]):
        frame = np.round(rng.uniform(0, 1, (3, res, res)), 6)
        layers = []
        for name, (cx, cy, side) in zip(("face", "left_hand", "right_hand"),
                                        [(256, 180, 240), (330, 300, 150 + 60 * k), (40 + 100 * k, 330, 130)]):
            t = box(name, cx, cy, side).transform(s, res)
            layer = random_layer(rng, name, t)
            layers.append(PartLayer(name, np.round(layer.color, 6), np.round(layer.alpha, 6), t))
        order = ("face", "left_hand", "right_hand") if k != 1 else ("face", "right_hand", "left_hand")
        expected = reference_stitch(frame, {layer.name: layer for layer in layers}, order)
        stitch_cases.append({
            "resolution": res, "order": list(order), "frame": _round(frame),
            "layers": [{"name": layer.name, "transform": {f: getattr(layer.transform, f) for f in
                                                          ("sx", "sy", "ox", "oy", "size", "resolution")},
                        "color": _round(layer.color), "alpha": _round(layer.alpha)} for layer in layers],
            "expected": _round(expected, 7)})

    # Boxes: the real right hand, noisy, a jump, a two-frame dropout, then gone for good.
    base = keypoints(load_sequence(SIGNER))[10]
    idx = list(PARTS["right_hand"].indices)
    frames = []
    for t in range(24):
        pts = base[idx].copy()
        pts[:, :2] += rng.normal(0, 1.5, (21, 2)) + (0 if t < 10 else 60, 0)
        if t in (14, 15) or t >= 18:
            pts[:] = 0.0
        frames.append(np.round(pts, 3))
    box_case = {"part": "right_hand", "fps": 25.0, "points": [_round(f, 3) for f in frames]}
    box_case["boxes"] = [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in b.to_json().items()}
                         for b in _track_part(box_case)]
    return {"schema_version": 1,
            "about": "Test vectors for docs/stitching.md: `stitch` cases (frame [3,R,R], layers with colour "
                     "[3,S,S], alpha [1,S,S] and crop->frame transform, order back to front, expected frame; "
                     f"match within {TOLERANCE}) and a `boxes` case (one part's 21 points [x, y, confidence] "
                     "per frame in the 512 frame, the rest of the 178 points missing; expected boxes within "
                     "1e-4). Written by python -m tests.parts.test_stitch.",
            "stitch": stitch_cases, "boxes": [box_case]}


def _track_part(case: dict):
    from hpv.parts import BoxTracker

    tracker = BoxTracker(case["part"], case["fps"])
    for pts in case["points"]:
        kp = np.zeros((178, 3), np.float32)
        kp[list(PARTS[case["part"]].indices)] = pts
        yield tracker.update(kp)


def load_vectors() -> dict:
    return json.loads(VECTORS.read_text())


def layers_of(case: dict) -> dict[str, PartLayer]:
    return {layer["name"]: PartLayer(layer["name"], np.array(layer["color"], np.float32),
                                     np.array(layer["alpha"], np.float32), CropTransform(**layer["transform"]))
            for layer in case["layers"]}


def test_vectors_replay():
    vectors = load_vectors()
    assert vectors["schema_version"] == 1 and vectors["stitch"] and vectors["boxes"]
    for case in vectors["stitch"]:
        got = stitch(np.array(case["frame"], np.float32), layers_of(case), case["order"])
        np.testing.assert_allclose(got, case["expected"], atol=TOLERANCE)
    for case in vectors["boxes"]:
        got = [b.to_json() for b in _track_part(case)]
        states = [b["state"] for b in got]
        assert {"seen", "held", "absent"} <= set(states)
        for g, want in zip(got, case["boxes"], strict=True):
            assert g["state"] == want["state"] and g["mirror"] == want["mirror"]
            assert [g[k] for k in ("cx", "cy", "side")] == pytest.approx([want[k] for k in ("cx", "cy", "side")], abs=1e-4)


def test_vectors_are_current():
    """The file is what the reference and the tracker give today: they cannot drift apart."""
    fresh, stored = make_vectors(), load_vectors()
    assert fresh["about"] == stored["about"]
    for a, b in zip(fresh["stitch"], stored["stitch"], strict=True):
        assert a["order"] == b["order"] and a["resolution"] == b["resolution"]
        np.testing.assert_allclose(a["expected"], b["expected"], atol=TOLERANCE)
    for a, b in zip(fresh["boxes"], stored["boxes"], strict=True):
        assert a["points"] == b["points"] and len(a["boxes"]) == len(b["boxes"])
        for x, y in zip(a["boxes"], b["boxes"]):
            assert x["state"] == y["state"] and x["mirror"] == y["mirror"]
            assert [x[k] for k in ("cx", "cy", "side")] == pytest.approx([y[k] for k in ("cx", "cy", "side")], abs=1e-5)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    write_text(VECTORS, json.dumps(make_vectors(), separators=(",", ":")) + "\n")
    print(f"wrote {VECTORS}")


def test_parts_and_stitch_import_light():
    """An app-side port's reference (and the renderer) needs numpy only: no torch, no converters."""
    import subprocess
    import sys

    from tests.test_import_light import HEAVY

    code = ("import sys, hpv.parts, hpv.runtime.stitch\n"
            f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\nassert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sample_crop_antialias_averages_what_plain_sampling_aliases():
    """A one-pixel checkerboard cropped at 1/5 scale: plain bilinear reads single pixels (0 or 1);
    antialiased, the tent filter averages them to about 0.5. A constant frame crops to itself."""
    res = 80
    board = ((np.add.outer(np.arange(res), np.arange(res)) % 2).astype(np.float32))[None]
    t = box("right_hand", 256, 256, 512).transform(16, res)  # 5 frame px per crop px: centres on pixels
    plain, smooth = sample_crop(board, t), sample_crop(board, t, antialias=True)
    assert np.isin(np.round(plain, 5), (0.0, 1.0)).all()
    assert np.abs(smooth - 0.5).max() < 0.1
    np.testing.assert_allclose(sample_crop(np.full((3, res, res), 0.3, np.float32), t, antialias=True), 0.3, atol=1e-6)
