"""The README's commands, read from its ```bash blocks (and the CI job's `- run:` lines) and run as
written, so that the README cannot drift from the code.

Every command is classified below; one that is not fails `test_every_readme_command_is_covered`,
so a new README line needs a decision here too. What happens to each:

- set-up commands (venv, pip, apt-get) are checked structurally, never re-installed: the extras
  they name exist, the torch pin is the one pyproject allows;
- every `hpv` / `hpv-compile` / `python bench/...` command has its arguments checked as its CLI
  would read them, and the names in them (targets, precisions, stages, pipelines, configs, files)
  resolved, in the fast part;
- the fast part runs, in a temporary folder holding the repository's examples/ and reports/, every
  command that needs no build of its own (profile with short run counts on a small onnx-cpu build,
  compare, report, schedule, render a few frames, the list commands, the CI job's profile/compare);
- the slow part (`-m slow`) builds every `hpv-compile --target` line at `--small` size and runs
  the adb line against its tflite build, and a tiny training run on a user's video + pose pair;
- NOT_RUN lists what is only checked, with the reason (hours of training, an Android phone,
  a line that rewrites the package's quality table).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Options appended or overridden when a command is run here: the same code paths, at a size a test
# can afford. Anything else is run exactly as written.
SMALL = ("--small",)  # hpv-compile / hpv train: every stage at its small size
SHORT_PROFILE = {"--runs": "6", "--rounds": "2", "--warmup": "1", "--pipeline-runs": "4"}
SHORT_RENDER = {"--frames": "6"}

# Checked (arguments and names), not run, and why.
NOT_RUN = {
    "hpv train --pipeline default --config cpu --out runs": "an hour of training (the tiny config runs in "
                                                            "tests/cli/test_cli_train.py)",
    "hpv train --pipeline default --config cpu-continue --out runs": "an hour of training from the shipped weights",
    "hpv train --pipeline default --config cpu-looks --out runs": "45 minutes of training from the shipped weights",
    "hpv train --pipeline baseline --config cpu --out runs": "40 minutes of training",
    "hpv train --pipeline default --config gpu --out runs": "the GPU run: hours",
    "hpv train ... --install": "would overwrite the package's shipped weights",
    "hpv train --pipeline default --config cpu-parts --out runs-parts": "25 minutes of training (tests/training/"
                                                                        "test_training_parts.py runs a tiny one)",
    "hpv train --pipeline default --config cpu-parts-hands --out runs-hands": "20 minutes of training",
    "hpv train --pipeline default --config cpu-parts-hands-2 --out runs-hands-2": "10 minutes of training",
    "hpv train --pipeline default --config cpu-parts-face --out runs-face": "25 minutes of training",
    "hpv train --pipeline default --config cpu-parts-face-2 --out runs-face-2": "16 minutes of training",
    "python bench/quality.py --artifacts artifacts/onnx-cpu --sequences 6 --frames 10 --write-table --no-baseline":
        "~6 min, and --write-table rewrites the package's quality table",
    "python bench/pipeline_speed.py": "a benchmark: builds both pipelines at full size and times them for minutes",
}
# Run, but refused on this machine for what it lacks: the refusal must be about that and nothing else.
NEEDS_DEVICE = {"--device adb": ("an Android phone over adb", "adb")}


# -- reading the README ------------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    section: str  # the heading above its block
    text: str  # as written, continuation lines joined, without its trailing comment

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)

    @property
    def parts(self) -> list[list[str]]:
        """The `&&`-chained commands of the line, each split like a shell would."""
        out, cur = [], []
        for tok in shlex.split(self.text):
            if tok == "&&":
                out.append(cur)
                cur = []
            else:
                cur.append(tok)
        return out + [cur]

    def __str__(self) -> str:
        return self.text


def _strip_comment(line: str) -> str:
    """The command without its `# ...` comment (a # inside quotes or a word, e.g. #rrggbb, stays)."""
    for m in re.finditer(r"\s#", line):
        try:
            shlex.split(line[:m.start()])  # balanced quotes before it: a comment starts here
        except ValueError:
            continue
        return line[:m.start()].rstrip()
    return line.rstrip()


def _block_commands(section: str, lang: str, lines: list[str]) -> list[Command]:
    if lang == "yaml":  # the CI job's steps
        lines = [m.group(1) for m in map(re.compile(r"^\s*- run: (.*)$").match, lines) if m]
    elif lang != "bash":
        return []
    out, cur = [], ""
    for line in lines:
        cur += line.rstrip()
        if cur.endswith("\\"):
            cur = cur[:-1].rstrip() + " "
            continue
        text = _strip_comment(cur)
        if text.strip():
            out.append(Command(section, " ".join(text.split())))
        cur = ""
    return out


def readme_commands() -> list[Command]:
    section, out, lang, block = "", [], None, []
    for line in README.read_text().splitlines():
        if lang is None:
            if line.startswith("#"):
                section = line.lstrip("#").strip()
            elif line.startswith("```"):
                lang, block = line[3:].strip(), []
            continue
        if line.startswith("```"):
            out += _block_commands(section, lang, block)
            lang = None
        else:
            block.append(line)
    return out


COMMANDS = readme_commands()


def kind(c: Command) -> str:
    """setup | compile | list | umbrella | profile | device | compare | report | schedule | render |
    train | bench, or unknown."""
    argv = c.argv
    if c.section == "Set up and run" or argv[0] in ("pip", "apt-get", "python3"):
        return "setup"
    if argv[0] == "hpv-compile":
        return "list" if any(a.startswith("--list") for a in argv) else "compile"
    if argv[0] == "hpv" and len(argv) > 1:
        if argv[1] == "compile":
            return "umbrella"
        if argv[1] == "profile":
            return "device" if any(flag in c.text for flag in NEEDS_DEVICE) else "profile"
        if argv[1] in ("compare", "report", "schedule", "render", "train"):
            return argv[1]
    if argv[0] == "python" and len(argv) > 1 and argv[1].startswith("bench/"):
        return "bench"
    return "unknown"


def ids(commands) -> list[str]:
    return [c.text[:70] for c in commands]


def _of(*kinds: str) -> list[Command]:
    return [c for c in COMMANDS if kind(c) in kinds]


def test_the_readme_has_the_blocks_this_test_reads():
    sections = {c.section for c in COMMANDS}
    assert {"Set up and run", "Usage", "Training"} <= sections
    assert len(_of("compile")) >= 10 and _of("profile") and _of("device") and _of("render")


@pytest.mark.parametrize("command", COMMANDS, ids=ids(COMMANDS))
def test_every_readme_command_is_covered(command):
    assert kind(command) != "unknown", f"README command not covered by tests/test_readme.py: {command}"
    if "..." in command.argv and kind(command) not in ("umbrella", "train"):
        pytest.fail(f"a placeholder '...' in {command}: only `hpv compile ...` and `hpv train ...` lines have one")


# -- set-up commands: structure, not installs ------------------------------------------------

def _extras_of(spec: str) -> set[str]:
    m = re.fullmatch(r"\.\[([\w,-]+)\]", spec)
    assert m, f"expected an editable install of '.[extras]', got {spec!r}"
    return set(m.group(1).split(","))


@pytest.mark.parametrize("command", _of("setup"), ids=ids(_of("setup")))
def test_setup_commands_name_real_extras_and_the_pinned_torch(command):
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    torch_spec = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch"))
    for part in command.parts:
        if part[:2] == ["pip", "install"]:
            args = part[2:]
            for i, a in enumerate(args):
                if a == "-e":
                    assert _extras_of(args[i + 1]) <= extras, (command, extras)
                elif a.startswith("torch=="):
                    from packaging.specifiers import SpecifierSet

                    version = a.removeprefix("torch==")
                    assert version in SpecifierSet(torch_spec.removeprefix("torch")), (a, torch_spec)
            assert "-e" in args, command
        elif part[:1] == ["python3"]:
            assert part == ["python3", "-m", "venv", ".venv"], command
        elif part[:1] == ["."]:
            assert part == [".", ".venv/bin/activate"], command
        elif part[:1] == ["apt-get"]:
            assert part in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "nodejs", ">/dev/null"]), part
        elif part[:1] == ["hpv-compile"]:
            assert Command("Usage", shlex.join(part)).text in {c.text for c in _of("compile")}, \
                "the main job's build is a usage line too (run there)"
        else:
            assert part in (["pip", "check"], ["pytest"]), (command, part)


