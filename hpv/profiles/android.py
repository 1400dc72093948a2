"""The Android profiler backend: measures a build folder's `.tflite` artifacts on a phone over adb
with LiteRT's `benchmark_model`, and reads its log into a device profile.

adb failing (device offline, unplugged, no device, a timeout) is a lost phone: wait for it, push
again, and retry that artifact; finished artifacts are kept. A command that fails on the phone
(benchmark_model's own exit status, read from a marker) is a measurement failure, not retried."""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TypeVar

from hpv.artifacts.manifest import MANIFEST_NAME, ArtifactRecord, load_manifest
from hpv.errors import ConfigError, DeviceError, UnknownNameError
from hpv.profiles.schema import ArtifactProfile, DelegateRecord, DeviceIdentity, DeviceProfile, LatencyStats

REMOTE_DIR = "/data/local/tmp/hpv"
REMOTE_BIN = f"{REMOTE_DIR}/benchmark_model"
_RC = "__hpv_rc="  # echoed after every shell command: the phone's exit status, apart from adb's own
_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"  # C++ ostream prints large doubles as 1.23457e+06
_LOG = r"^(?:[A-Z]+: )?"  # newer benchmark_model builds prefix their log lines with "INFO: "
BENCH_TIMEOUT_S = 900.0  # benchmark_model stops each phase after --max_secs=150 s by default
WAIT_TIMEOUT_S = 60.0
BACKOFF_S = 2.0
T = TypeVar("T")
_TIMINGS_LINE = "the 'Inference timings in us: Init: ..., First inference: ...' line"
_STAT_LINE = "the 'count=... avg=...' line of the timed runs"


class Delegate(str, Enum):
    CPU = "cpu"
    XNNPACK = "xnnpack"
    GPU = "gpu"
    NNAPI = "nnapi"

    @property
    def flag(self) -> str | None:
        return None if self is Delegate.CPU else f"--use_{self.value}=true"


# The name each delegate gives itself in "Replacing N out of M node(s) with delegate (NAME) node".
_DELEGATE_NAMES = {"TfLiteXNNPackDelegate": "xnnpack", "TfLiteGpuDelegateV2": "gpu", "TfLiteGpuDelegate": "gpu",
                   "TfLiteNnapiDelegate": "nnapi"}


def benchmark_command(remote_model: str, *, threads: int, runs: int, warmup_runs: int,
                      delegate: Delegate, per_op: bool) -> list[str]:
    """benchmark_model's command line; flag names as documented in tflite/tools/benchmark/README.md."""
    cmd = [REMOTE_BIN, f"--graph={remote_model}", f"--num_threads={threads}", f"--num_runs={runs}",
           f"--warmup_runs={warmup_runs}"]
    if delegate.flag:
        cmd.append(delegate.flag)
    if per_op:
        cmd.append("--enable_op_profiling=true")
    return [*cmd, "--report_peak_memory_footprint=true"]


@dataclass(frozen=True)
class BenchmarkRun:
    """What one benchmark_model log says about one model."""

    load_ms: float
    first_ms: float
    latency: LatencyStats
    peak_memory_mb: float | None
    delegate: DelegateRecord
    op_profile: dict[str, float] = field(default_factory=dict)
    version: str | None = None


