"""The CLI: typed errors exit 2 with a message (never a traceback); a small build works."""

import pickle
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from hpv.cli.compile import compile_command
from hpv.cli.main import cli


def run(*args, command=compile_command):
    return CliRunner().invoke(command, list(args))


def test_list_targets_and_stages():
    r = run("--list-targets")
    assert r.exit_code == 0 and "onnx-cpu" in r.output and "onnx-webgpu" in r.output
    r = run("--list-stages")
    assert r.exit_code == 0 and all(s in r.output for s in ("pix2pix_lstm", "fire_gen", "refiner"))


@pytest.mark.parametrize("args, expected", [
    (["--target", "onnx-cpuu"], "Did you mean 'onnx-cpu'"),
    (["--target", "tpu-xyz"], "Valid targets: coreml, coreml-gpu, coreml-ios18, coreml-mac, onnx-cpu"),
    (["--target", "onnx-cpu", "--stage", "fire_gn"], "Did you mean 'fire_gen'"),
    (["--target", "onnx-cpu", "--precision", "in8"], "Did you mean 'int8'"),
    (["--target", "onnx-webgpu", "--precision", "int8"], "fp16"),
    (["--target", "onnx-cpu", "--pipeline", "fancy"], "unknown pipeline"),
    (["--target", "onnx-cpu", "--weights", "fire_gen"], "STAGE=PATH"),
    (["--target", "onnx-cpu", "--weights", "refnier=gen.safetensors"], "Did you mean 'refiner'"),
])
def test_bad_names_exit_2_with_the_valid_ones(tmp_path, args, expected):
    r = run(*args, "--out", str(tmp_path), "--small")
    assert r.exit_code == 2, r.output
    assert expected in " ".join(r.output.split())
    assert "Traceback" not in r.output
    assert not (tmp_path / "onnx-cpu").exists()


@pytest.mark.parametrize("content", [b"", b"not a pose file at all", "truncate"])
def test_corrupt_or_truncated_pose_exits_2(tmp_path, pose_file, content):
    bad = tmp_path / "bad.pose"
    data = pose_file.read_bytes()
    bad.write_bytes(data[: len(data) * 2 // 3] if content == "truncate" else content)
    r = run("--target", "onnx-cpu", "--small", "--pose", str(bad), "--out", str(tmp_path))
    assert r.exit_code == 2, r.output
    assert str(bad) in " ".join(r.output.split()).replace(" ", "") or "bad.pose" in r.output
    assert "Traceback" not in r.output


def test_checkpoint_with_missing_keys_exits_2(tmp_path):
    from hpv.stages import STAGES, build_stage

    state = build_stage("fire_gen", STAGES.get("fire_gen").small).state_dict()
    state.pop("head.bias")
    torch.save(state, tmp_path / "gen.pt")
    r = run("--target", "onnx-cpu", "--small", "--stage", "fire_gen",
            "--weights", f"fire_gen={tmp_path / 'gen.pt'}", "--out", str(tmp_path))
    assert r.exit_code == 2 and "missing keys: head.bias" in r.output


class _Code:
    def __reduce__(self):
        return (print, ("pickle ran code",))


def test_pickle_checkpoint_with_code_exits_2(tmp_path):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"x": _Code()}, f)
    r = run("--target", "onnx-cpu", "--small", "--stage", "fire_gen",
            "--weights", f"fire_gen={tmp_path / 'evil.pt'}", "--out", str(tmp_path))
    assert r.exit_code == 2 and "refused" in r.output
    assert "pickle ran code" not in r.output


def test_hpv_compile_builds_and_hpv_compile_is_the_same_command(tmp_path):
    r = run("compile", "--target", "onnx-cpu", "--small", "--stage", "fire_upscaler",
            "--precision", "fp32", "--out", str(tmp_path), command=cli)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "onnx-cpu" / "manifest.json").is_file()
    assert (tmp_path / "onnx-cpu" / "fire_upscaler.fp32.onnx").is_file()


