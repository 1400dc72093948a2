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