def parse_benchmark_output(text: str, delegate: Delegate | str = Delegate.CPU) -> BenchmarkRun:
    """Read benchmark_model's log (format of tflite/tools/benchmark/benchmark_model.cc).

    benchmark_model prints aggregates only, so `samples_ms` stays empty. p50 is its `median=`
    where printed (builds with StatWithPercentiles), else the mean. It prints no p90 or p99: p90
    is its `p95=` (an upper bound of p90) and p99 its `max=` (an upper bound of p99); builds
    without percentiles give `max=` for both."""
    delegate = Delegate(delegate)
    timings = re.search(rf"Inference timings in us: Init: ({_NUM}), First inference: ({_NUM})", text)
    stats = [_stat_fields(m.group(2)) | {"count": int(m.group(1))}
             for m in re.finditer(rf"{_LOG}count=(\d+)(.*)$", text, re.M)]
    missing = [what for what, found in ((_TIMINGS_LINE, timings), (_STAT_LINE, stats)) if not found]
    if missing:
        raise DeviceError(f"benchmark_model's output lacks {' and '.join(missing)}:\n{_tail(text)}")
    timed, warmup = stats[-1], stats[-2] if len(stats) > 1 else None  # warm-up runs print first
    if timed["count"] == 0 or "avg" not in timed:
        raise DeviceError(f"benchmark_model made no timed runs:\n{_tail(text)}")
    ms = 1e-3  # benchmark_model reports microseconds
    latency = LatencyStats(runs=timed["count"], warmup=warmup["count"] if warmup else 0,
                           p50_ms=timed.get("median", timed["avg"]) * ms, p90_ms=timed.get("p95", timed["max"]) * ms,
                           p99_ms=timed["max"] * ms, mean_ms=timed["avg"] * ms, min_ms=timed["min"] * ms)
    peak = re.search(rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUM})", text)
    version = re.search(r"(?:LiteRT|TensorFlow Lite|TFLite)[^\n]*?version:? v?(\d[\w.\-]*)", text, re.I)
    return BenchmarkRun(load_ms=float(timings.group(1)) * ms, first_ms=float(timings.group(2)) * ms,
                        latency=latency, peak_memory_mb=float(peak.group(1)) if peak else None,
                        delegate=_delegate_record(text, delegate), op_profile=_op_profile(text),
                        version=version.group(1) if version else None)


def _stat_fields(rest: str) -> dict[str, float]:
    """`first=.. curr=.. min=.. max=.. avg=.. std=.. [p5=.. median=.. p95=..]`, or `curr=X(all same)`."""
    fields = {k: float(v) for k, v in re.findall(rf"(\w+)=({_NUM})", rest)}
    if "curr" in fields and "min" not in fields:  # every run took the same time
        fields |= {k: fields["curr"] for k in ("min", "max", "avg")}
    return fields


def _delegate_record(text: str, delegate: Delegate) -> DelegateRecord:
    """The Replacing line of the delegate asked for; on the CPU, XNNPACK's (applied by default)."""
    want = Delegate.XNNPACK if delegate is Delegate.CPU else delegate
    for m in re.finditer(r"Replacing (\d+)(?: out of (\d+))? node\(s\) with delegate \(([^)]+)\) node, "
                         r"yielding (\d+) partitions", text):
        if _DELEGATE_NAMES.get(m.group(3)) == want.value:
            return DelegateRecord(name=want.value, nodes_delegated=int(m.group(1)),
                                  nodes_total=int(m.group(2)) if m.group(2) else None, partitions=int(m.group(4)))
    return DelegateRecord(name=delegate.value)


def _op_profile(text: str) -> dict[str, float]:
    """Node type -> ms per run, from the regular runs' "Summary by node type" (not initialization's)."""
    _, found, regular = text.partition("Operator-wise Profiling Info for Regular Benchmark Runs")
    _, found_summary, summary = regular.partition("Summary by node type")
    if not (found and found_summary):
        return {}
    row = re.compile(rf"^\s*(\S.*?)\s+(\d+)\s+({_NUM})\s+{_NUM}%\s+{_NUM}%\s+{_NUM}\s+\d+\s*$")
    ops = {}
    for line in summary.splitlines()[1:]:  # [1:]: the rest of the "=== Summary ===" line
        if "[Node type]" in line:
            continue
        m = row.match(line)
        if not m:
            break
        ops[m.group(1)] = float(m.group(3))
    return ops


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


class _DeviceGone(Exception):
    """adb itself failed: the phone is offline, unplugged, or adb timed out."""


