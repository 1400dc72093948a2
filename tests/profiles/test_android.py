"""The Android profiler backend against a fake adb (fixtures/fake_adb.py) that replays recorded
benchmark_model logs, in the format of LiteRT's tflite/tools/benchmark."""

import hashlib
import json
import sys
from pathlib import Path

import pytest

from hpv.artifacts.manifest import (
    ArtifactRecord, Manifest, TensorRecord, ToleranceRecord, VerificationRecord, load_manifest, write_manifest,
)
from hpv.errors import ConfigError, DeviceError, UnknownNameError
from hpv.profiles.android import Delegate, benchmark_command, parse_benchmark_output, profile_android
from hpv.profiles.schema import PROFILE_SCHEMA_VERSION, DelegateRecord, ProfileFile, load_profile, write_profile

FIXTURES = Path(__file__).parent / "fixtures"
SERIAL = "37241FDJH00A7Q"
PROPS = {"ro.product.model": "Pixel 8 Pro", "ro.product.manufacturer": "Google", "ro.soc.model": "Tensor G3",
         "ro.board.platform": "zuma", "ro.hardware": "husky", "ro.build.version.release": "15",
         "ro.product.cpu.abi": "arm64-v8a"}
TFLITE = ["fire_gen.fp32.tflite", "refiner.fp32.tflite", "fire_upscaler.fp32.tflite"]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- the command line and the log ---------------------------------------------------------------

def test_command_line():
    cpu = benchmark_command("/data/local/tmp/hpv/a.tflite", threads=4, runs=50, warmup_runs=5,
                            delegate=Delegate.CPU, per_op=False)
    assert cpu == ["/data/local/tmp/hpv/benchmark_model", "--graph=/data/local/tmp/hpv/a.tflite", "--num_threads=4",
                   "--num_runs=50", "--warmup_runs=5", "--report_peak_memory_footprint=true"]
    gpu = benchmark_command("/data/local/tmp/hpv/a.tflite", threads=2, runs=100, warmup_runs=0,
                            delegate=Delegate.GPU, per_op=True)
    assert gpu[2:] == ["--num_threads=2", "--num_runs=100", "--warmup_runs=0", "--use_gpu=true",
                       "--enable_op_profiling=true", "--report_peak_memory_footprint=true"]
    for d in ("nnapi", "xnnpack"):
        cmd = benchmark_command("m", threads=1, runs=1, warmup_runs=0, delegate=Delegate(d), per_op=False)
        assert f"--use_{d}=true" in cmd


def test_parse_cpu_run_with_percentiles():
    run = parse_benchmark_output(fixture("benchmark_cpu.txt"), "cpu")
    assert run.load_ms == pytest.approx(57.293) and run.first_ms == pytest.approx(3.948)
    lat = run.latency
    assert (lat.runs, lat.warmup) == (358, 167)  # what ran: --min_secs can add runs beyond --num_runs
    assert (lat.min_ms, lat.p50_ms, lat.p90_ms, lat.p99_ms) == pytest.approx((2.648, 2.786, 2.977, 3.301))
    assert lat.mean_ms == pytest.approx(2.79702) and lat.samples_ms == []
    assert run.peak_memory_mb == 7.5
    assert run.delegate == DelegateRecord(name="xnnpack", nodes_delegated=57, nodes_total=57, partitions=1)
    assert run.op_profile == {} and run.version is None


def test_parse_gpu_run_without_percentiles():
    run = parse_benchmark_output(fixture("benchmark_gpu.txt"), "gpu")
    assert run.load_ms == pytest.approx(1204.77) and run.first_ms == pytest.approx(14.205)
    lat = run.latency
    assert (lat.runs, lat.warmup) == (839, 412)
    assert lat.p50_ms == pytest.approx(1.19165)  # no median printed: the mean
    assert lat.p90_ms == lat.p99_ms == pytest.approx(1.532)  # no percentiles printed: the max bounds both
    assert run.peak_memory_mb == pytest.approx(63.0742)
    assert run.delegate == DelegateRecord(name="gpu", nodes_delegated=55, nodes_total=57, partitions=2)