def test_the_test_command_installs_every_extra_and_checks_them():
    (tests,) = [c for c in _of("setup") if "pytest" in c.argv]
    installs = [p for p in tests.parts if p[:2] == ["pip", "install"]]
    assert _extras_of(installs[0][-1]) == {"all", "test"}
    assert ["pip", "check"] in tests.parts


# -- arguments and names, as each CLI reads them ---------------------------------------------

def _click_command(argv: list[str]):
    from hpv.cli.compile import compile_command
    from hpv.cli.main import cli

    if argv[0] == "hpv-compile":
        return compile_command, argv[1:]
    return cli.commands[argv[1]], argv[2:]


def _parse(argv: list[str]) -> dict:
    """The command's parameters as click converts them (unknown options, bad types: an error)."""
    cmd, args = _click_command(argv)
    with cmd.make_context(argv[0], list(args)) as ctx:
        return dict(ctx.params)


def _filled(command: Command) -> list[str]:
    """`hpv compile ...` and `hpv train ...`: the placeholder stands for the arguments above it."""
    argv = command.argv
    if "..." not in argv:
        return argv
    i = argv.index("...")
    fill = {"compile": ["--list-targets"], "train": ["--pipeline", "default", "--config", "tiny", "--out", "runs"]}
    return argv[:i] + fill[argv[1]] + argv[i + 1:]