class _Adb:
    def __init__(self, adb: str, serial: str | None):
        self.adb, self.serial = adb, serial

    def run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        cmd = [self.adb, *(["-s", self.serial] if self.serial else []), *args]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
        except FileNotFoundError:
            raise ConfigError(f"adb not found ({self.adb!r}): install it (Debian/Ubuntu: apt-get install adb; "
                              "or Android SDK platform-tools) or pass its path") from None
        except subprocess.TimeoutExpired:
            raise _DeviceGone(f"`adb {args[0]}` did not answer within {timeout:.0f} s") from None
        if p.returncode != 0:
            raise _DeviceGone((p.stderr + p.stdout).strip() or f"adb exited with status {p.returncode}")
        return p

    def shell(self, command: list[str], timeout: float = 120.0) -> tuple[int, str]:
        """The phone's exit status and output (stdout then stderr) of one command."""
        p = self.run("shell", f"{shlex.join(command)}; echo {_RC}$?", timeout=timeout)
        m = re.search(rf"{_RC}(\d+)\s*$", p.stdout)
        if not m:
            raise _DeviceGone(f"the shell on the phone ended early:\n{_tail(p.stdout + p.stderr)}")
        return int(m.group(1)), p.stdout[:m.start()] + p.stderr

    def check(self, command: list[str]) -> str:
        status, out = self.shell(command)
        if status != 0:
            raise DeviceError(f"`{shlex.join(command)}` failed on the phone (exit {status}):\n{_tail(out)}")
        return out.strip()


class _Phone:
    """One phone over adb: retries on a lost connection, pushes again after each reconnect."""

    def __init__(self, adb: _Adb, retries: int, sleep: Callable[[float], None], log):
        self.adb, self.retries, self.sleep, self.log = adb, retries, sleep, log
        self.pushed: set[str] = set()

    def connect(self) -> str:
        """The serial of the phone to use; a how-to-fix error when none answers."""
        serial = self.adb.serial
        try:
            if serial:
                self.adb.run("get-state", timeout=30)
            else:
                self.adb.serial = self.adb.run("get-serialno", timeout=30).stdout.strip()
                if self.adb.serial in ("", "unknown"):  # older adb: status 0 and "unknown"
                    raise _DeviceGone("adb get-serialno: unknown")
        except _DeviceGone as e:
            which = f"device {serial!r} does not answer" if serial else "no device answers"
            raise DeviceError(f"{which} adb ({e}). Connect the phone by USB, enable USB debugging "
                              "(Settings > Developer options), accept this computer's key on the phone, and check "
                              "that `adb devices` lists it as 'device'; with several phones give "
                              "--device adb:SERIAL.") from None
        return self.adb.serial

    def retrying(self, what: str, fn: Callable[[], T], finished: list[str]) -> T:
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except _DeviceGone as e:
                lost = e
                if attempt == self.retries:
                    break
                self.log(f"{self.adb.serial}: {e}; waiting for the phone, retry {attempt + 1} of {self.retries}")
                self.sleep(BACKOFF_S * 2 ** attempt)
                self.pushed.clear()  # it may have rebooted: push again
                try:
                    self.adb.run("wait-for-device", timeout=WAIT_TIMEOUT_S)
                except _DeviceGone:
                    pass  # the next attempt fails the same way and counts
        err = DeviceError(f"lost the phone {self.adb.serial} while {what} ({lost}) and it did not come back in "
                          f"{self.retries} retries. Finished before: {', '.join(finished) or 'nothing'}. "
                          "Reconnect it (`adb devices` lists it as 'device') and run again.")
        err.finished = finished
        raise err

    def push(self, local: Path, remote: str, executable: bool = False) -> None:
        if remote in self.pushed:
            return
        if not self.pushed:
            self.adb.check(["mkdir", "-p", REMOTE_DIR])
        self.adb.run("push", str(local), remote, timeout=600)
        if executable:
            self.adb.check(["chmod", "+x", remote])
        self.pushed.add(remote)

    def benchmark(self, benchmark_model: Path, model: Path, remote: str, command: list[str]) -> str:
        self.push(benchmark_model, REMOTE_BIN, executable=True)
        self.push(model, remote)
        status, text = self.adb.shell(command, timeout=BENCH_TIMEOUT_S)
        if status != 0:
            raise DeviceError(f"benchmark_model failed on {model.name} (exit {status}):\n{_tail(text)}")
        return text

    def getprop(self, *names: str) -> str:
        """The first of `names` that is set."""
        return next((v for v in (self.adb.check(["getprop", n]) for n in names) if v), "")

    def identity(self, delegate: Delegate) -> DeviceIdentity:
        model = self.getprop("ro.product.model") or "android"
        maker = self.getprop("ro.product.manufacturer")
        return DeviceIdentity(
            id=re.sub(r"[^A-Za-z0-9._-]+", "-", f"{model}-{self.adb.serial}").strip("-"),
            model=model if not maker or model.lower().startswith(maker.lower()) else f"{maker} {model}",
            soc=self.getprop("ro.soc.model", "ro.board.platform", "ro.hardware") or None,
            os=f"Android {self.getprop('ro.build.version.release') or 'unknown'}",
            cpu=self.getprop("ro.product.cpu.abi") or None, kind="android",
            runtimes={"delegate": delegate.value})