def test_parse_op_profile_reads_the_regular_runs_only():
    run = parse_benchmark_output(fixture("benchmark_op_profiling.txt"), "cpu")
    assert run.op_profile == pytest.approx({
        "Convolution (NHWC, F32) IGEMM": 2.231, "Convolution (NHWC, F32) GEMM": 0.288,
        "Resize Bilinear (NHWC, F32)": 0.114, "Concatenate (ND, X32)": 0.061, "Add (ND, F32)": 0.037,
        "Sigmoid (NC, F32)": 0.029})  # not the initialization's ModifyGraphWithDelegate / AllocateTensors
    assert run.latency.runs == 331 and run.latency.p50_ms == pytest.approx(3.008)


def test_parse_all_same_runs_and_large_figures():
    text = ("count=5 curr=1500000(all same) p5=1500000 median=1500000 p95=1500000\n"
            "count=50 curr=1234567(all same) p5=1234567 median=1234567 p95=1234567\n"
            "Inference timings in us: Init: 2000000, First inference: 1500000, Warmup (avg): 1.5e+06, "
            "Inference (avg): 1.23457e+06\n")
    lat = parse_benchmark_output(text).latency
    assert lat.min_ms == lat.p50_ms == lat.p99_ms == lat.mean_ms == pytest.approx(1234.567)


def test_parse_picks_the_asked_delegates_line():
    text = fixture("benchmark_gpu.txt").replace(
        "INFO: Created 1 GPU", "INFO: Replacing 2 out of 2 node(s) with delegate (TfLiteXNNPackDelegate) node, "
        "yielding 2 partitions for the whole graph.\nINFO: Created 1 GPU")
    assert parse_benchmark_output(text, "gpu").delegate.nodes_delegated == 55
    nnapi = parse_benchmark_output(fixture("benchmark_cpu.txt"), "nnapi").delegate
    assert nnapi == DelegateRecord(name="nnapi")  # asked for, not reported: counts unknown


@pytest.mark.parametrize("text, missing, tail", [
    ("Segmentation fault\n", "Inference timings", "Segmentation fault"),
    (fixture("benchmark_cpu.txt").replace("INFO: count=", "INFO: cnt="), "count=... avg=", "RssShmem : 5 MB"),
    ("", "Inference timings", "(no output)"),
])
def test_unparseable_output_names_what_is_missing(text, missing, tail):
    with pytest.raises(DeviceError, match="lacks") as e:
        parse_benchmark_output(text)
    assert missing in str(e.value) and tail in str(e.value)


# --- a build folder and a fake phone ------------------------------------------------------------

def _artifact(folder: Path, path: str) -> ArtifactRecord:
    data = f"{path} weights".encode()
    (folder / path).write_bytes(data)
    tensor = TensorRecord(name="pose", shape=[1, 64, 64, 3], dtype="float32", layout="NHWC", value_range=(0.0, 1.0),
                          role="pose")
    verification = VerificationRecord(checked_on="litert-xnnpack", psnr_db=61.5, max_abs_error=4e-4, frames=4,
                                      batches=[1], tolerance=ToleranceRecord(min_psnr_db=60.0, max_abs_error=1e-3),
                                      inputs="synthetic")
    import dataclasses

    from hpv.stages import STAGES

    stage = path.split(".")[0]
    return ArtifactRecord(stage=stage, params=dataclasses.asdict(STAGES.get(stage).small), format=path.rsplit(".", 1)[1],
                          precision="fp32", batch=1, path=path, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                          inputs=[tensor], outputs=[tensor], state=[], weights="untrained", verification=verification)


def write_build(folder: Path, paths: list[str]) -> Path:
    """A build folder whose manifest validates, with placeholder model files."""
    write_manifest(folder, Manifest(schema_version=1, target="tflite-cpu", pipeline="default", generator="tests",
                                    tool_versions={}, calibration="synthetic",
                                    artifacts=[_artifact(folder, p) for p in paths]))
    load_manifest(folder)
    return folder


@pytest.fixture
def build(tmp_path) -> Path:
    folder = tmp_path / "build"
    folder.mkdir()
    return write_build(folder, [*TFLITE, "fire_gen.fp32.onnx"])


@pytest.fixture
def bench(tmp_path) -> Path:
    path = tmp_path / "benchmark_model"
    path.write_bytes(b"\x7fELF android_aarch64 benchmark_model")
    return path


