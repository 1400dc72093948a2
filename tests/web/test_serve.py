"""`hpv serve`: the demo page plays a .pose file through the web runtime in headless Chromium."""

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSE = ROOT / "examples" / "signer.pose"

# Reads the canvas back (analysis only): alpha coverage and how much of what is kept is raw green.
CANVAS_STATS = """
const src = document.getElementById('view');
const c = document.createElement('canvas'); c.width = src.width; c.height = src.height;
const g = c.getContext('2d'); g.drawImage(src, 0, 0);
const d = g.getImageData(0, 0, c.width, c.height).data;
let opaque = 0, green = 0, sum = 0, sum2 = 0;
for (let i = 0; i < d.length; i += 4) {
  if (d[i + 3] < 128) continue;
  opaque++;
  const [r, gg, b] = [d[i], d[i + 1], d[i + 2]];
  if (gg > 127.5 && gg > 1.5 * r && gg > 1.5 * b) green++;
  const y = (r + gg + b) / 3; sum += y; sum2 += y * y;
}
const n = d.length / 4, mean = sum / Math.max(opaque, 1);
return { opaque: opaque / n, green: green / Math.max(opaque, 1), std: Math.sqrt(Math.max(sum2 / Math.max(opaque, 1) - mean * mean, 0)) };
"""


def play(build: Path, shot: Path, frames: int = 12) -> tuple[dict, dict]:
    """Open `hpv serve`'s page on `build` in headless Chromium until `frames` frames are drawn;
    returns the last page state and the canvas figures, and keeps a screenshot at `shot`."""
    from hpv.cli.serve import demo_server
    from hpv.compiler.web.chromium import Chromium

    server = demo_server(build, POSE, 0)
    try:
        with Chromium() as browser:
            browser.goto(server.origin + "/")
            deadline = time.monotonic() + 120
            seen = []
            while time.monotonic() < deadline:
                state = browser.eval("return {n: hpvDemo.stats.length, error: hpvDemo.error, where: hpvDemo.where,"
                                     " overlay: document.getElementById('overlay').textContent};")
                assert state["error"] is None, state
                seen.append(state["n"])
                if state["n"] >= frames:
                    break
                time.sleep(0.5)
            assert seen[-1] >= frames and seen[-1] > seen[0], seen  # frames advance
            stats = browser.eval(CANVAS_STATS)
            browser.screenshot(shot)
    finally:
        server.close()
    print(f"screenshot: {shot}; canvas {stats}")
    return state, stats


def test_demo_page_plays_frames_in_a_worker(wasm_build, tmp_path):
    state, stats = play(wasm_build.folder, tmp_path / "demo-small.png")
    assert state["where"] == "worker" and " fps · k " in state["overlay"], state
    assert (tmp_path / "demo-small.png").stat().st_size > 1000
    assert stats["opaque"] > 0 and stats["std"] > 2, stats  # drawn, not blank (untrained weights: no person)


@pytest.mark.slow
def test_demo_page_shows_the_person_keyed(browser_ready, tmp_path):
    """The shipped weights at full size: the green screen keyed away, a person drawn."""
    from hpv.compiler.build import CompileRequest, compile

    build = compile(CompileRequest(target="onnx-wasm", out=tmp_path, precisions=("fp32",))).folder
    state, stats = play(build, tmp_path / "demo.png")
    assert 0.03 < stats["opaque"] < 0.8, stats  # part transparent (the key), part the person
    assert stats["green"] < 0.05 and stats["std"] > 5, stats  # not the raw green, not one flat colour
