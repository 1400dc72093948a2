"""The web package's parts (web/src/crops.ts, stitch.ts, parts.ts) in node against hpv's: the shared
stitch vectors (docs/stitching.md), and whole sequences of real poses through PartsStep (boxes,
layer order with and without depth, model keypoints, bilinear crops, the stitch)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hpv.pipelines import PIPELINES

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "parts" / "stitch_vectors.json"
PART_STAGES = PIPELINES.get("default").part_stages


def node(web: Path, *args) -> str:
    return subprocess.run(["node", "test/parts.mjs", *map(str, args)], cwd=web, check=True, capture_output=True,
                          text=True).stdout


def test_the_port_replays_the_stitch_vectors(web):
    vectors = json.loads(VECTORS.read_text())
    got = json.loads(node(web, "vectors", VECTORS))
    for case, frame in zip(vectors["stitch"], got["stitch"], strict=True):
        np.testing.assert_allclose(np.reshape(frame, np.shape(case["expected"])), case["expected"], atol=1e-5)
    for case, boxes in zip(vectors["boxes"], got["boxes"], strict=True):
        for g, want in zip(boxes, case["boxes"], strict=True):
            assert (g["part"], g["state"], g["mirror"]) == (want["part"], want["state"], want["mirror"])
            assert [g[k] for k in ("cx", "cy", "side")] == pytest.approx([want[k] for k in ("cx", "cy", "side")],
                                                                           abs=1e-4)


def pose_case(path: Path, with_depth: bool, resolution: int = 160, sizes: dict | None = None):
    """A real pose's keypoints, its left hand replaced by the right one mirrored (the nearer hand
    alternating by wrist z; on the chest and behind the body for frames 12-15, hidden with depth),
    the left hand dropping out for three frames (held) and the face for seven (held, absent, back);
    a random frame and random part layers per frame; and hpv's PartsStep on them."""
    from hpv.parts import PARTS
    from hpv.pose.keypoints import depth, index, keypoints
    from hpv.pose.reader import load_sequence
    from hpv.runtime.parts import PartsStep

    seq = load_sequence(path)
    kp, z = keypoints(seq)[:24].copy(), depth(seq)[:24].copy()
    left, right = list(PARTS["left_hand"].indices), list(PARTS["right_hand"].indices)
    lw, rw, ls, rs = (index("POSE_LANDMARKS", p) for p in ("LEFT_WRIST", "RIGHT_WRIST", "LEFT_SHOULDER", "RIGHT_SHOULDER"))
    hand = kp[:, right].copy()
    seen = hand[..., 2] > 0
    hand[..., 0] = np.where(seen, 512 - hand[..., 0], 0.0)
    for t in range(12, 16):  # on the chest
        if seen[t].any():
            hand[t, seen[t], :2] += np.array([256.0, 380.0]) - hand[t, seen[t], :2].mean(0)
    kp[:, left], kp[:, lw] = hand, hand[:, 0]
    z[:, lw] = z[:, rw] + 30.0 * (-1.0) ** np.arange(len(kp))
    z[12:16, lw] = (z[12:16, ls] + z[12:16, rs]) / 2 + 150.0  # behind the back
    kp[4:7, left] = 0.0  # held for three frames
    kp[10:17, list(PARTS["face"].indices)] = 0.0  # held, then absent, then starting afresh
    z = z if with_depth else None
    rng = np.random.default_rng(14)
    frame = rng.uniform(0, 1, (3, resolution, resolution)).astype(np.float32)
    # crop sides per stage, the face's unlike the hands' (as the default pipeline's)
    sizes = sizes or {s: 24 if s == "hand_gen" else 36 for s in set(PART_STAGES.values())}
    layers = {p: rng.uniform(0, 1, (len(kp), 4, sizes[s], sizes[s])).astype(np.float32) for p, s in PART_STAGES.items()}
    step = PartsStep(PART_STAGES, sizes, seq.fps)
    want = []
    for t in range(len(kp)):
        calls = step.crops(kp[t], frame, None if z is None else z[t])
        outs = [{"color": layers[c.part][t, None, :3], "alpha": layers[c.part][t, None, 3:]} for c in calls]
        want.append((calls, step.compose(frame, calls, outs)))
    case = {"fps": seq.fps, "resolution": resolution, "sizes": sizes, "part_stages": PART_STAGES, "frames": len(kp),
            "keypoints": kp.tolist(), "depth": None if z is None else z.tolist(), "frame": frame.tolist(),
            "layers": {p: v.reshape(len(kp), -1).tolist() for p, v in layers.items()}}
    return case, want