class FakeAdb:
    def __init__(self, folder: Path):
        folder.mkdir()
        self.path = folder / "adb"
        self.path.write_text(f"#!{sys.executable} -S\n" + (FIXTURES / "fake_adb.py").read_text())
        self.path.chmod(0o755)
        self.state_path = folder / "adb_state.json"
        self.set(serial=SERIAL, props=PROPS, files=[], log=[], fixtures=str(FIXTURES))

    def set(self, **changes) -> None:
        state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        self.state_path.write_text(json.dumps(state | changes))

    @property
    def state(self) -> dict:
        return json.loads(self.state_path.read_text())

    def calls(self, text: str) -> int:
        return sum(text in " ".join(argv) for argv in self.state["log"])


@pytest.fixture
def adb(tmp_path) -> FakeAdb:
    return FakeAdb(tmp_path / "fakeadb")


def run(build, bench, adb, **kw):
    messages, sleeps = [], []
    kw.setdefault("sleep", sleeps.append)
    profile = profile_android(build, benchmark_model=bench, adb=str(adb.path),
                              progress=lambda msg, advance=0: messages.append(msg), **kw)
    return profile, messages, sleeps


# --- profile_android ----------------------------------------------------------------------------

def test_profile_measures_every_tflite_artifact(build, bench, adb, tmp_path):
    profile, messages, sleeps = run(build, bench, adb)
    assert [a.artifact for a in profile.artifacts] == TFLITE
    assert any("fire_gen.fp32.onnx: skipped" in m for m in messages) and sleeps == []
    art = profile.artifacts[1]
    assert (art.stage, art.format, art.precision, art.batch) == ("refiner", "tflite", "fp32", 1)
    assert art.verification_psnr_db == 61.5 and art.load_ms == pytest.approx(57.293)
    assert art.latency.p50_ms == pytest.approx(2.786) and art.delegate.name == "xnnpack"
    assert profile.target == "tflite-cpu" and profile.threads == 4 and profile.pipelines == []
    assert profile.manifest_sha256 == hashlib.sha256((build / "manifest.json").read_bytes()).hexdigest()
    # the phone: binary pushed once and made executable, every model pushed, the documented flags
    assert adb.calls("push") == 4 and adb.calls("chmod +x /data/local/tmp/hpv/benchmark_model") == 1
    assert adb.calls("--graph=/data/local/tmp/hpv/refiner.fp32.tflite --num_threads=4 --num_runs=50 "
                     "--warmup_runs=5 --report_peak_memory_footprint=true") == 1
    assert all(argv[:2] == ["-s", SERIAL] for argv in adb.state["log"][1:])  # one phone, even if more come
    # it validates, and survives the profile file's round trip
    path = write_profile(tmp_path / "profile.json", ProfileFile(
        schema_version=PROFILE_SCHEMA_VERSION, generator="tests", devices=[profile]))
    assert load_profile(path).devices == [profile]


def test_identity(build, bench, adb):
    device = run(build, bench, adb)[0].device
    assert device.id == f"Pixel-8-Pro-{SERIAL}" and device.kind == "android"
    assert (device.model, device.soc, device.os, device.cpu) == ("Google Pixel 8 Pro", "Tensor G3", "Android 15",
                                                                  "arm64-v8a")
    assert device.runtimes == {"benchmark_model": "unknown", "delegate": "cpu"}
    adb.set(props={k: v for k, v in PROPS.items() if k != "ro.soc.model"} | {"ro.product.model": "SM-S928B/DS",
                                                                          "ro.product.manufacturer": "samsung"})
    device = run(build, bench, adb, serial=SERIAL, delegate="gpu")[0].device
    assert device.id == f"SM-S928B-DS-{SERIAL}" and device.soc == "zuma"  # ro.board.platform before Android 12
    assert device.runtimes["delegate"] == "gpu"


def test_gpu_with_op_profiling(build, bench, adb):
    profile = run(build, bench, adb, delegate="gpu", threads=2, per_op=True)[0]
    assert adb.calls("--num_threads=2 --num_runs=50 --warmup_runs=5 --use_gpu=true --enable_op_profiling=true") == 3
    assert profile.artifacts[0].delegate.nodes_delegated == 55  # the fake replays the GPU log for --use_gpu


def test_per_op_profile_reaches_the_artifacts(build, bench, adb):
    profile = run(build, bench, adb, per_op=True)[0]
    assert profile.artifacts[2].op_profile["Convolution (NHWC, F32) IGEMM"] == pytest.approx(2.231)