def profile_android(build_dir: Path, *, benchmark_model: Path, serial: str | None = None, threads: int = 4,
                    delegate: str = "cpu", runs: int = 50, warmup_runs: int = 5, retries: int = 3,
                    per_op: bool = False, adb: str = "adb", progress=None,
                    sleep: Callable[[float], None] = time.sleep) -> DeviceProfile:
    """Measure every `.tflite` artifact of `build_dir` on an Android phone. Writes nothing; the
    pipeline figure is the local profiler's, so `pipelines` stays empty. `sleep` waits between
    retries (tests pass a fake)."""
    log = progress or (lambda _msg, advance=0: None)
    try:
        delegate = Delegate(delegate)
    except ValueError:
        raise UnknownNameError("delegate", str(delegate), [d.value for d in Delegate]) from None
    for name, value, least in (("threads", threads, 1), ("runs", runs, 1), ("warmup_runs", warmup_runs, 0),
                               ("retries", retries, 0)):
        if value < least:
            raise ConfigError(f"{name} = {value}; give {least} or more")
    benchmark_model, build_dir = Path(benchmark_model), Path(build_dir)
    if not benchmark_model.is_file():
        raise ConfigError(f"benchmark_model not found at {benchmark_model}: download LiteRT's prebuilt "
                          "android_aarch64 benchmark_model, or build it with `bazel build -c opt "
                          "--config=android_arm64 //tflite/tools/benchmark:benchmark_model`, and pass its path")
    manifest = load_manifest(build_dir)
    manifest_sha256 = hashlib.sha256((build_dir / MANIFEST_NAME).read_bytes()).hexdigest()
    artifacts = [a for a in manifest.artifacts if a.format == "tflite"]
    for a in manifest.artifacts:
        if a.format != "tflite":
            log(f"{a.path}: skipped, benchmark_model runs .tflite only")
    if not artifacts:
        raise ConfigError(f"{build_dir} (target {manifest.target}) holds no .tflite artifacts: build one with "
                          "`hpv-compile --target tflite-cpu` (or tflite-gpu, tflite-npu)")

    phone = _Phone(_Adb(adb, serial), retries, sleep, log)
    phone.connect()
    identity = phone.retrying("reading its properties", lambda: phone.identity(delegate), [])
    results: list[ArtifactProfile] = []
    version = None
    for a in artifacts:
        remote = f"{REMOTE_DIR}/{a.path.replace('/', '__')}"
        command = benchmark_command(remote, threads=threads, runs=runs, warmup_runs=warmup_runs,
                                    delegate=delegate, per_op=per_op)
        measure = partial(phone.benchmark, benchmark_model, build_dir / a.path, remote, command)
        text = phone.retrying(f"measuring {a.path}", measure, [r.artifact for r in results])
        run = parse_benchmark_output(text, delegate)
        version = version or run.version
        results.append(_artifact_profile(a, run))
        log(f"{a.path}: p50 {run.latency.p50_ms:.2f} ms on {run.delegate.name}", advance=1)

    runtimes = {"benchmark_model": version or "unknown", **identity.runtimes}
    return DeviceProfile(device=identity.model_copy(update={"runtimes": runtimes}), target=manifest.target,
                         manifest_sha256=manifest_sha256, threads=threads, artifacts=results,
                         measured_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _artifact_profile(a: ArtifactRecord, run: BenchmarkRun) -> ArtifactProfile:
    # A dynamic-batch graph keeps batch 1 in its tensor shapes, which benchmark_model runs as is.
    return ArtifactProfile(artifact=a.path, stage=a.stage, format=a.format, precision=a.precision,
                           batch=a.batch if isinstance(a.batch, int) else 1, load_ms=run.load_ms,
                           first_ms=run.first_ms, latency=run.latency, peak_memory_mb=run.peak_memory_mb,
                           delegate=run.delegate, verification_psnr_db=a.verification.psnr_db,
                           op_profile=run.op_profile)
