"""`hpv profile` and `hpv render` print only the project's own lines: what runtimes and libraries
print themselves (absl / TensorFlow INFO lines, LiteRT's delegate line, torchao's "Failed to load",
pytree warnings) goes to a log in the temp folder, which a failure names (issue 13, item 5).

The commands run in a child process whose stderr is a real file descriptor, as on a terminal;
the noise is written the ways those libraries write it (native writes to fd 2, warnings, logging)
when the build is loaded, so the check does not depend on which runtimes are installed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

NOISE = [
    "I0000 00:00:1796185115.024043    8040 port.cc:153] oneDNN custom operations are on.",
    "Failed to load /venv/torchao/_C_mxfp8.cpython-310-x86_64-linux-gnu.so: Could not load this library",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "W1202 04:18:39.977000 8040 torch/utils/_pytree.py:630] register_constant() on Enum subclasses is deprecated",
]
MARKERS = ("absl", "Failed to load", "INFO:", "I0000", "_pytree.py", "LeafSpec")

NOISY_HPV = """
import logging, os, sys, warnings
import hpv.runtime.build as build

real = build.load_build

def noisy(*args, **kwargs):
    for line in {noise!r}[:3]:
        os.write(2, (line + "\\n").encode())  # native code: straight to the file descriptor
    print({noise!r}[3], file=sys.stderr)
    warnings.warn("LeafSpec is deprecated", FutureWarning)
    logging.getLogger("absl").warning("absl says hello")
    return real(*args, **kwargs)

build.load_build = noisy
from hpv.cli.main import cli
cli(sys.argv[1:], prog_name="hpv")
"""


def _hpv(tmp_path, *args):
    env = {**os.environ, "TMPDIR": str(tmp_path), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", NOISY_HPV.format(noise=NOISE), *map(str, args)],
                          capture_output=True, text=True, env=env)


def _noise_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(m in line for m in MARKERS)]


def _log_holds_the_noise(path):
    text = path.read_text()
    assert all(line in text for line in NOISE) and "absl says hello" in text and "LeafSpec" in text


def test_profile_prints_only_its_own_lines(small_build, tmp_path):
    run = _hpv(tmp_path, "profile", small_build.folder, "--out", tmp_path / "p.json", "--runs", 2, "--rounds", 1,
               "--pipeline-runs", 2, "--peak-gmacs", 1)
    assert run.returncode == 0, run.stderr
    assert not _noise_in(run.stdout + run.stderr), run.stderr
    assert "written to" in run.stderr and "pipeline" in run.stderr
    assert not run.stderr.startswith("\n")  # no blank line left by a progress bar
    _log_holds_the_noise(tmp_path / "hpv-profile.log")


def test_render_prints_only_its_own_lines(small_build, pose_file, tmp_path):
    pytest.importorskip("av")
    run = _hpv(tmp_path, "render", pose_file, "-o", tmp_path / "s.mp4", "--artifacts", small_build.folder,
               "--frames", 3, "-k", 0)
    assert run.returncode == 0, run.stderr
    assert not _noise_in(run.stdout + run.stderr), run.stderr
    assert run.stderr.startswith("wrote ") and (tmp_path / "s.mp4").is_file()
    _log_holds_the_noise(tmp_path / "hpv-render.log")
    run = _hpv(tmp_path, "render", pose_file, "-o", tmp_path / "j.mp4", "--artifacts", small_build.folder,
               "--frames", 2, "-k", 0, "--json")
    assert run.returncode == 0 and run.stdout.lstrip().startswith("{") and not _noise_in(run.stdout + run.stderr)


def test_a_failed_render_names_the_log(small_build, pose_file, tmp_path):
    pytest.importorskip("av")
    run = _hpv(tmp_path, "render", pose_file, "-o", tmp_path / "s.mp4", "--artifacts", small_build.folder,
               "-k", 99)
    assert run.returncode == 2 and "error:" in run.stderr and "Traceback" not in run.stderr
    assert not _noise_in(run.stderr) and str(tmp_path / "hpv-render.log") in " ".join(run.stderr.split())
