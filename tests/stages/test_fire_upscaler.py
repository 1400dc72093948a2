import pytest
import torch
import torch.nn.functional as F

from hpv.stages import STAGES, build_stage
from hpv.stages.fire_upscaler import FEATURES, bilinear_subpixel_kernel


def upscaler_params(res, out):
    return STAGES.get("fire_upscaler").params(resolution=res, out_resolution=out, width=8)


def old_layout_forward(up, state, image, fields):
    """The earlier layout: 1x1 residual conv + grouped 3x3 base conv to 3*s*s channels, then PixelShuffle."""
    features = up.body(torch.cat([image, fields], dim=1))
    sub = F.conv2d(image, state["base.weight"], padding=1, groups=3) + F.conv2d(
        features, state["residual.weight"], state["residual.bias"])
    return F.pixel_shuffle(sub, up.params.scale).clamp(0.0, 1.0)


@pytest.mark.parametrize("res,out", [(32, 96), (16, 64)])
def test_old_checkpoints_load_to_the_same_function(res, out):
    torch.manual_seed(0)
    up = build_stage("fire_upscaler", upscaler_params(res, out))
    s = up.params.scale
    old = {k: v.clone() for k, v in up.state_dict().items() if not k.startswith("out.")}
    old["residual.weight"] = torch.randn(3 * s * s, FEATURES, 1, 1) * 0.2
    old["residual.bias"] = torch.randn(3 * s * s) * 0.1
    old["base.weight"] = bilinear_subpixel_kernel(s).repeat(3, 1, 1, 1) + 0.05 * torch.randn(3 * s * s, 1, 3, 3)
    image = torch.rand(2, 3, res, res)
    fields = torch.rand(2, 20, res, res)
    want = old_layout_forward(up, old, image, fields)
    up.load_state_dict(dict(old), strict=True)
    (got,) = up(image, fields)
    assert torch.allclose(got, want, atol=1e-5)


def test_a_flat_image_upscales_to_itself_away_from_the_border():
    torch.manual_seed(0)
    up = build_stage("fire_upscaler", upscaler_params(16, 64))
    with torch.no_grad():
        up.out.weight[:FEATURES].zero_()  # no residual: the bilinear base alone
        up.out.weight[-1].zero_()
    image = torch.full((1, 3, 16, 16), 0.4)
    (got,) = up(image, torch.zeros(1, 20, 16, 16))
    assert torch.allclose(got[..., 4:-4, 4:-4], torch.full_like(got[..., 4:-4, 4:-4], 0.4), atol=1e-6)
