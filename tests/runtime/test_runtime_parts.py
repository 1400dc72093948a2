"""The parts half of a frame (`hpv.runtime.parts.PartsStep`, issue 14): which parts are drawn and in
what order, what each part stage is fed (its keypoints in the crop's own frame, mirrored for the left
hand; the frame's crop as context), and the stitch of what they return."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpv.errors import ConfigError
from hpv.parts import PARTS, BoxState, PartBox, PartTracker
from hpv.parts.crops import CROP_SIZE, FRAME_SIZE
from hpv.pipelines import PIPELINES
from hpv.pose import default_sequence, load_sequence
from hpv.pose.augment import mirror_order
from hpv.pose.keypoints import index, keypoints
from hpv.runtime.parts import PartsStep
from hpv.runtime.stitch import layer_order, sample_crop

SIGNER = Path(__file__).resolve().parents[2] / "examples" / "signer.pose"
PART_STAGES = PIPELINES.get("default").part_stages
RES, SIZE = 96, 16


def frame_of(value: float = 0.25) -> np.ndarray:
    return np.full((3, RES, RES), value, np.float32)


def constant(color: float, alpha: float):
    """A part stage that returns one colour and one alpha everywhere, recording its feeds."""
    seen = []

    def run(stage, feeds):
        seen.append((stage, feeds))
        s = feeds["context"].shape[-1]
        return {"color": np.full((1, 3, s, s), color, np.float32), "alpha": np.full((1, 1, s, s), alpha, np.float32)}

    run.seen = seen
    return run


@pytest.fixture(scope="module")
def synthetic() -> np.ndarray:
    return keypoints(default_sequence(num_frames=12, seed=3, style="mixed"))


def test_the_parts_pipeline_draws_each_part_once():
    assert PART_STAGES == {"left_hand": "hand_gen", "right_hand": "hand_gen", "face": "face_gen"}
    assert set(PART_STAGES) == set(PARTS)


def test_calls_are_the_seen_parts_back_to_front(synthetic):
    step = PartsStep(PART_STAGES, SIZE)
    twin = PartTracker(25.0, parts=tuple(PART_STAGES))  # the same boxes, tracked beside it
    run = constant(0.5, 0.0)
    for t, kp in enumerate(synthetic):
        boxes = twin.update(kp)
        _, calls = step(kp, frame_of(), run)
        seen = [n for n in layer_order(kp, boxes) if boxes[n].state is BoxState.SEEN]
        assert [c.part for c in calls] == seen, t
        assert [c.stage for c in calls] == [PART_STAGES[c.part] for c in calls]
        for c in calls:
            assert c.transform == boxes[c.part].transform(SIZE, RES)
            assert c.feeds["keypoints"].shape == (1, 178, 3) and c.feeds["keypoints"].dtype == np.float32
            assert np.array_equal(c.feeds["keypoints"][0], boxes[c.part].model_keypoints(kp))
            assert c.feeds["context"].shape == (1, 3, SIZE, SIZE) and c.feeds["context"].dtype == np.float32
    assert {s for s, _ in run.seen} == {"hand_gen", "face_gen"}


def test_an_unseen_part_is_not_drawn(synthetic):
    kp = synthetic[0].copy()
    kp[index("LEFT_HAND_LANDMARKS", "WRIST"):index("LEFT_HAND_LANDMARKS", "PINKY_TIP") + 1, 2] = 0.0
    _, calls = PartsStep(PART_STAGES, SIZE)(kp, frame_of(), constant(0.5, 1.0))
    assert "left_hand" not in {c.part for c in calls} and "right_hand" in {c.part for c in calls}


def test_zero_alpha_leaves_the_frame_and_full_alpha_paints_the_box(synthetic):
    frame = np.random.default_rng(0).uniform(0, 1, (3, RES, RES)).astype(np.float32)
    out, calls = PartsStep(PART_STAGES, SIZE)(synthetic[0], frame, constant(0.9, 0.0))
    assert calls and np.array_equal(out, frame)
    out, calls = PartsStep(PART_STAGES, SIZE)(synthetic[0], frame, constant(0.9, 1.0))
    top = calls[-1].transform
    x0, y0, x1, y1 = top.frame_extent()
    inner = out[:, int(np.ceil(y0)) + 1:int(y1) - 1, int(np.ceil(x0)) + 1:int(x1) - 1]
    assert inner.size and np.allclose(inner, 0.9, atol=1e-5)
    far = np.ones((RES, RES), bool)  # pixels no crop reaches stay as they were
    for c in calls:
        a, b, d, e = c.transform.frame_extent()
        far[max(0, int(b) - 1):int(np.ceil(e)) + 1, max(0, int(a) - 1):int(np.ceil(d)) + 1] = False
    assert far.any() and np.array_equal(out[:, far], frame[:, far])


def test_context_is_the_frame_under_the_box(synthetic):
    frame = np.random.default_rng(1).uniform(0, 1, (3, RES, RES)).astype(np.float32)
    calls = PartsStep(PART_STAGES, SIZE).crops(synthetic[0], frame)
    for c in calls:
        assert np.array_equal(c.feeds["context"][0], sample_crop(frame, c.transform).astype(np.float32))


def test_each_stage_crops_at_its_own_size(synthetic):
    """The face's crop may be larger than the hands' (the default's is): each call's context, and
    its transform, are at its stage's size, and the box it covers in the frame does not change."""
    sizes = {"hand_gen": SIZE, "face_gen": 24}
    calls = PartsStep(PART_STAGES, sizes).crops(synthetic[0], frame_of())
    same = {c.part: c for c in PartsStep(PART_STAGES, SIZE).crops(synthetic[0], frame_of())}
    assert {c.stage for c in calls} == set(sizes)
    for c in calls:
        s = sizes[c.stage]
        assert c.feeds["context"].shape == (1, 3, s, s) and c.transform.size == s
        assert c.transform.frame_extent() == pytest.approx(same[c.part].transform.frame_extent())
    with pytest.raises(ConfigError, match="crop size for each"):
        PartsStep(PART_STAGES, {"hand_gen": SIZE})


def test_model_keypoints_put_the_crop_on_the_512_frame():
    kp = np.zeros((178, 3), np.float32)
    wrist = index("RIGHT_HAND_LANDMARKS", "WRIST")
    kp[wrist] = (300.0, 200.0, 1.0)
    box = PartBox("right_hand", 300.0, 200.0, 64.0, BoxState.SEEN, False)
    m = box.model_keypoints(kp)
    assert m.shape == (178, 3) and np.allclose(m[wrist], (256.0, 256.0, 1.0))
    assert np.all(m[np.arange(178) != wrist] == 0)  # unseen points stay at 0, confidence 0
    kp[wrist] = (300.0 + 16.0, 200.0 - 32.0, 0.7)  # a quarter of the side right, half up
    assert np.allclose(box.model_keypoints(kp)[wrist], (256.0 + 128.0, 0.0, 0.7))


def test_a_mirrored_left_hand_arrives_as_a_right_hand():
    kp = np.zeros((178, 3), np.float32)
    lw, rw = index("LEFT_HAND_LANDMARKS", "WRIST"), index("RIGHT_HAND_LANDMARKS", "WRIST")
    lt = index("LEFT_HAND_LANDMARKS", "THUMB_TIP")
    kp[lw] = (200.0, 300.0, 1.0)
    kp[lt] = (200.0 + 16.0, 300.0, 1.0)  # the thumb tip a quarter side to the frame's right
    box = PartBox("left_hand", 200.0, 300.0, 64.0, BoxState.SEEN, True)
    m = box.model_keypoints(kp)
    assert np.allclose(m[rw], (256.0, 256.0, 1.0)) and m[lw, 2] == 0
    assert np.allclose(m[index("RIGHT_HAND_LANDMARKS", "THUMB_TIP")], (256.0 - 128.0, 256.0, 1.0))  # mirrored
    order = mirror_order()
    assert np.array_equal(order[order], np.arange(178))  # swapping twice is the identity


def test_the_real_signer_draws_its_right_hand_and_face():
    kp = keypoints(load_sequence(SIGNER))
    step = PartsStep(PART_STAGES, SIZE)
    drawn = set()
    for frame_kp in kp:
        drawn |= {c.part for c in step.crops(frame_kp, frame_of())}
    assert {"right_hand", "face"} <= drawn


def test_reset_starts_a_new_sequence(synthetic):
    step = PartsStep(PART_STAGES, SIZE)
    first = [c.transform for c in step.crops(synthetic[0], frame_of())]
    for kp in synthetic[1:]:
        step.crops(kp, frame_of())
    step.reset()
    assert [c.transform for c in step.crops(synthetic[0], frame_of())] == first
    assert CROP_SIZE > 0 and FRAME_SIZE == 512


def test_a_hand_behind_the_body_is_left_to_the_body_when_depth_is_given():
    from tests.parts.test_stitch import with_hand

    kp = with_hand(keypoints(load_sequence(SIGNER))[0], "right_hand", (256, 380))  # on the chest
    width = float(np.linalg.norm(kp[index("POSE_LANDMARKS", "LEFT_SHOULDER"), :2]
                                 - kp[index("POSE_LANDMARKS", "RIGHT_SHOULDER"), :2]))
    z = np.zeros(len(kp), np.float32)
    z[index("POSE_LANDMARKS", "RIGHT_WRIST")] = 0.6 * width  # well behind the back
    parts = lambda z: [c.part for c in PartsStep(PART_STAGES, SIZE).crops(kp, frame_of(), z)]  # noqa: E731
    assert parts(None) == ["face", "right_hand"] and parts(z) == ["face"]


# --- the compiled default (its parts drawn) against the PyTorch reference ----------------------------

@pytest.fixture(scope="module")
def parts_build(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from hpv.compiler.build import CompileRequest, compile

    return compile(CompileRequest(target="onnx-cpu", pipeline="default", precisions=("fp32",), small=True,
                                  out=tmp_path_factory.mktemp("parts-build")))


def test_every_part_stage_is_built_and_verified(parts_build):
    arts = {a.stage: a for a in parts_build.manifest.artifacts}
    assert {"hand_gen", "face_gen"} <= set(arts)
    for name in ("hand_gen", "face_gen"):
        v = arts[name].verification
        assert v.frames > 0 and v.psnr_db >= v.tolerance.min_psnr_db and np.isfinite(v.psnr_db)


@pytest.mark.parametrize("with_depth", [False, True])
def test_compiled_parts_pipeline_matches_the_reference_rollout(parts_build, with_depth):
    from hpv.metrics import psnr
    from hpv.pose.conditioning import DEPTH, conditioning
    from hpv.pose.keypoints import depth
    from hpv.reference import load_pipeline, rollout
    from hpv.runtime.pipeline import CompiledPipeline

    seq = default_sequence(num_frames=6, seed=4, style="mixed")
    pipe = CompiledPipeline(parts_build.folder, "fp32")
    assert pipe.has_parts and pipe.conditioning_keys == ["keypoints"]
    poses = conditioning(seq, pipe.conditioning_keys)
    if with_depth:
        poses[DEPTH] = depth(seq)
    lp = load_pipeline(PIPELINES.get("default"), small=True)
    want = rollout(lp, poses, steps=1, fps=seq.fps)
    plain = rollout(lp, poses, steps=1, with_parts=False)
    pipe.reset(fps=seq.fps)
    got = np.stack([pipe.frame({k: v[t:t + 1] for k, v in poses.items()}, 1)[0] for t in range(seq.num_frames)])
    assert psnr(got, np.stack(want.frames), 1.0) > 60
    assert np.abs(np.stack(want.frames) - np.stack(plain.frames)).max() > 1e-3  # the parts changed the frame
    pipe.reset(fps=seq.fps)
    off = np.stack([pipe.frame({k: v[t:t + 1] for k, v in poses.items()}, 1, parts=False)[0] for t in range(seq.num_frames)])
    assert psnr(off, np.stack(plain.frames), 1.0) > 60
    assert len(want.inputs["hand_gen"]) > 0 and len(want.inputs["face_gen"]) == seq.num_frames


def test_batched_part_calls_give_each_crop_its_own_outputs(synthetic):
    """Both hands in one stage call (`batched`) return what one call each returns, crop by crop."""
    step = PartsStep(PART_STAGES, SIZE)
    calls = []
    for kp in synthetic:  # a frame that draws both hands
        calls = step.crops(kp, frame_of())
        if sum(c.stage == "hand_gen" for c in calls) == 2:
            break
    assert sum(c.stage == "hand_gen" for c in calls) == 2
    stages_seen = []

    def run(stage, feeds):  # an output that depends on each crop's own feeds
        stages_seen.append((stage, len(feeds["context"])))
        kp = feeds["keypoints"]
        return {"color": feeds["context"] * 0.5 + kp[:, :1, :1, None] / 1e4,
                "alpha": feeds["context"][:, :1] * 0 + kp[:, 1:2, 1:2, None] / 1e3}

    one_each = PartsStep.outputs(calls, run)
    assert [n for _, n in stages_seen] == [1] * len(calls)
    stages_seen.clear()
    batched = PartsStep.outputs(calls, run, batched={"hand_gen"})
    assert ("hand_gen", 2) in stages_seen and len(stages_seen) == len(calls) - 1
    for a, b in zip(one_each, batched, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_stitching_in_place_is_the_same_frame(synthetic):
    step = PartsStep(PART_STAGES, SIZE)
    calls = step.crops(synthetic[0], frame_of())
    outs = PartsStep.outputs(calls, constant(0.9, 0.6))
    frame = np.random.default_rng(0).random((3, RES, RES), dtype=np.float32)
    copy = step.compose(frame, calls, outs)
    same = frame.copy()
    assert step.compose(same, calls, outs, in_place=True) is same
    np.testing.assert_array_equal(copy, same)
    assert not np.array_equal(copy, frame)
    from hpv.errors import ConfigError
    from hpv.runtime.stitch import stitch

    with pytest.raises(ConfigError, match="float32"):
        stitch(frame.astype(np.float64), [], in_place=True)


def _varying(stage, feeds):
    """A part stage whose outputs depend on each crop's own feeds (and on the stage)."""
    kp = feeds["keypoints"]
    shift = 0.1 if stage == "face_gen" else 0.0
    return {"color": np.clip(feeds["context"] * 0.5 + kp[:, :1, :1, None] / 1e4 + shift, 0, 1),
            "alpha": np.clip(feeds["context"][:, :1] * 0 + 0.3 + kp[:, 1:2, 1:2, None] / 1e3, 0, 1)}


@pytest.mark.parametrize("batched", [(), ("hand_gen",)])
def test_drawing_side_by_side_is_the_sequential_frame(synthetic, batched):
    """`draw` with a pool runs the face and the hands at once and pastes as they finish: the frame
    is exactly the one compose draws from the outputs run one after the other, in layer order."""
    from concurrent.futures import ThreadPoolExecutor

    step = PartsStep(PART_STAGES, SIZE)
    frame = np.random.default_rng(1).random((3, RES, RES), dtype=np.float32)
    drawn = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for kp in synthetic:
            calls = step.crops(kp, frame)
            want = step.compose(frame, calls, PartsStep.outputs(calls, _varying, batched))
            beside_stages = []

            def beside(stage, feeds):
                beside_stages.append(stage)
                return _varying(stage, feeds)

            got = PartsStep.draw(frame.copy(), calls, _varying, batched, pool=pool, run_beside=beside)
            assert np.isfinite(got).all()  # assert_array_equal takes NaN for NaN
            np.testing.assert_array_equal(got, want)
            if len(PartsStep.groups(calls, batched)) > 1:
                assert sorted(beside_stages) == sorted(s for s, _ in PartsStep.groups(calls, batched))
                drawn += 1
    assert drawn > 0  # some frames had the face and a hand to run side by side


def test_a_part_stage_failing_side_by_side_raises(synthetic):
    from concurrent.futures import ThreadPoolExecutor

    step = PartsStep(PART_STAGES, SIZE)
    frames = (step.crops(kp, frame_of()) for kp in synthetic)
    calls = next(c for c in frames if len({x.stage for x in c}) > 1)

    def broken(stage, feeds):
        if stage == "hand_gen":
            raise ConfigError("hand_gen is broken")
        return _varying(stage, feeds)

    with ThreadPoolExecutor(max_workers=2) as pool, pytest.raises(ConfigError, match="hand_gen is broken"):
        PartsStep.draw(frame_of(), calls, _varying, pool=pool, run_beside=broken)


def test_compiled_parts_side_by_side_draw_the_same_frames(parts_build):
    """The runtime's default (the face and the hands side by side, one thread each) and one stage
    after the other on every core give the same frames, bit for bit."""
    from hpv.pose.conditioning import conditioning
    from hpv.runtime.pipeline import CompiledPipeline

    seq = default_sequence(num_frames=6, seed=4, style="mixed")
    beside = CompiledPipeline(parts_build.folder, "fp32")
    sequential = CompiledPipeline(parts_build.folder, "fp32", beside=False)
    assert beside._pool is not None and sequential._pool is None
    poses = conditioning(seq, beside.conditioning_keys)
    for pipe in (beside, sequential):
        pipe.reset(fps=seq.fps)
    for t in range(seq.num_frames):
        at = {k: v[t:t + 1] for k, v in poses.items()}
        got = beside.frame(at, 1)
        assert np.isfinite(got).all()  # assert_array_equal takes NaN for NaN
        np.testing.assert_array_equal(got, sequential.frame(at, 1))
