import dataclasses

import pytest
import torch

from hpv.errors import CheckpointError
from hpv.training.cascade import train_pipeline
from hpv.training.config import CONFIGS, Budget

TINY = CONFIGS.get("tiny")


def _weights(result):
    return {n: {k: v.clone() for k, v in s.state_dict().items()} for n, s in result.pipeline.stages.items()}


def test_tiny_run_lowers_the_loss(tmp_path, tiny_dataset):
    cfg = dataclasses.replace(TINY, generator=Budget(steps=30, batch=4, clip=3, lr=3e-3), eval_every=10)
    result = train_pipeline("default", cfg, tmp_path, dataset=tiny_dataset, small=True)
    gen = [h for h in result.history if h["phase"] == "generator"]
    assert gen[-1]["val_psnr_db"] > gen[0]["val_psnr_db"]
    assert {h["phase"] for h in result.history} >= {"generator", "refiner-step0", "upscaler"}
    for path in result.weights.values():
        assert path.is_file() and path.suffix == ".safetensors"


def test_resume_gives_the_same_weights_as_not_stopping(tmp_path, tiny_dataset):
    straight = train_pipeline("default", TINY, tmp_path / "a", dataset=tiny_dataset, small=True)
    # stop midway: run with every phase cut short, then resume with the full config
    half = TINY.scaled(0.5)
    half = dataclasses.replace(half, eval_every=TINY.eval_every, checkpoint_every=TINY.checkpoint_every)
    train_pipeline("default", half, tmp_path / "b", dataset=tiny_dataset, small=True)
    # a cut-short run has other budgets: its checkpoints are refused, so reuse only phase-1 state
    # by resuming the generator from the midway checkpoint written with the full budget instead:
    stopped = train_pipeline_until(tmp_path / "c", tiny_dataset, stop_after_steps=3)
    assert stopped
    resumed = train_pipeline("default", TINY, tmp_path / "c", dataset=tiny_dataset, small=True)
    a, b = _weights(straight), _weights(resumed)
    for stage in a:
        for k in a[stage]:
            assert torch.equal(a[stage][k], b[stage][k]), (stage, k)


def train_pipeline_until(out, dataset, stop_after_steps):
    """Run the full tiny config but kill it (an exception) after N optimizer steps."""
    from hpv.training import loop

    real = loop.run_phase
    count = {"n": 0}

    class Stop(Exception):
        pass

    def counting(phase, *args, **kwargs):
        inner = phase.step_fn

        def step_fn(i, g):
            if count["n"] >= stop_after_steps:
                raise Stop
            count["n"] += 1
            return inner(i, g)

        phase.step_fn = step_fn
        return real(phase, *args, **kwargs)

    import hpv.training.cascade as cascade

    cascade.run_phase = counting
    try:
        train_pipeline("default", TINY, out, dataset=dataset, small=True)
    except Stop:
        return True
    finally:
        cascade.run_phase = real
    return False


def test_corrupt_training_checkpoint_is_a_typed_error(tmp_path, tiny_dataset):
    (tmp_path / "checkpoints").mkdir(parents=True)
    (tmp_path / "checkpoints" / "generator.ckpt.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        train_pipeline("default", TINY, tmp_path, dataset=tiny_dataset, small=True)


def test_resuming_with_another_config_is_refused(tmp_path, tiny_dataset):
    train_pipeline("default", TINY, tmp_path, dataset=tiny_dataset, small=True)
    other = dataclasses.replace(TINY, generator=Budget(steps=9, batch=3, clip=2))
    with pytest.raises(CheckpointError, match="other settings"):
        train_pipeline("default", other, tmp_path, dataset=tiny_dataset, small=True)


def test_baseline_trains_on_the_same_data(tmp_path, tiny_dataset):
    result = train_pipeline("baseline", TINY, tmp_path, dataset=tiny_dataset, small=True)
    assert set(result.weights) == {"pix2pix_lstm", "espcn_x3"}
    assert {h["phase"] for h in result.history} == {"generator", "upscaler"}


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_upscaler_crops_lie_in_the_frame_and_hand_crops_hold_a_hand(share):
    import numpy as np

    from hpv.pose.keypoints import keypoints
    from hpv.pose.synthetic import default_sequence
    from hpv.training.cascade import crop_origin
    from hpv.training.losses import hand_weight

    kp = keypoints(default_sequence(4, seed=3))
    r, c = 128, 32
    g = torch.Generator().manual_seed(0)
    assert all(hand_weight(kp, r, slice(t, t + 1)).any() for t in range(len(kp))), "the sequence shows its hands"
    for t in range(len(kp)):
        hands = hand_weight(kp, r, slice(t, t + 1))[0, 0].numpy()
        for _ in range(20):
            y0, x0 = crop_origin(kp, t, r, c, share, g)
            assert 0 <= y0 <= r - c and 0 <= x0 <= r - c
            if share == 1.0:
                assert hands[y0:y0 + c, x0:x0 + c].any(), "a hand crop must hold part of a hand's box"


def test_hand_crop_share_is_a_share():
    from hpv.errors import ConfigError

    with pytest.raises(ConfigError, match="hand_crops"):
        Budget(steps=1, batch=1, hand_crops=1.5)
