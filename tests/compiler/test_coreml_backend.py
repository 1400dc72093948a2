"""Every registered stage through Core ML: the explicit-state variant (iOS 17) in every compression
mode it offers, and the stateful variant (iOS 18) with its own compression ops; checked as far as
Linux allows (spec, ops, weights decompressed into PyTorch, reproducible hash)."""

import numpy as np
import pytest
import torch

pytest.importorskip("coremltools")
pytest.importorskip("sklearn")

from hpv.compiler.backends import get_backend  # noqa: E402
from hpv.compiler.build import CompileRequest, compile  # noqa: E402
from hpv.compiler.coreml import macos_check  # noqa: E402
from hpv.compiler.coreml.compress import compress  # noqa: E402
from hpv.compiler.coreml.convert import Deployment, convert  # noqa: E402
from hpv.compiler.coreml.inspect import effective_state_dict, io_signature  # noqa: E402
from hpv.errors import ConfigError, ExportError, TargetSpecError  # noqa: E402
from hpv.stages import STAGES, Stage  # noqa: E402
from hpv.stages.interface import BATCH, Role, StageInterface, TensorSpec  # noqa: E402
from hpv.targets import Precision, get_target, load_target_file  # noqa: E402

VARIANTS = {
    "coreml": ("fp16", "w8", "pal6", "pal4", "prune50"),  # iOS 17, explicit state
    "coreml-ios18": ("w8", "prune50-pal4"),  # iOS 18, stateful
}
COMPRESSION_OPS = {
    ("coreml", "w8"): {"constexpr_affine_dequantize"},
    ("coreml", "pal6"): {"constexpr_lut_to_dense"},
    ("coreml", "pal4"): {"constexpr_lut_to_dense"},
    ("coreml", "prune50"): {"constexpr_sparse_to_dense"},
    ("coreml-ios18", "w8"): {"constexpr_blockwise_shift_scale"},
    ("coreml-ios18", "prune50-pal4"): {"constexpr_lut_to_sparse", "constexpr_sparse_to_dense"},
}


@pytest.fixture(scope="module", params=[(s, t) for s in STAGES.names() for t in VARIANTS], ids=lambda p: f"{p[0]}-{p[1]}")
def built(request, tmp_path_factory):
    stage, target = request.param
    out = tmp_path_factory.mktemp(f"coreml-{stage}-{target}")
    return target, compile(CompileRequest(target=target, stages=(stage,), precisions=VARIANTS[target],
                                          out=out, small=True))


def test_every_mode_checked_on_spec_and_weights(built):
    target, result = built
    assert [a.precision for a in result.manifest.artifacts] == list(VARIANTS[target])
    for a in result.manifest.artifacts:
        v = a.verification
        assert v.checked_on == "coreml-spec+weights"  # never claims a Core ML run
        assert v.psnr_db >= v.tolerance.min_psnr_db and v.frames >= (6 if a.stage == "refiner" else 12)  # refiner: frames with a step
        ops = dict(op.split(":") for op in a.notes["ops"].split(","))
        wanted = COMPRESSION_OPS.get((target, a.precision), set())
        assert wanted <= set(ops), a.notes["ops"]
        if wanted:
            assert a.notes["dense_weights"] == 0  # weight_threshold=0: small layers compressed too
        assert a.canonical_sha256 and a.notes["max_abs_activation"] < 65504


def test_interface_matches_declaration(built):
    target, result = built
    for a in result.manifest.artifacts:
        stage = STAGES.get(a.stage)
        itf = stage.cls(stage.small).interface()
        sig = io_signature(result.folder / a.path)
        stateful = target == "coreml-ios18" and itf.is_recurrent
        assert [s.model_state is not None for s in a.state] == [stateful] * len(itf.state)
        state_inputs = {b.input for b in itf.state} if stateful else set()
        assert [t["name"] for t in sig["inputs"]] == [t.name for t in itf.inputs if t.name not in state_inputs]
        assert all(t["dtype"] == "float32" for t in sig["inputs"] + sig["outputs"])  # I/O typed on purpose
        assert all(s["dtype"] == "float16" for s in sig["states"]) and len(sig["states"]) == len(state_inputs)
        for t in sig["inputs"]:
            declared = itf.input(t["name"]).shape
            assert t["shape"][1:] == list(declared[1:])
            assert t["shape"][0] == ("batch" if target == "coreml" else 1)


def test_check_data_stored_for_the_macos_job(built):
    _, result = built
    for a in result.manifest.artifacts:
        data = macos_check.load_check_data(result.folder / a.check_data.path)
        assert len(data.inputs) == a.check_data.frames == 6
        for name in [t.name for t in a.inputs]:
            assert all(name in f for f in data.inputs)
        # The stored reference is the PyTorch stage itself: the comparison against it is exact.
        verdict = macos_check.compare(a, data.reference, data.reference)
        assert verdict["passed"] and verdict["psnr_db"] >= 100


def test_weights_are_the_artifacts_own(built):
    """The weight-level check runs what the model stores: a 4-bit palettized weight has at most 16
    distinct values, a pruned one is half zeros."""
    target, result = built
    for a in result.manifest.artifacts:
        if a.precision not in ("pal4", "prune50", "prune50-pal4"):
            continue
        stage = STAGES.get(a.stage)
        from hpv.compiler.coreml.convert import fold_batchnorm

        model = fold_batchnorm(stage.cls(stage.small))
        weights = effective_state_dict(result.folder / a.path, model, a.path)
        conv = [w for n, w in weights.items() if w.ndim >= 2]
        if a.precision.endswith("pal4"):
            # Joint sparse + palettized weights store a mask and a 16-entry palette of the kept
            # values, so a pruned zero comes on top of the palette.
            kept = [w[w != 0] if a.precision.startswith("prune") else w for w in conv]
            assert all(len(torch.unique(w)) <= 16 for w in kept)
        if a.precision.startswith("prune50"):
            assert np.mean([float((w == 0).float().mean()) for w in conv]) >= 0.45


