import torch
import torch.nn.functional as F

from hpv.stages.blocks import Fire, UpFire


def test_up_fire_computes_fire_of_the_upsampled_concatenation_with_a_fires_weights():
    torch.manual_seed(0)
    fire, up = Fire(12 + 6, 8), UpFire(12, 6, 8)
    up.load_state_dict(fire.state_dict())  # a Fire's checkpoint, its squeeze split by input channels
    low, skip = torch.randn(2, 12, 4, 4), torch.randn(2, 6, 8, 8)
    want = fire(torch.cat([F.interpolate(low, scale_factor=2.0, mode="nearest"), skip], dim=1))
    torch.testing.assert_close(up(low, skip), want, rtol=1e-5, atol=1e-5)
    again = UpFire(12, 6, 8)
    again.load_state_dict(up.state_dict())  # and its own
    torch.testing.assert_close(again(low, skip), want, rtol=1e-5, atol=1e-5)
