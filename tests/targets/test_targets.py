
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
    # An opset the exporter cannot produce: it kept 18 while the manifest recorded 99.
    (lambda s: s.replace("opset = 18", 'opset = "eighteen"'), "opset = 'eighteen': write a whole number"),
    (lambda s: s.replace("opset = 18", "opset = 99"), "opset = 99: write a whole number from 13 to 24"),
    (lambda s: s.replace("opset = 18", "opset = 7"), "opset = 7"),
    (lambda s: s.replace("opset = 18", "opset = true"), "opset = True"),
    # Batch sizes: [100000] grew to 24 GB of calibration tensors before it was killed.
    (lambda s: s.replace('batch = "dynamic"', "batch = [-1]"), "batch = \\[-1\\]: write \"dynamic\""),
    (lambda s: s.replace('batch = "dynamic"', "batch = [0]"), "batch = \\[0\\]"),
    (lambda s: s.replace('batch = "dynamic"', "batch = [100000]"), "from 1 to 64"),
    (lambda s: s.replace('batch = "dynamic"', "batch = []"), "batch = \\[\\]"),
    (lambda s: s.replace('batch = "dynamic"', "batch = [1, 1]"), "distinct"),
    (lambda s: s.replace('batch = "dynamic"', 'batch = "fixed"'), "batch = 'fixed'"),
    (lambda s: s.replace("slim = true", "slim = true\nmax_batch = 0"), "max_batch = 0"),
    (lambda s: s.replace("slim = true", "slim = nan"), "options.slim = nan"),
])
def test_bad_spec_files_are_typed_errors(tmp_path, edit, message):
    from hpv.targets import SPEC_DIR

    bad = tmp_path / "onnx-cpu.toml"
    bad.write_text(edit((SPEC_DIR / "onnx-cpu.toml").read_text()))
    with pytest.raises(TargetSpecError, match=message) as e:
        load_target_file(bad)
    assert isinstance(e.value, ConfigError)  # the CLI's exit 2, like any bad option


@pytest.mark.parametrize("opset", [13, 18, 24])
def test_supported_opsets_load(tmp_path, opset):
    from hpv.targets import SPEC_DIR

    spec = tmp_path / "onnx-cpu.toml"
    spec.write_text((SPEC_DIR / "onnx-cpu.toml").read_text().replace("opset = 18", f"opset = {opset}"))
    assert load_target_file(spec).minimums["opset"] == opset


def test_spec_that_is_not_utf8_is_a_typed_error(tmp_path):
    from hpv.targets import SPEC_DIR

    bad = tmp_path / "onnx-cpu.toml"
    text = (SPEC_DIR / "onnx-cpu.toml").read_text().replace("a CPU", "a CPU \u00e9")
    bad.write_bytes(text.encode("latin-1"))
    with pytest.raises(TargetSpecError, match="is not UTF-8 text .*save it as UTF-8"):
        load_target_file(bad)


def test_cli_refuses_a_bad_spec_before_building(tmp_path, monkeypatch):
    """`hpv-compile --target my.toml` with batch [100000]: exit 2 up front (it grew to 24 GB)."""
    from click.testing import CliRunner

    import hpv.compiler.build
    from hpv.cli.compile import compile_command
    from hpv.targets import SPEC_DIR

    def never(*_a, **_k):  # never build here, whatever the spec says
        raise AssertionError("compile ran with an unbounded batch")

    monkeypatch.setattr(hpv.compiler.build, "compile", never)
    spec = tmp_path / "onnx-cpu.toml"
    spec.write_text((SPEC_DIR / "onnx-cpu.toml").read_text().replace('batch = "dynamic"', "batch = [100000]"))
    out = tmp_path / "out"
    run = CliRunner().invoke(compile_command, ["--target", str(spec), "--small", "--out", str(out)])
    assert run.exit_code == 2 and "from 1 to 64" in run.output and "Traceback" not in run.output
    assert not out.exists()