def test_two_builds_have_the_same_canonical_hash(tmp_path):
    first = compile(CompileRequest(target="coreml", stages=("fire_upscaler",), precisions=("fp16", "pal4"),
                                   out=tmp_path / "a", small=True))
    second = compile(CompileRequest(target="coreml", stages=("fire_upscaler",), precisions=("fp16", "pal4"),
                                    out=tmp_path / "b", small=True))
    assert [a.canonical_sha256 for a in first.manifest.artifacts] == \
           [a.canonical_sha256 for a in second.manifest.artifacts]


class _Spectral(Stage):
    name = "spectral"
    kind = "generator"

    def interface(self):
        return StageInterface(inputs=(TensorSpec("pose", (BATCH, 3, 8, 8), Role.POSE),),
                              outputs=(TensorSpec("image", (BATCH, 3, 8, 8), Role.IMAGE),))

    def forward(self, pose):
        return (torch.fft.rfft2(pose).abs()[..., :8].repeat(1, 1, 1, 2)[..., :8],)


def test_unconvertible_op_names_op_and_stage():
    with pytest.raises(ExportError, match=r"spectral.*fft_rfft2"):
        convert(_Spectral(None), deployment=Deployment("iOS", 17), stateful=False, batch=1, max_batch=1)


def test_stateful_for_ios17_says_why_not(tmp_path):
    spec = get_target("coreml-ios18")
    text = (f'schema_version = 1\nname = "my-ios17"\ndescription = "x"\nformat = "coreml"\nruntime = "coreml"\n'
            f'compute_units = ["all"]\nfallback = ["cpu"]\nprecisions = ["fp16"]\ndefault_precisions = ["fp16"]\n'
            f'batch = [1]\nverified_on = "{spec.verified_on}"\n[minimums]\nios = 17\n[options]\nstate = "stateful"\n'
            f'[tolerance.fp16]\nmin_psnr_db = 40.0\n')
    path = tmp_path / "my-ios17.toml"
    path.write_text(text)
    with pytest.raises(TargetSpecError, match="needs iOS 18"):
        get_backend("coreml").check_target(load_target_file(path))
    stage = STAGES.get("fire_gen")
    with pytest.raises(ConfigError, match="iOS 18"):
        convert(stage.cls(stage.small), deployment=Deployment("iOS", 17), stateful=True, batch=1, max_batch=1)


def test_joint_compression_needs_ios18():
    with pytest.raises(ConfigError, match="iOS 18"):
        compress(object(), Precision.PRUNE50_PAL4, weight_threshold=0, joint_supported=False)


def test_macos_comparison_flags_a_bad_model(built):
    _, result = built
    a = result.manifest.artifacts[0]
    data = macos_check.load_check_data(result.folder / a.check_data.path)
    rng = np.random.default_rng(0)
    images = {t.name for t in a.outputs if t.role == "image"}
    noisy = [{k: v + (rng.normal(0, 0.5, v.shape) if k in images else 0) for k, v in f.items()} for f in data.reference]
    verdict = macos_check.compare(a, noisy, data.reference)
    assert not verdict["passed"] and verdict["psnr_db"] < a.verification.tolerance.min_psnr_db


def test_macos_results_become_a_valid_profile(built):
    _, result = built
    a = result.manifest.artifacts[0]
    results = [{"artifact": a.path, "unit": unit, "load_ms": 40.0, "first_ms": 9.0, "samples_ms": [3.0, 3.2, 3.1],
                "warmup": 6, "psnr_db": 50.0} for unit in ("CPU_ONLY", "CPU_AND_NE")]
    profile = macos_check.to_profile(result.manifest, "0" * 64, results, model="Mac14,2", os_version="macOS 15.1")
    assert [d.device.id for d in profile.devices] == ["Mac14,2/CPU_ONLY", "Mac14,2/CPU_AND_NE"]
    assert profile.devices[0].artifacts[0].latency.p50_ms == pytest.approx(3.1)


def test_macos_check_refuses_to_run_off_macos(tmp_path, capsys):
    assert macos_check.main([str(tmp_path)]) == 2
    assert "needs macOS" in capsys.readouterr().err


def test_macos_comparison_fails_nan_outputs():
    """A NaN image on the Mac fails, whichever output it is in (min() of [50, nan] is 50)."""
    from types import SimpleNamespace

    outputs = [SimpleNamespace(name=n, role="image", value_range=(0.0, 1.0)) for n in ("a", "b")]
    record = SimpleNamespace(outputs=outputs, verification=SimpleNamespace(tolerance=SimpleNamespace(min_psnr_db=30.0)))
    want = [{"a": np.zeros(4, np.float32), "b": np.zeros(4, np.float32)}]
    got = [{"a": np.full(4, 1e-3, np.float32), "b": np.full(4, np.nan, np.float32)}]
    verdict = macos_check.compare(record, got, want)
    assert not verdict["passed"] and np.isnan(verdict["psnr_db"])
