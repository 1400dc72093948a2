"""Training the part generators (issue 14) at small size: crops cut by the runtime's own PartsStep
from a rollout of the pipeline, cached; each part stage trained on the stitched result in its crop."""

import dataclasses

import numpy as np
import pytest
import torch

from hpv.reference import load_pipeline
from hpv.stages.part_gen import EDGE_TAPER, edge_window
from hpv.pipelines import PIPELINES
from hpv.training.cascade import train_pipeline
from hpv.training.config import CONFIGS, Budget
from hpv.training.parts import cached_part_crops, composite

from tests.training.conftest import TINY_DATA

ZERO = Budget(steps=0, batch=2)
PARTS_ONLY = dataclasses.replace(
    CONFIGS.get("tiny"), data=TINY_DATA, generator=ZERO, refiner=ZERO, upscaler=ZERO,
    parts=Budget(steps=12, batch=4, lr=3e-3), part_sequences=6, eval_every=4, checkpoint_every=4)


@pytest.fixture(scope="module")
def small_parts():
    return load_pipeline(PIPELINES.get("default"), small=True)


def test_parts_only_config_trains_no_whole_frame_stage():
    assert not PARTS_ONLY.trains_cascade() and CONFIGS.get("cpu-parts").parts.steps > 0
    assert not CONFIGS.get("cpu-parts").scaled(0.01).trains_cascade()  # a quick run keeps them at 0


def test_crops_hold_both_part_stages_and_are_cached(small_parts, tmp_path):
    crops = cached_part_crops(small_parts, TINY_DATA, "train", 3, 1, tmp_path)
    assert set(crops) == {"hand_gen", "face_gen"}
    size = small_parts.stages["hand_gen"].interface().input("context").shape[-1]
    for c in crops.values():
        assert len(c) > 0 and c.context.shape == c.target.shape == (len(c), 3, size, size)
        assert c.context.dtype == np.uint8 and c.keypoints.shape == (len(c), 178, 3)
        assert 0 < np.abs(c.context.astype(int) - c.target).mean() < 128  # the pipeline's frame is not the truth
    (cached,) = list(tmp_path.glob("parts-train-*.npz"))
    again = cached_part_crops(small_parts, TINY_DATA, "train", 3, 1, tmp_path)
    assert all(np.array_equal(again[s].target, crops[s].target) for s in crops) and cached.is_file()


def test_composite_keeps_the_context_at_the_crop_border(small_parts):
    stage = small_parts.stages["hand_gen"]
    r = stage.interface().input("context").shape[-1]
    w = stage.window[0, 0]
    ring = 0.5 / max(1.0, EDGE_TAPER * r / 64)  # the outer ring's pixel centres lie half a pixel in
    assert w[r // 2, r // 2] == 1 and w[0].max() <= ring + 1e-6 and edge_window(64)[0, 0, 0].max() <= 0.125
    ctx = torch.rand(2, 3, r, r)
    out = composite(stage, torch.zeros(2, 178, 3), ctx)
    assert (out - ctx)[..., 0, :].abs().max() <= ring + 1e-6


def test_tiny_parts_run_trains_both_part_stages(tmp_path):
    result = train_pipeline("default", PARTS_ONLY, tmp_path, small=True)
    for stage in ("hand_gen", "face_gen"):
        hist = [h for h in result.history if h["phase"] == stage]
        assert hist and all(np.isfinite(h["val_psnr_db"]) and np.isfinite(h["loss"]) for h in hist)
        assert hist[-1]["step"] == PARTS_ONLY.parts.steps
        assert result.weights[stage].is_file()
    assert not {"generator", "upscaler"} & {h["phase"] for h in result.history}


def test_the_colour_loss_reaches_the_colour_where_alpha_is_zero(small_parts):
    """With the blended loss alone, a pixel whose alpha is 0 gives its colour no gradient (the
    shipped hand generator's alpha settled at 0.26 on the hand, showing the blurry frame through);
    `colour_weight` scores the colour itself there too."""
    import copy

    from hpv.training.config import LossConfig
    from hpv.training.parts import part_loss

    stage = copy.deepcopy(small_parts.stages["hand_gen"])
    r = stage.interface().input("context").shape[-1]
    ctx, tgt = torch.rand(2, 3, r, r), torch.rand(2, 3, r, r)
    with torch.no_grad():  # alpha's logit far negative: alpha ~ 0 everywhere
        stage.head.bias[3] = -60.0
    grads = {}
    for w in (0.0, 1.0):
        stage.zero_grad()
        part_loss(stage, torch.zeros(2, 178, 3), ctx, tgt, LossConfig(colour_weight=w)).backward()
        grads[w] = stage.head.bias.grad[:3].abs().sum().item()
    assert grads[0.0] < 1e-12 < grads[1.0]