def check_names(argv: list[str], params: dict, workdir: Path) -> None:
    """Resolve what the command names: an unknown one raises the error the CLI would print."""
    from hpv.pipelines import PIPELINES
    from hpv.stages import STAGES
    from hpv.targets import get_target

    def exists(path) -> None:
        assert (workdir / path).exists(), f"{path} named by `{shlex.join(argv)}` does not exist"

    verb = "compile" if argv[0] == "hpv-compile" else argv[1]
    if verb == "compile" and params.get("target"):
        target = get_target(str(workdir / params["target"]) if params["target"].endswith(".toml") else params["target"])
        for p in params["precisions"]:
            target.check_precision(p)
        for s in params["stages"]:
            STAGES.get(s)
        if params["pipeline"]:
            PIPELINES.get(params["pipeline"])
        if params["pose"]:
            exists(params["pose"])
        for w in params["weights"]:
            stage, _, path = w.partition("=")
            STAGES.get(stage)
            exists(path)
    elif verb == "train":
        from hpv.training.config import CONFIGS

        PIPELINES.get(params["pipeline"])
        CONFIGS.get(params["config_name"])
        for pair in params["pairs"]:
            video, sep, pose = pair.rpartition(":")
            assert sep and video and pose, pair
            if importlib.util.find_spec("av"):  # the user's pair (the fixture writes one)
                exists(video)
                exists(pose)
    elif verb == "profile":
        kind_, _, _ = params["device"].partition(":")
        assert kind_ in ("local", "adb"), params["device"]
        if kind_ == "adb":
            from hpv.profiles.android import Delegate

            Delegate(params["delegate"])
    elif verb == "render":
        from hpv.runtime.render import Background

        Background.parse(params["background"])
        for p in params["inputs"]:
            exists(p)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A user's folder: the repository's examples/ and reports/, and the files a README line names
    that the user brings (a checkpoint, a target spec, LiteRT's benchmark_model, a video and its
    .pose)."""
    work = tmp_path_factory.mktemp("readme")
    for name in ("examples", "reports"):
        (work / name).symlink_to(ROOT / name)
    from hpv.stages import STAGES, build_stage
    from hpv.stages.checkpoint import save_weights

    save_weights(build_stage("fire_gen", STAGES.get("fire_gen").small), work / "gen.safetensors")  # --small builds
    spec = (ROOT / "hpv/targets/specs/onnx-cpu.toml").read_text()
    (work / "my-phone.toml").write_text(spec.replace('name = "onnx-cpu"', 'name = "my-phone"'))
    (work / "benchmark_model").write_text("#!/bin/sh\n")  # never reached: the refusal is adb's
    if importlib.util.find_spec("av"):
        _write_video_pair(work / "me.mp4", work / "me.pose")
    return work


def _write_video_pair(video: Path, pose_path: Path, frames: int = 8, width: int = 160, height: int = 96) -> None:
    """A user's video and the .pose made from it: same frame count, rate and size (a plain grey
    video: the pair's shape is what `hpv train --pair` checks and reads)."""
    import io
    from fractions import Fraction

    import av
    import numpy as np

    from hpv.pose import synthetic_pose

    pose = synthetic_pose(frames, seed=3, width=width, height=height)
    buf = io.BytesIO()
    pose.write(buf)
    pose_path.write_bytes(buf.getvalue())
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(float(pose.body.fps)).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 90, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