def test_console_script_reports_errors_without_traceback():
    proc = subprocess.run([sys.executable, "-c", "from hpv.cli.compile import main; main()",
                           "--target", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown target 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_error_messages_are_printed_as_plain_text(capsys):
    """Brackets in a message (a pip extra, a path with [/]) are printed, never read as markup."""
    import pytest

    from hpv.cli.common import handle_errors
    from hpv.errors import ConfigError

    @handle_errors
    def fails():
        raise ConfigError("pip install 'hpv-compile[tflite]' for /tmp/a[/]b [type=x]")

    with pytest.raises(SystemExit) as e:
        fails()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "hpv-compile[tflite]" in err and "/tmp/a[/]b" in err and "[type=x]" in err


@pytest.mark.parametrize("args", [["--target", "nope"], ["--target", "onnx-cpu", "--pipeline", "nope"],
                                  ["--target", "onnx-cpu", "--precision", "fp64"]])
def test_bad_arguments_are_refused_before_torch_is_imported(args):
    """A typo costs well under the seconds that importing torch and the converters takes."""
    code = ("import sys\nfrom click.testing import CliRunner\nfrom hpv.cli.compile import compile_command\n"
            f"r = CliRunner().invoke(compile_command, {args!r})\n"
            "assert r.exit_code == 2, r.output\nassert 'torch' not in sys.modules, 'torch imported'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_converter_noise_goes_to_a_log_not_the_terminal(tmp_path):
    """absl / TensorFlow INFO lines, torchao's 'Failed to load', pytree warnings: in the log, not in
    the build's own output."""
    pytest.importorskip("litert_torch")
    import os

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "hpv.cli.compile", "--target", "tflite-cpu", "--small",
                          "--stage", "fire_upscaler", "--precision", "fp32", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    noise = [line for line in (run.stdout + run.stderr).splitlines()
             if any(w in line for w in ("absl", "Failed to load", "INFO:", "I0000", "_pytree.py"))]
    assert not noise, noise
    assert "verified" in run.stderr
    log = tmp_path / "hpv-compile-tflite-cpu.log"
    assert log.is_file() and log.stat().st_size > 0


def test_build_output_has_a_progress_line_per_artifact(tmp_path):
    """Each artifact gets a ✓ line with its count, and each step a time-stamped line, in the output
    that a log file receives (no terminal: rich draws no bar there); paths are never wrapped."""
    import re

    from hpv.artifacts.manifest import load_manifest

    out = tmp_path / ("a-long-folder-name-" * 4)  # wider than 80 columns with the rest of the line
    r = run("--target", "onnx-cpu", "--small", "--stage", "fire_upscaler", "--out", str(out))
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    manifest = load_manifest(out / "onnx-cpu")
    n = len(manifest.artifacts)
    assert n == 2
    for a in manifest.artifacts:
        done = [line for line in lines if re.match(rf"\[\d+:\d\d\] ✓ \[[12]/{n}\] {re.escape(a.path)}: verified over "
                                                   rf"\d+ frames, PSNR .* \(\d+\.\d s\)$", line)]
        assert len(done) == 1, r.output
        assert any(re.match(rf"\[\d+:\d\d\] {re.escape(a.path)}: verify on onnxruntime-cpu against PyTorch \(\d+ "
                            r"held-out frames", line) for line in lines), r.output
    assert any(re.match(r"\[\d+:\d\d\] fire_upscaler: export$", line) for line in lines), r.output
    assert any(line.startswith(f"{out}/onnx-cpu/manifest.json") for line in lines), r.output


def test_a_silent_step_gets_a_heartbeat_line_when_output_is_not_a_terminal():
    import io
    import time

    from hpv.cli.common import LogConsole, StepProgress

    buf = io.StringIO()
    out = LogConsole(file=buf)
    assert not out.is_terminal
    with StepProgress("job", heartbeat_s=0.2, out=out) as steps:
        steps.step("converting the thing")
        steps.detail("frame 3/30")
        time.sleep(0.7)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "[0:00] converting the thing"
    still = [line for line in lines if "... still converting the thing, frame 3/30 (" in line]
    assert 1 <= len(still) <= 4 and still[0].endswith(" s so far)"), lines


def test_list_targets_sorted_whole_names_and_defaults_apart():
    r = run("--list-targets")
    assert r.exit_code == 0, r.output
    rows = [line for line in r.output.splitlines() if line.startswith("│")]
    names = [row.split("│")[1].strip() for row in rows]
    assert names == sorted(names) and names[:2] == ["coreml", "coreml-gpu"], names
    assert "built by default" in r.output and "also (--precision)" in r.output
    cells = {row.split("│")[1].strip(): [c.strip() for c in row.split("│")[2:-1]] for row in rows}
    assert cells["onnx-cpu"][1:3] == ["fp32, int8", "-"]
    assert cells["tflite-cpu"][1:3] == ["fp32, int8", "fp16"]
    assert all(len(c) for c in cells["coreml-ios18"])  # nothing cut to '…'
    assert "…" not in r.output
