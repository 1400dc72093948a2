"""Verification on the WebGPU EP (here SwiftShader, a fallback adapter: its numerics count, its
timings do not). A target spec of one's own with `verified_on = "chromium:webgpu"` verifies each
artifact inside Chromium on onnxruntime-web's WebGPU EP; a diverging EP is refused naming the node
(tests/web/test_divergence.py), unless the build pads the convolutions' input channels (the
onnx-webgpu target's `conv_channel_multiple`), which makes it right here."""

import pytest


def webgpu_spec(tmp_path, pad: bool) -> str:
    """A target of one's own: the onnx-wasm spec verified on the WebGPU EP, fp32, its conv input
    channels padded to a multiple of 4 (as onnx-webgpu's) or not."""
    from hpv.targets import SPEC_DIR

    spec = tmp_path / "my-webgpu.toml"
    text = (SPEC_DIR / "onnx-wasm.toml").read_text()
    text = (text.replace('name = "onnx-wasm"', 'name = "my-webgpu"')
            .replace('verified_on = "chromium:wasm"', 'verified_on = "chromium:webgpu"')
            .replace('default_precisions = ["fp32", "int8"]', 'default_precisions = ["fp32"]'))
    spec.write_text(text.replace("slim = true", "slim = true\nconv_channel_multiple = 4") if pad else text)
    return str(spec)


@pytest.mark.slow
def test_padded_convs_verify_on_the_webgpu_ep(browser_ready, tmp_path):
    """The export-time workaround: with the conv input channels padded (the onnx-webgpu target's
    option) every stage verifies on the WebGPU EP, where unpadded ones diverge here."""
    from hpv.compiler.build import CompileRequest, compile

    build = compile(CompileRequest(target=webgpu_spec(tmp_path, pad=True), out=tmp_path / "out", small=True))
    padded = 0
    for a in build.manifest.artifacts:
        assert "webgpu" in a.verification.checked_on and "adapter" in a.verification.checked_on, a.verification
        assert a.verification.psnr_db >= 60
        padded += a.notes["conv_channels_padded"]
    assert padded  # some stage had a conv off the multiple


@pytest.mark.slow
def test_fp32_build_verifies_on_the_webgpu_ep(browser_ready, tmp_path):
    from hpv.compiler.build import CompileRequest, compile
    from hpv.compiler.web.divergence import EPDivergenceError

    spec = webgpu_spec(tmp_path, pad=False)
    try:
        build = compile(CompileRequest(target=str(spec), out=tmp_path / "out", small=True))
    except EPDivergenceError as e:  # the other outcome: refused naming the node and the EP
        assert e.ep == "webgpu" and "webgpu" in str(e)
        pytest.xfail(f"the WebGPU EP diverges here: {e}")
    for a in build.manifest.artifacts:
        assert "webgpu" in a.verification.checked_on and "adapter" in a.verification.checked_on, a.verification
        assert a.verification.psnr_db >= 60


@pytest.mark.slow
def test_web_frames_on_webgpu_match_the_python_runtime(wasm_build):
    """State and fields kept on the GPU between frames and stages: the same frames as Python."""
    from hpv.compiler.web.page import RuntimePage
    from tests.web.test_web_frames import POSE, psnr, python_frames

    with RuntimePage(wasm_build.folder, POSE, ep="webgpu") as page:
        got, _ = page.frames(4, 1)
    assert psnr(got, python_frames(wasm_build.folder, 4, 1)) >= 45.0


@pytest.mark.slow
def test_a_fallback_adapter_profile_is_never_planned_on(wasm_build, tmp_path):
    from click.testing import CliRunner

    from hpv.cli.main import cli
    from hpv.profiles.schema import load_profile

    out = tmp_path / "gpu.json"
    r = CliRunner().invoke(cli, ["profile", str(wasm_build.folder), "--device", "chromium:webgpu", "--out", str(out),
                                 "--runs", "2", "--warmup", "0", "--rounds", "1"])
    assert r.exit_code == 0, r.output
    device = load_profile(out).devices[0]
    if "fallback" not in device.device.id:
        pytest.skip(f"a real WebGPU adapter here: {device.device.runtimes.get('adapter')}")
    assert "fallback adapter" in device.device.runtimes["adapter"] and "not for planning" in device.device.model
    assert device.artifacts and not device.pipelines  # nothing for the scheduler to plan on