CHECKED = [c for c in COMMANDS if kind(c) not in ("setup", "bench", "unknown")]


@pytest.mark.parametrize("command", CHECKED, ids=ids(CHECKED))
def test_arguments_parse_and_name_real_things(command, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    argv = _filled(command)
    check_names(argv, _parse(argv), workdir)


BENCH = _of("bench")


@pytest.mark.parametrize("command", BENCH, ids=ids(BENCH))
def test_bench_lines_name_a_script_and_its_options(command):
    """Not run (see NOT_RUN); the script exists and declares every option the line passes."""
    script = ROOT / command.argv[1]
    assert script.is_file(), script
    declared = set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", script.read_text()))
    used = {a for a in command.argv[2:] if a.startswith("--")}
    assert used <= declared, (used - declared, script)
    assert command.text in NOT_RUN


def test_every_command_not_run_says_why_and_is_in_the_readme():
    texts = {c.text for c in COMMANDS}
    assert set(NOT_RUN) <= texts, set(NOT_RUN) - texts
    for c in _of("train"):
        assert c.text in NOT_RUN or "--pair" in c.argv, f"decide whether to run {c}"


# -- running them -----------------------------------------------------------------------------

def _set_options(argv: list[str], options: dict[str, str]) -> list[str]:
    """argv with each option's value replaced (or the option appended)."""
    out = list(argv)
    for opt, value in options.items():
        if opt in out:
            out[out.index(opt) + 1] = value
        else:
            out += [opt, value]
    return out


def as_run(command: Command) -> list[str]:
    """The command as this test runs it: as written, at the small size or with short counts."""
    argv = _filled(command)
    k = kind(command)
    if (k == "train" or "--target" in argv) and "--small" not in argv:
        argv = argv + list(SMALL)
    if k == "profile" or k == "device":
        argv = _set_options(argv, SHORT_PROFILE if k == "profile" else {"--runs": "6", "--warmup": "1"})
    if k == "render":
        argv = _set_options(argv, SHORT_RENDER)
    return [os.path.expandvars(a) for a in argv]


def invoke(argv: list[str]):
    cmd, args = _click_command(argv)
    return CliRunner().invoke(cmd, args)


EXTRAS = {"tflite": ("litert_torch", "ai_edge_litert", "ai_edge_quantizer"), "coreml": ("coremltools",),
          "video": ("av",)}


def missing_extra(argv: list[str], workdir: Path) -> str | None:
    """The pip extra the command needs that is not installed here, if any."""
    need = None
    if argv[0] == "hpv-compile" and "--target" in argv:
        from hpv.targets import get_target

        name = argv[argv.index("--target") + 1]
        fmt = get_target(str(workdir / name) if name.endswith(".toml") else name).format
        need = {"tflite": "tflite", "coreml": "coreml", "onnx": None}[fmt]
    elif argv[:2] == ["hpv", "render"]:
        need = "video"
    if need and not all(importlib.util.find_spec(m) for m in EXTRAS[need]):
        return need
    return None


def check_result(argv: list[str], result, workdir: Path) -> None:
    """A command's run: success, or a refusal for exactly what this machine lacks."""
    out = result.output
    assert "Traceback" not in out, out
    extra = missing_extra(argv, workdir)
    if extra:
        assert result.exit_code == 2 and f"hpv-compile[{extra}]" in out, out
        return
    device = next((need for flag, need in NEEDS_DEVICE.items() if flag in shlex.join(argv)), None)
    if device:
        what, word = device
        assert result.exit_code == 2 and word in out, f"refused for something else than {what}:\n{out}"
        assert "--benchmark-model" not in out.split("error:")[-1], out  # the arguments were fine
        return
    if argv[:2] == ["hpv", "compare"]:
        assert result.exit_code in (0, 1) and "configurations compared" in out, out  # 1: slower beyond noise
        return
    assert result.exit_code == 0, out


FAST = [c for c in COMMANDS if kind(c) in ("list", "umbrella", "profile", "compare", "report", "schedule", "render")]
CI_JOB = [c for c in COMMANDS if c.section.startswith("Profiles") and kind(c) in ("profile", "compare")]


@pytest.fixture(scope="module")
def fast_runs(workdir, small_build):
    """Every fast command in README order, in the user's folder, with the small onnx-cpu build
    standing in for `hpv-compile --target onnx-cpu` (built once per session) and for the CI job's
    baseline and current builds."""
    for folder in ("artifacts/onnx-cpu", "baseline/onnx-cpu", "current/onnx-cpu"):
        shutil.copytree(small_build.folder, workdir / folder)
    results = {}
    cwd = Path.cwd()
    env = os.environ.get("GITHUB_STEP_SUMMARY")
    os.environ["GITHUB_STEP_SUMMARY"] = str(workdir / "step-summary.md")
    os.chdir(workdir)
    try:
        for c in FAST:
            argv = as_run(c)
            results[c.text] = (argv, invoke(argv))
    finally:
        os.chdir(cwd)
        if env is None:
            del os.environ["GITHUB_STEP_SUMMARY"]
        else:
            os.environ["GITHUB_STEP_SUMMARY"] = env
    return results


@pytest.mark.parametrize("command", FAST, ids=ids(FAST))
def test_fast_commands_run_as_written(command, fast_runs, workdir):
    argv, result = fast_runs[command.text]
    check_result(argv, result, workdir)
    written = {"-o": None, "--out": None, "--emit": None, "--markdown": None}
    for i, a in enumerate(argv[:-1]):
        if a in written and kind(command) != "umbrella":
            assert (workdir / argv[i + 1]).exists(), f"{command} did not write {argv[i + 1]}"


def test_hpv_compile_is_hpv_compile(fast_runs):
    (umbrella,) = _of("umbrella")
    _, result = fast_runs[umbrella.text]
    direct = invoke(["hpv-compile", "--list-targets"])
    assert result.exit_code == 0 and result.output == direct.output
    from hpv.cli.main import cli

    assert cli.commands["compile"].callback is _click_command(["hpv-compile"])[0].callback


def test_render_writes_the_formats_asked(fast_runs, workdir):
    assert (workdir / "signer.mov").stat().st_size > 0 and (workdir / "default.mp4").stat().st_size > 0


def test_the_ci_jobs_summary_is_written(fast_runs, workdir):
    assert CI_JOB and all(c.text in fast_runs for c in CI_JOB)
    assert (workdir / "step-summary.md").read_text().startswith("## Latency comparison")


# -- slow: every build line, the adb line against its build, a pair training ------------------

BUILDS = list({c.text: c for c in _of("compile")}.values())  # `hpv-compile --target onnx-cpu` is there twice


@pytest.fixture(scope="module")
def slow_runs(tmp_path_factory, workdir):
    work = tmp_path_factory.mktemp("readme-slow")
    for name in ("examples", "reports", "gen.safetensors", "my-phone.toml", "benchmark_model", "me.mp4", "me.pose"):
        if (workdir / name).exists():
            (work / name).symlink_to(workdir / name)
    results = {}
    cwd = Path.cwd()
    os.chdir(work)
    try:
        for c in BUILDS + _of("device"):
            argv = as_run(c)
            results[c.text] = (argv, invoke(argv))
        for c in _of("train"):
            if c.text not in NOT_RUN:
                argv = as_run(c)
                results[c.text] = (argv, invoke(argv))
    finally:
        os.chdir(cwd)
    return work, results


SLOW = BUILDS + _of("device") + [c for c in _of("train") if c.text not in NOT_RUN]


@pytest.mark.slow
@pytest.mark.parametrize("command", SLOW, ids=ids(SLOW))
def test_slow_commands_run_as_written(command, slow_runs):
    work, results = slow_runs
    argv, result = results[command.text]
    if "--pair" in argv and not importlib.util.find_spec("av"):
        pytest.skip("the video extra is not installed: no video pair to train on (`pip install -e '.[video]'`)")
    check_result(argv, result, work)
    if kind(command) == "compile" and not missing_extra(argv, work):
        target = Path(argv[argv.index("--target") + 1]).stem
        out = argv[argv.index("--out") + 1] if "--out" in argv else "artifacts"
        assert (work / out / target / "manifest.json").is_file(), result.output