@pytest.mark.parametrize("with_depth", [True, False], ids=["depth", "no-depth"])
def test_the_port_crops_and_stitches_a_real_pose_as_hpv(web, tmp_path, real_pose, with_depth):
    case, want = pose_case(real_pose, with_depth)
    (tmp_path / "case.json").write_text(json.dumps(case))
    got = json.loads(node(web, "sequence", tmp_path / "case.json", tmp_path / "out.bin"))
    r = case["resolution"]
    frames = np.fromfile(tmp_path / "out.bin", np.float32).reshape(len(want), 3, r, r)
    drawn, hidden = set(), False
    for t, ((calls, stitched), g) in enumerate(zip(want, got, strict=True)):
        assert [c["part"] for c in g] == [c.part for c in calls], t  # the same parts, back to front
        hidden |= 12 <= t < 16 and "left_hand" not in [c.part for c in calls]
        for c, gc in zip(calls, g):
            drawn.add(c.part)
            assert gc["stage"] == c.stage
            tr = c.transform
            assert [gc["transform"][k] for k in ("sx", "sy", "ox", "oy")] == pytest.approx([tr.sx, tr.sy, tr.ox, tr.oy],
                                                                                           abs=1e-6)
            np.testing.assert_allclose(np.reshape(gc["keypoints"], (178, 3)), c.feeds["keypoints"][0], atol=1e-3)
            np.testing.assert_allclose(np.reshape(gc["context"], (3, tr.size, tr.size)), c.feeds["context"][0],
                                       atol=1e-5)
        np.testing.assert_allclose(frames[t], stitched, atol=1e-5)
    assert drawn == set(PART_STAGES)  # every part was drawn at some frame
    assert hidden == with_depth  # the hand behind the back


def test_the_manifest_says_which_part_each_stage_draws(wasm_build):
    """The web runtime reads part -> stage from the manifest (it has no pipeline registry)."""
    from hpv.artifacts.manifest import MANIFEST_NAME, Manifest, load_manifest
    from hpv.errors import ManifestError

    assert load_manifest(wasm_build.folder).part_stages == PART_STAGES
    raw = json.loads((wasm_build.folder / MANIFEST_NAME).read_text())
    for bad, match in [({"left_hand": "no_such_stage"}, "lacks"), ({"tail": "hand_gen"}, "the parts are")]:
        with pytest.raises(ValueError, match=match):
            Manifest.model_validate({**raw, "part_stages": bad})
    folder = wasm_build.folder.parent / "bad"
    folder.mkdir()
    (folder / MANIFEST_NAME).write_text(json.dumps({**raw, "part_stages": {"face": "nope"}}))
    with pytest.raises(ManifestError, match="nope"):
        load_manifest(folder, check_files=False)


def test_the_web_runtime_tells_part_stages_from_the_generator(web, wasm_build, tmp_path):
    from hpv.artifacts.manifest import MANIFEST_NAME

    raw = json.loads((wasm_build.folder / MANIFEST_NAME).read_text())
    got = json.loads(node(web, "manifest", wasm_build.folder / MANIFEST_NAME))
    part_stages = set(PART_STAGES.values())
    assert got["roles"] == {a["path"]: "part" if a["stage"] in part_stages else
                            {"fire_gen": "generator", "refiner": "refiner", "fire_upscaler": "upscaler"}[a["stage"]]
                            for a in raw["artifacts"]}
    assert got["generator"] == "fire_gen" and got["parts"] == PART_STAGES
    # A build of part stages whose manifest predates part_stages: refused, saying to rebuild.
    (tmp_path / "old.json").write_text(json.dumps({k: v for k, v in raw.items() if k != "part_stages"}))
    assert "rebuild" in json.loads(node(web, "manifest", tmp_path / "old.json"))["parts"]["error"]
