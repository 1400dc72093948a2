
import pydantic
import pytest

from hpv.errors import ConfigError, TargetSpecError, UnknownNameError
from hpv.targets import SCHEMA_PATH, Precision, all_targets, get_target, load_target_file, target_json_schema

TARGETS = sorted(all_targets())


@pytest.mark.parametrize("name", TARGETS)
def test_every_spec_loads_frozen_and_consistent(name):
    t = get_target(name)
    assert t.name == name
    assert set(t.default_precisions) <= set(t.precisions)
    assert all(p in t.tolerance for p in t.precisions)
    with pytest.raises(pydantic.ValidationError):
        t.name = "other"


def test_foundation_targets_exist():
    assert {"onnx-cpu", "onnx-webgpu"} <= set(TARGETS)
    assert get_target("onnx-webgpu").default_precisions == (Precision.FP16,)


def test_unknown_target_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'onnx-cpu'"):
        get_target("onnx-cpuu")


def test_unknown_precision_for_target():
    with pytest.raises(UnknownNameError, match="fp32"):
        get_target("onnx-cpu").check_precision("fp8")


def test_committed_schema_is_current():
    import json

    assert json.loads(SCHEMA_PATH.read_text()) == target_json_schema()


@pytest.mark.parametrize("edit, message", [
    (lambda s: s + '\nunknown_key = 1\n', "unknown_key"),
    (lambda s: s.replace('[tolerance.int8]\nmin_psnr_db = 22.0\n', ''), "no \\[tolerance.int8\\]"),
    (lambda s: s.replace('name = "onnx-cpu"', 'name = "elsewhere"'), "must be elsewhere.toml"),
    (lambda s: s.replace('schema_version = 1', 'schema_version = 99'), "schema_version"),
    (lambda s: s + "\n[[[", "target spec"),
    (lambda s: s.replace("min_psnr_db = 60.0", "min_psnr_db = nan"), "tolerance.fp32.min_psnr_db"),
    (lambda s: s.replace("min_psnr_db = 22.0", "min_psnr_db = -inf"), "tolerance.int8.min_psnr_db"),
    (lambda s: s.replace("max_abs_error = 1e-3", "max_abs_error = nan"), "tolerance.fp32.max_abs_error"),
    (lambda s: s.replace("max_abs_error = 1e-3", "max_abs_error = -1.0"), "tolerance.fp32.max_abs_error"),
])
def test_bad_spec_files_are_typed_errors(tmp_path, edit, message):
    from hpv.targets import SPEC_DIR

    bad = tmp_path / "onnx-cpu.toml"
    bad.write_text(edit((SPEC_DIR / "onnx-cpu.toml").read_text()))
    with pytest.raises(TargetSpecError, match=message) as e:
        load_target_file(bad)
    assert isinstance(e.value, ConfigError)  # the CLI's exit 2, like any bad option
