import pickle

import pytest
import torch

from hpv.errors import CheckpointError, ConfigError
from hpv.stages import STAGES, Role, build_stage
from hpv.stages.checkpoint import UNTRAINED, load_default_weights, load_weights, save_weights
from hpv.stages.macs import count_macs

NAMES = STAGES.names()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 2])
def test_forward_matches_declared_interface(name, batch):
    stage = build_stage(name, STAGES.get(name).small)
    itf = stage.interface()
    inputs = [torch.rand(t.concrete_shape(batch)) for t in itf.inputs]
    with torch.no_grad():
        outs = stage(*inputs)
    assert isinstance(outs, tuple) and len(outs) == len(itf.outputs)
    for spec, out in zip(itf.outputs, outs):
        assert tuple(out.shape) == spec.concrete_shape(batch), spec.name
        if spec.role is Role.IMAGE and spec.value_range:
            lo, hi = spec.value_range
            assert lo - 1e-6 <= out.min() and out.max() <= hi + 1e-6, spec.name
    for b in itf.state:  # a state output has its input's shape, so it can be fed back
        assert itf.input(b.input).shape == itf.output(b.output).shape


@pytest.mark.parametrize("name", NAMES)
def test_seeded_build_is_deterministic(name):
    a = build_stage(name, STAGES.get(name).small).state_dict()
    b = build_stage(name, STAGES.get(name).small).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_baseline_is_todays_model_at_real_size():
    stage = build_stage("pix2pix_lstm")
    params = sum(p.numel() for p in stage.parameters())
    assert 56.0e6 < params < 57.0e6
    assert abs(count_macs(stage) - 6.05e9) < 0.05e9
    espcn = build_stage("espcn_x3")
    assert 67e3 < sum(p.numel() for p in espcn.parameters()) < 69e3
    assert abs(count_macs(espcn) - 4.45e9) < 0.05e9


def test_default_pipeline_is_much_cheaper_than_baseline():
    from hpv.pipelines import PIPELINES
    from hpv.reference import load_pipeline

    macs = {p: {n: count_macs(s) for n, s in load_pipeline(PIPELINES.get(p)).stages.items()}
            for p in ("default", "baseline")}
    d = macs["default"]
    default_k4 = d["fire_gen"] + 4 * d["refiner"] + d["fire_upscaler"]
    assert default_k4 * 5 < sum(macs["baseline"].values())


def test_bad_params_are_config_errors():
    with pytest.raises(ConfigError, match="multiple"):
        STAGES.get("fire_upscaler").params(resolution=128, out_resolution=500)
    with pytest.raises(ConfigError, match="parameters are"):
        STAGES.get("fire_gen").params(colour="red")
    with pytest.raises(ConfigError, match="power of two"):
        STAGES.get("pix2pix_lstm").params(resolution=200)


# --- checkpoints --------------------------------------------------------------------------

@pytest.fixture
def stage():
    return build_stage("fire_gen", STAGES.get("fire_gen").small)


def test_safetensors_round_trip(stage, tmp_path):
    path = tmp_path / "w.safetensors"
    with torch.no_grad():
        for p in stage.parameters():
            p.add_(1.0)
    sha = save_weights(stage, path)
    fresh = build_stage("fire_gen", STAGES.get("fire_gen").small)
    assert load_weights(fresh, path) == sha
    assert all(torch.equal(a, b) for a, b in zip(stage.state_dict().values(), fresh.state_dict().values()))


def test_torch_state_dict_loads_with_weights_only(stage, tmp_path):
    path = tmp_path / "w.pt"
    torch.save(stage.state_dict(), path)
    assert len(load_weights(stage, path)) == 64


def test_missing_and_unexpected_keys_are_named(stage, tmp_path):
    state = stage.state_dict()
    state.pop("head.weight")
    state["extra.bias"] = torch.zeros(3)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"missing keys: head.weight.*unexpected keys: extra.bias"):
        load_weights(stage, path)


def test_shape_mismatch_is_named(stage, tmp_path):
    other = build_stage("fire_gen", STAGES.get("fire_gen").params(resolution=32, width=12, state=8))
    path = tmp_path / "w.safetensors"
    save_weights(other, path)
    with pytest.raises(CheckpointError, match=r"key 'stem.0.weight' has shape"):
        load_weights(stage, path)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned-by-checkpoint",))


def test_pickle_carrying_code_is_refused_and_not_run(stage, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"stem.0.weight": _Payload()}, f)
    with pytest.raises(CheckpointError, match="refused") as e:
        load_weights(stage, path)
    assert not (tmp_path / "pwned-by-checkpoint").exists()
    # Says what was refused, never torch's hint to load it anyway (weights_only=False, an allowlist).
    assert "(Unsupported operand" in str(e.value)  # what the loader objected to
    assert "weights_only" not in str(e.value) and "safe_globals" not in str(e.value)
    assert "trust" not in str(e.value) and "\x1b" not in str(e.value)


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"PK\x03\x04truncated zip"])
def test_corrupt_checkpoints(stage, tmp_path, content):
    for suffix in (".pt", ".safetensors"):
        path = tmp_path / f"bad{suffix}"
        path.write_bytes(content)
        with pytest.raises(CheckpointError):
            load_weights(stage, path)


def test_missing_checkpoint(stage, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(stage, tmp_path / "nope.safetensors")


@pytest.mark.parametrize("name", NAMES)
def test_without_shipped_weights_a_stage_says_untrained(name):
    stage = build_stage(name, STAGES.get(name).small)
    assert load_default_weights(stage) == UNTRAINED