def test_disconnect_midway_keeps_finished_artifacts(build, bench, adb):
    adb.set(outage={"match": "--graph=/data/local/tmp/hpv/refiner", "calls": 3})
    profile, messages, sleeps = run(build, bench, adb)
    assert [a.artifact for a in profile.artifacts] == TFLITE
    assert adb.calls("--graph=/data/local/tmp/hpv/fire_gen") == 1  # measured once, kept
    assert adb.calls("--graph=/data/local/tmp/hpv/refiner") == 2  # the lost run and the one that worked
    assert adb.calls("push") == 6 and adb.calls("chmod") == 2  # pushed again after the phone came back
    assert sleeps == [2.0, 4.0] and sum("device offline" in m for m in messages) == 2


def test_permanent_disconnect_names_the_finished_artifacts(build, bench, adb):
    adb.set(outage={"match": "--graph=/data/local/tmp/hpv/refiner", "calls": -1})
    with pytest.raises(DeviceError, match="while measuring refiner.fp32.tflite") as e:
        run(build, bench, adb, retries=2)
    assert "Finished before: fire_gen.fp32.tflite." in str(e.value) and "device offline" in str(e.value)
    assert e.value.finished == ["fire_gen.fp32.tflite"]
    assert adb.calls("wait-for-device") == 2


@pytest.mark.parametrize("status, error", [(0, "lacks the 'Inference timings"),
                                           (1, "benchmark_model failed on fire_gen.fp32.tflite \\(exit 1\\)")])
def test_failed_measurement_is_not_retried(build, bench, adb, status, error):
    adb.set(output="ERROR: Didn't find op for builtin opcode 'STABLEHLO_COMPOSITE'\nBenchmarking failed.\n",
            bench_status={"fire_gen": status})
    with pytest.raises(DeviceError, match=error) as e:
        run(build, bench, adb)
    assert "STABLEHLO_COMPOSITE" in str(e.value) and adb.calls("wait-for-device") == 0


def test_no_device(build, bench, adb):
    adb.set(serial="")
    with pytest.raises(DeviceError, match="no device answers adb .*no devices/emulators found.*adb devices"):
        run(build, bench, adb)
    adb.set(serial=SERIAL)
    with pytest.raises(DeviceError, match="device 'R5CX' does not answer adb .*not found"):
        run(build, bench, adb, serial="R5CX")


def test_bad_setup_says_how_to_fix(build, bench, adb, tmp_path):
    with pytest.raises(ConfigError, match="benchmark_model not found at .*bazel build"):
        run(build, tmp_path / "missing", adb)
    with pytest.raises(ConfigError, match="adb not found .*apt-get install adb"):
        profile_android(build, benchmark_model=bench, adb=str(tmp_path / "no-adb"))
    with pytest.raises(UnknownNameError, match="Did you mean 'gpu'"):
        run(build, bench, adb, delegate="gpuu")
    with pytest.raises(ConfigError, match="runs = 0"):
        run(build, bench, adb, runs=0)
    onnx_only = tmp_path / "onnx"
    onnx_only.mkdir()
    with pytest.raises(ConfigError, match="no .tflite artifacts"):
        run(write_build(onnx_only, ["refiner.fp32.onnx"]), bench, adb)
    assert adb.state["log"] == []  # nothing reached the phone



def test_hpv_profile_device_adb_writes_a_profile_with_roofline(build, bench, adb, tmp_path):
    import os

    from click.testing import CliRunner

    from hpv.cli.main import cli
    from hpv.profiles.schema import load_profile

    bindir = adb.path.parent  # the fake is named adb: found on PATH like Debian's client
    out = tmp_path / "phone.json"
    result = CliRunner().invoke(
        cli, ["profile", str(build), "--device", "adb", "--benchmark-model", str(bench), "--peak-gmacs", "500",
              "--out", str(out)], env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"})
    assert result.exit_code == 0, result.output
    device = load_profile(out).devices[0]
    assert device.device.kind == "android" and device.device.peak_gmacs == 500
    assert all(a.macs and 0 < a.roofline_fraction < 1 for a in device.artifacts), [(a.macs, a.roofline_fraction) for a in device.artifacts]


def test_hpv_profile_device_adb_needs_benchmark_model(build, tmp_path):
    from click.testing import CliRunner

    from hpv.cli.main import cli

    result = CliRunner().invoke(cli, ["profile", str(build), "--device", "adb", "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 2 and "--benchmark-model" in result.output
