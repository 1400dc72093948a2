import numpy as np
import pytest

from hpv.compiler.verify import torch_runner, verify
from hpv.errors import VerificationError
from hpv.stages import STAGES, build_stage
from hpv.targets import Tolerance

from hpv.pose import default_sequence  # noqa: E402
from hpv.pose.keypoints import keypoints  # noqa: E402


def test_a_drifting_state_is_caught_in_the_second_half():
    stage = build_stage("fire_gen", STAGES.get("fire_gen").small)
    itf = stage.interface()
    rng = np.random.default_rng(0)
    kp = keypoints(default_sequence(12, seed=1))
    samples = [{"keypoints": kp[t:t + 1],
                "h_in": np.zeros(itf.input("h_in").concrete_shape(1), np.float32)} for t in range(12)]
    exact = torch_runner(stage)
    calls = {"n": 0}

    def drifting(feeds):  # error that grows frame by frame, as a drifting quantized state gives
        out = exact(feeds)
        calls["n"] += 1
        out["image"] = out["image"] + 0.01 * calls["n"] ** 2
        return out

    good = verify(stage, exact, samples, artifact="ok", checked_on="t", tolerance=Tolerance(min_psnr_db=60),
                  inputs="r", batch=1)
    assert good.psnr_late_db is not None and good.psnr_late_db > 100
    seen = verify(stage, drifting, samples, artifact="drift", checked_on="t", tolerance=Tolerance(min_psnr_db=0.0),
                  inputs="r", batch=1)
    assert seen.psnr_late_db < seen.psnr_db - 1.0
    calls["n"] = 0
    between = (seen.psnr_late_db + seen.psnr_db) / 2
    with pytest.raises(VerificationError) as e:
        verify(stage, drifting, samples, artifact="drift", checked_on="t", tolerance=Tolerance(min_psnr_db=between),
               inputs="r", batch=1)
    assert e.value.metric == "psnr_late_db" and "drifted" in str(e.value)


def _gen_samples(stage, frames: int = 6):
    itf = stage.interface()
    kp = keypoints(default_sequence(frames, seed=1))
    return [{"keypoints": kp[t:t + 1],
             "h_in": np.zeros(itf.input("h_in").concrete_shape(1), np.float32)} for t in range(frames)]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e30])
def test_broken_weights_fail_verification_instead_of_reading_200_db(value):
    """Weights of NaN, inf or 1e30 make PyTorch's own outputs non-finite: an artifact that copies
    them is not 'verified, PSNR 200 dB'."""
    import torch

    stage = build_stage("fire_gen", STAGES.get("fire_gen").small)
    with torch.no_grad():
        for p in stage.parameters():
            p.fill_(value)
    with pytest.raises(VerificationError) as e:
        verify(stage, torch_runner(stage), _gen_samples(stage), artifact="gen.fp32.onnx", checked_on="t",
               tolerance=Tolerance(min_psnr_db=60), inputs="r", batch=1)
    assert e.value.metric == "non_finite_values" and e.value.artifact == "gen.fp32.onnx"
    assert str(e.value).startswith("gen.fp32.onnx: verification failed") and "PyTorch stage" in str(e.value)


def test_non_finite_artifact_outputs_fail_verification():
    stage = build_stage("fire_gen", STAGES.get("fire_gen").small)
    exact = torch_runner(stage)

    def one_nan(feeds):
        out = exact(feeds)
        out["image"] = out["image"].copy()
        out["image"].flat[0] = np.nan
        return out

    with pytest.raises(VerificationError, match="the artifact on t hold NaN or infinity \\(image: 6\\)") as e:
        verify(stage, one_nan, _gen_samples(stage), artifact="gen.fp16.onnx", checked_on="t",
               tolerance=Tolerance(min_psnr_db=0.0), inputs="r", batch=1)
    assert e.value.metric == "non_finite_values" and e.value.measured == 6


def test_a_nan_tolerance_fails_rather_than_disabling_the_check():
    """Tolerance refuses NaN; one that got in anyway (model_construct) must not pass everything."""
    import pydantic

    with pytest.raises(pydantic.ValidationError, match="finite"):
        Tolerance(min_psnr_db=float("nan"))
    stage = build_stage("fire_gen", STAGES.get("fire_gen").small)
    exact = torch_runner(stage)
    for tolerance, metric in ((Tolerance.model_construct(min_psnr_db=float("nan"), max_abs_error=None), "psnr_db"),
                              (Tolerance.model_construct(min_psnr_db=0.0, max_abs_error=float("nan")), "max_abs_error")):
        with pytest.raises(VerificationError) as e:
            verify(stage, exact, _gen_samples(stage), artifact="a", checked_on="t", tolerance=tolerance,
                   inputs="r", batch=1)
        assert e.value.metric == metric
