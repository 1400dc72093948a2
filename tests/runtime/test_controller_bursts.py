"""The online controller on timing traces with bursts (issue 13, item 3): one slow frame or a
short burst never steps down, a longer one steps down one level, a sustained slowdown walks down
and comes back; and the shared test vectors (controller_vectors.json, for ports of the controller
to other languages) replay to the levels they record.

Regenerate the vectors after a deliberate change of the controller's logic (and tell the porting
teams): python -m tests.runtime.test_controller_bursts"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from hpv.runtime.controller import Controller, ControllerSettings, replay

VECTORS = Path(__file__).parent / "controller_vectors.json"
# The default pipeline on a 2-core CPU (hpv profile, int8): k=1 then k=0, per-frame p50 in ms.
TWO_LEVELS = [28.5, 20.5]
BUDGET = 0.85 * 1000 / 25  # 34 ms: 25 fps with headroom 0.85
# Six levels: k=2, 1, 0 at 768 px, then at 512 px (tests/runtime/test_controller.py's device).
SIX_LEVELS = [32.0, 24.0, 16.0, 14.4, 10.8, 7.2]


def jitter(i: int) -> float:
    """+-3% around 1, deterministic."""
    return 1 + 0.03 * (((i * 7) % 5) - 2) / 2


def slow(*spans: tuple[int, int, float]):
    """The device's slowdown at frame i: `factor` for `length` frames from `start`, for each span."""
    return lambda i: next((f for start, length, f in spans if start <= i < start + length), 1.0)


def simulate(p50: list[float], budget: float, slowdown, frames: int) -> dict:
    """A trace as a device produces it: each frame takes the running level's p50 x the slowdown x
    jitter, rounded to microseconds, and the controller picks the next level from it."""
    settings = ControllerSettings()
    c = Controller(list(p50), budget, settings=settings)
    trace, levels = [], []
    for i in range(frames):
        levels.append(c.level)
        trace.append(round(p50[c.level] * slowdown(i) * jitter(i), 3))
        c.observe(trace[-1])
    return {"settings": asdict(settings), "p50_ms": list(p50), "budget_ms": budget, "frame_ms": trace,
            "levels": levels, "switches": [[s.frame, s.from_level, s.to_level] for s in c.switches]}


def cases() -> list[dict]:
    six = 0.85 * 1000 / 20  # 42.5 ms: 20 fps
    out = [
        ("steady", TWO_LEVELS, BUDGET, slow(), 200),
        ("one slow frame", TWO_LEVELS, BUDGET, slow((40, 1, 10.0)), 200),
        ("short burst: 4 frames at 5x", TWO_LEVELS, BUDGET, slow((40, 4, 5.0)), 200),
        ("two short bursts", TWO_LEVELS, BUDGET, slow((40, 3, 6.0), (47, 1, 6.0)), 200),
        ("long burst: 12 frames at 5x", TWO_LEVELS, BUDGET, slow((40, 12, 5.0)), 200),
        ("sustained slowdown 1.4x from 40 to 120", TWO_LEVELS, BUDGET, slow((40, 80, 1.4)), 200),
        ("deep slowdown 3x from 20 to 120", SIX_LEVELS, six, slow((20, 100, 3.0)), 300),
        ("burst at 768 px: 6 frames at 4x", SIX_LEVELS, six, slow((30, 6, 4.0)), 150),
    ]
    return [{"name": name, **simulate(p50, budget, f, n)} for name, p50, budget, f, n in out]


def _vectors() -> list[dict]:
    return json.loads(VECTORS.read_text())["vectors"]


def _by_name(name: str) -> dict:
    return next(v for v in _vectors() if v["name"] == name)


@pytest.mark.parametrize("name", [v["name"] for v in cases()])
def test_vectors_replay_to_their_levels(name):
    vector = _by_name(name)
    settings = ControllerSettings(**vector["settings"])
    assert replay(vector["p50_ms"], vector["budget_ms"], vector["frame_ms"], settings=settings) == vector["levels"]


def test_vectors_are_current():
    """The committed file is what the controller does; regenerate it (module docstring) on purpose only."""
    assert _vectors() == json.loads(json.dumps(cases()))


@pytest.mark.parametrize("name", ["steady", "one slow frame", "short burst: 4 frames at 5x", "two short bursts"])
def test_one_slow_frame_or_a_short_burst_changes_nothing(name):
    v = _by_name(name)
    assert set(v["levels"]) == {0} and v["switches"] == []


def test_a_long_burst_steps_down_one_level_and_comes_back():
    v = _by_name("long burst: 12 frames at 5x")
    assert [s[1:] for s in v["switches"]] == [[0, 1], [1, 0]]
    down, up = v["switches"]
    assert 40 + 4 <= down[0] <= 40 + 6  # once the median is slow: the fifth slow frame of 9
    assert up[0] - down[0] > ControllerSettings().cooldown_frames  # and back after sustained slack


def test_a_burst_at_the_top_of_a_long_ladder_drops_one_level_not_several():
    v = _by_name("burst at 768 px: 6 frames at 4x")
    assert max(v["levels"]) == 1 and v["levels"][-1] == 0


def test_a_sustained_slowdown_walks_down_and_back_one_level_at_a_time():
    v = _by_name("sustained slowdown 1.4x from 40 to 120")  # k=1 at 1.4x: 39.9 ms > 34, k=0 28.7 fits
    assert v["levels"][60:120] == [1] * 60 and v["levels"][-1] == 0
    deep = _by_name("deep slowdown 3x from 20 to 120")
    steps = [to - frm for _, frm, to in deep["switches"]]
    assert all(abs(s) == 1 for s in steps)
    lowest = max(deep["levels"])
    assert SIX_LEVELS[lowest] * 3 <= deep["budget_ms"] < SIX_LEVELS[lowest - 1] * 3  # the first level that fits
    assert deep["levels"].index(lowest) <= 20 + 5 + 6 * (lowest - 1) + 1 and deep["levels"][-1] == 0


def test_decisions_depend_on_the_trace_alone():
    v = _by_name("long burst: 12 frames at 5x")
    settings = ControllerSettings(**v["settings"])
    runs = [replay(v["p50_ms"], v["budget_ms"], v["frame_ms"], settings=settings) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_settings_keep_the_window_odd():
    from hpv.errors import ConfigError

    for kwargs in ({"window": 8}, {"window": 9, "ignore_slowest": 4}, {"ignore_slowest": -1}):
        with pytest.raises(ConfigError):
            ControllerSettings(**kwargs)
    ControllerSettings(window=3, ignore_slowest=0)


if __name__ == "__main__":
    from hpv.atomic import write_text

    write_text(VECTORS, json.dumps({
        "about": "Timing traces for ports of hpv.runtime.controller.Controller (its docstring describes the "
                 "logic). For each vector: a controller over levels with per-frame p50s p50_ms and budget "
                 "budget_ms, fed frame_ms in order; levels[i] is the level frame i ran at (read before "
                 "observing it); switches are [frames observed, from level, to level]. Deadline counting is "
                 "not part of the decisions.",
        "vectors": cases()}, indent=1) + "\n")
    print(f"wrote {VECTORS}")
