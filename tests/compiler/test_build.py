"""The compile verb: a build that fails or is killed never leaves a manifest naming missing files."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("onnxruntime")

from hpv.artifacts.manifest import MANIFEST_NAME, load_manifest  # noqa: E402
from hpv.compiler import build as build_mod  # noqa: E402
from hpv.compiler.build import CompileRequest, compile  # noqa: E402
from hpv.errors import ConfigError, VerificationError  # noqa: E402


def _assert_consistent(out):
    """Either no build, or a complete one: every listed file present with its recorded hash."""
    folder = out / "onnx-cpu"
    if (folder / MANIFEST_NAME).exists():
        load_manifest(folder)  # raises if any listed file is missing or changed


def test_failure_midway_keeps_previous_build(tmp_path, monkeypatch):
    request = CompileRequest(target="onnx-cpu", stages=("fire_upscaler",), out=tmp_path, small=True)
    first = compile(request)
    before = (first.folder / MANIFEST_NAME).read_bytes()

    calls = []
    real_verify = build_mod.verify

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C after the first artifact
        return real_verify(*args, **kwargs)

    monkeypatch.setattr(build_mod, "verify", flaky)
    with pytest.raises(KeyboardInterrupt):
        compile(request)
    assert (first.folder / MANIFEST_NAME).read_bytes() == before
    load_manifest(first.folder)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging left behind"


def test_verification_failure_fails_the_build_with_figures(tmp_path, monkeypatch):
    from hpv.targets import Tolerance, get_target

    strict = get_target("onnx-cpu").model_copy(
        update={"tolerance": {p: Tolerance(min_psnr_db=500.0) for p in get_target("onnx-cpu").precisions}})
    monkeypatch.setattr(build_mod, "get_target", lambda name: strict)
    with pytest.raises(VerificationError) as e:
        compile(CompileRequest(target="onnx-cpu", stages=("fire_upscaler",), precisions=("fp32",),
                               out=tmp_path, small=True))
    assert e.value.tolerance == 500.0 and e.value.measured < 500.0
    assert "fire_upscaler.fp32.onnx" in str(e.value) and "psnr_db" in str(e.value)
    assert not (tmp_path / "onnx-cpu").exists()


def test_killed_build_never_leaves_a_dangling_manifest(tmp_path):
    """SIGKILL a real `hpv-compile` at several moments, with a previous build in place."""
    cmd = [sys.executable, "-c", "from hpv.cli.compile import main; main()",
           "--target", "onnx-cpu", "--small", "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True)
    _assert_consistent(tmp_path)
    for delay in (4.0, 8.0, 12.0):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _assert_consistent(tmp_path)
    # the next build cleans up whatever the killed ones left
    subprocess.run(cmd, check=True, capture_output=True)
    _assert_consistent(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_stage_picks_its_pipeline_and_rejects_a_wrong_one(tmp_path):
    from hpv.pipelines import PIPELINES

    assert build_mod.resolve_pipeline(CompileRequest(target="onnx-cpu", stages=("espcn_x3",))) \
        is PIPELINES.get("baseline")
    with pytest.raises(ConfigError, match="has no stage 'espcn_x3'"):
        build_mod.resolve_pipeline(CompileRequest(target="onnx-cpu", stages=("espcn_x3",), pipeline="default"))


def test_calibration_from_a_pose_file(tmp_path, pose_file):
    result = compile(CompileRequest(target="onnx-cpu", stages=("fire_gen",), precisions=("int8",),
                                    out=tmp_path, small=True, pose=pose_file))
    assert result.manifest.calibration == str(pose_file)


def test_progress_reports_the_total_each_step_frames_and_each_artifact(tmp_path):
    """compile(progress=...): the artifact count first, a step per conversion / verification, the
    verification's frame count as detail, one advance per artifact (and compile() without a
    progress callback works too: the other tests)."""
    calls = []
    result = compile(CompileRequest(target="onnx-cpu", stages=("fire_upscaler",), out=tmp_path, small=True),
                     lambda msg, advance=0, total=None, detail=False: calls.append((msg, advance, total, detail)))
    totals = [c for c in calls if c[2] is not None]
    assert [t[2] for t in totals] == [2] and calls.index(totals[0]) < calls.index(next(c for c in calls if c[1]))
    done = [c[0] for c in calls if c[1]]
    assert [d.split(":")[0] for d in done] == [a.path for a in result.manifest.artifacts]
    frames = [c[0] for c in calls if c[3]]
    assert frames and all(re.search(r"frame \d+/\d+ on the artifact$", f) for f in frames)
    assert frames[-1].endswith(f"frame {result.manifest.artifacts[-1].verification.frames + 1}/"
                               f"{result.manifest.artifacts[-1].verification.frames + 1} on the artifact")
