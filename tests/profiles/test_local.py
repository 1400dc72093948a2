"""`hpv profile --device local` on the default pipeline's small build: a profile that validates and
reports, and the regression check on real measurements of this noisy machine (A/A passes, an
artifact made 25% slower is flagged)."""

import shutil
import time

import pytest
from click.testing import CliRunner

from hpv.cli.main import cli
from hpv.compiler.backends.onnx import OnnxBackend
from hpv.compiler.build import CompileRequest, compile
from hpv.pipelines import PIPELINES
from hpv.profiles.compare import compare
from hpv.profiles.local import profile_local_builds, profile_pipelines
from hpv.profiles.schema import PROFILE_SCHEMA_VERSION, ProfileFile, load_profile


def _file(device) -> ProfileFile:
    return ProfileFile(schema_version=PROFILE_SCHEMA_VERSION, generator="test", devices=[device])


def test_profile_validates_and_reports(small_build, tmp_path):
    out, page = tmp_path / "profile.json", tmp_path / "report.html"
    run = CliRunner().invoke(cli, ["profile", str(small_build.folder), "--out", str(out), "--runs", "8",
                                   "--warmup", "1", "--batch", "1", "--batch", "2", "--pipeline-runs", "3"])
    assert run.exit_code == 0, run.output
    device = load_profile(out).devices[0]
    arts = small_build.manifest.artifacts
    assert len(device.artifacts) == 2 * len(arts)  # dynamic batch: measured at 1 and 2
    for a in device.artifacts:
        assert a.latency.runs == 8 and len(a.latency.samples_ms) == 8 and a.load_ms > 0 and a.first_ms > 0
        assert a.macs > 0 and 0 < a.roofline_fraction and a.peak_memory_mb > 0
    precisions = {a.precision for a in arts}
    k_max = PIPELINES.get("default").max_steps
    # dynamic batch: batch 1 and 2; the default draws parts: each level with them and without
    assert len(device.pipelines) == len(precisions) * 2 * (k_max + 1) * 2
    assert {p.steps for p in device.pipelines} == set(range(k_max + 1))
    # Every level timed in full (speed itself is for bench/: at --small size a refinement step is
    # within this shared machine's noise).
    for p in device.pipelines:
        assert p.latency.runs == 3 and len(p.latency.samples_ms) == 3 and p.latency.min_ms > 0
    run = CliRunner().invoke(cli, ["report", str(out), "-o", str(page)])
    assert run.exit_code == 0 and "<svg" in page.read_text()


def test_profile_merges_devices(small_build, tmp_path):
    out = tmp_path / "profile.json"
    args = ["profile", str(small_build.folder), "--out", str(out), "--runs", "3", "--no-pipelines", "--merge"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert CliRunner().invoke(cli, args).exit_code == 0  # same device again: replaced, not duplicated
    assert len(load_profile(out).devices) == 1


def test_profile_of_a_missing_build_exits_2(tmp_path):
    run = CliRunner().invoke(cli, ["profile", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p.json")])
    assert run.exit_code == 2 and "no manifest" in run.output


def _slowed(folder, factor: float):
    """OnnxBackend.runner whose calls to artifacts under `folder` do `factor` times their work (the
    call spins for the rest): the same build made slower."""
    plain = OnnxBackend.runner

    def runner(self, path, target, stage=None, threads=None):
        run = plain(self, path, target, stage, threads)
        if folder not in path.parents:
            return run

        def slow(feeds):
            start = time.perf_counter()
            out = run(feeds)
            until = start + (time.perf_counter() - start) * factor
            while time.perf_counter() < until:
                pass
            return out

        return slow

    return runner


def test_a_a_passes_and_25_percent_slower_is_flagged(small_build, tmp_path, monkeypatch):
    """Measured in the same rounds (`hpv profile A B`), as a CI gate on this drifting machine must:
    the build against itself shows no regression, and a copy of it made 25% slower is flagged."""
    slower = tmp_path / "slower" / small_build.folder.name
    shutil.copytree(small_build.folder, slower)
    monkeypatch.setattr(OnnxBackend, "runner", _slowed(slower, 1.25))
    a, again, slow = (_file(d) for d in profile_local_builds(
        [small_build.folder, small_build.folder, slower], runs=135, rounds=45, warmup=3, pipelines=False,
        peak_gmacs=1.0))
    assert a.devices[0].pairing == slow.devices[0].pairing is not None
    same = compare(a, again)
    assert not same.regressions and not same.improvements, [(e.config.label, e.ratio) for e in same.entries]
    result = compare(a, slow)
    assert {c.config.key[0] for c in result.regressions} == {x.artifact for x in a.devices[0].artifacts}, [
        (e.config.label, e.ratio) for e in result.entries]
    assert all(15 < e.change_pct < 60 for e in result.regressions), [e.change_pct for e in result.regressions]


def test_two_builds_in_the_same_rounds_write_paired_profiles(small_build, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    args = ["profile", str(small_build.folder), str(small_build.folder), "--runs", "6", "--rounds", "6",
            "--no-pipelines", "--peak-gmacs", "1"]
    run = CliRunner().invoke(cli, [*args, "--out", str(a), "--out", str(b)])
    assert run.exit_code == 0, run.output
    pa, pb = load_profile(a).devices[0], load_profile(b).devices[0]
    assert pa.pairing == pb.pairing and pa.artifacts[0].latency.rounds == 6
    assert CliRunner().invoke(cli, ["compare", str(a), str(b), "--threshold", "50"]).exit_code == 0
    run = CliRunner().invoke(cli, [*args, "--out", str(a)])
    assert run.exit_code == 2 and "one each" in run.output


def test_a_noisy_profile_gets_a_warning_and_a_quiet_one_none():
    from hpv.cli.profile import noise_warning
    from hpv.profiles.schema import LatencyStats
    from tests.profiles import factory

    quiet = factory.device("phone-a")
    assert noise_warning(quiet) is None
    burst = LatencyStats.from_samples([10.0] * 16 + [60.0] * 4, warmup=1)  # p90 6x p50
    noisy = quiet.model_copy(update={"pipelines": [quiet.pipelines[0].model_copy(update={"latency": burst}),
                                                   *quiet.pipelines[1:]]})
    message = noise_warning(noisy)
    assert message and "6.0x p50" in message and "idle machine" in message


def test_a_build_with_part_stages_is_profiled_with_them_and_without(tmp_path):
    """Every k of the default pipeline twice, drawing its hands and face and not; drawing them costs time."""
    pytest.importorskip("onnxruntime")
    build = compile(CompileRequest(target="onnx-cpu", pipeline="default", out=tmp_path, small=True,
                                   precisions=("fp32",)))
    pipes = profile_pipelines(build.folder, batches=[1], runs=6, warmup=1)
    k_max = PIPELINES.get("default").max_steps
    assert sorted((p.steps, p.parts) for p in pipes) == [(k, on) for k in range(k_max + 1) for on in (False, True)]
    for k in range(k_max + 1):
        on, off = (next(p for p in pipes if (p.steps, p.parts) == (k, drawn)) for drawn in (True, False))
        assert on.latency.min_ms > off.latency.min_ms
