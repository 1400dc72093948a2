"""The online controller on a simulated clock: each frame takes a time drawn from the running level's
profiled samples, times the device's slowdown at that frame, times optional extra noise."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from hpv.errors import ConfigError
from hpv.runtime import Controller, ControllerSettings, ScheduleTable, plan, plans_table
from tests.profiles import factory


def device():
    """fp32 at 768 px (16 + 8k ms per frame) and at 512 px (45% of that, k <= 2)."""
    d = factory.device()
    small = [factory.pipeline(k, (16 + 8 * k) * 0.45, resolution=512, psnr=20 + k / 2, seed=k) for k in range(3)]
    return d.model_copy(update={"pipelines": d.pipelines + small})


def simulate(controller: Controller, slowdown: Callable[[int], float], frames: int = 500, *, noise: float = 0.0,
             seed: int = 0) -> tuple[list[int], int]:
    """Run `frames` frames; returns the level used for each frame and the frames over the deadline."""
    rng = np.random.default_rng(seed)
    levels, misses = [], 0
    for t in range(frames):
        config = controller.config
        levels.append(controller.level)
        ms = rng.choice(config.latency.samples_ms) / config.batch * slowdown(t) * np.exp(rng.normal(0, noise))
        misses += ms > controller.deadline_ms
        controller.observe(ms)
    return levels, misses


def slow_between(start: int, end: int, factor: float) -> Callable[[int], float]:
    return lambda t: factor if start <= t < end else 1.0


@pytest.fixture
def plan20():
    p = plan(device(), 20)  # 42.5 ms budget; k=2 at 768 px (33.5 ms p90) on top
    assert [(c.steps, c.resolution) for c in p.ladder] == [(2, 768), (1, 768), (0, 768), (2, 512), (1, 512), (0, 512)]
    return p


@pytest.mark.parametrize("seed", range(3))
def test_constant_load_stays_on_the_plan(plan20, seed):
    c = Controller.from_plan(plan20)
    levels, misses = simulate(c, lambda t: 1.0, seed=seed)
    assert set(levels) == {0} and c.switches == [] and misses == c.misses == 0
    assert c.frames == 500 and c.ratio == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("seed", range(5))
def test_slowdown_steps_down_settles_and_comes_back(plan20, seed):
    c = Controller.from_plan(plan20)
    levels, misses = simulate(c, slow_between(100, 300, 1.6), seed=seed)
    down, *rest = c.switches
    assert 100 < down.frame <= 110 and down.to_level > 0  # within a few frames
    assert levels[300 - 1] == down.to_level  # settled: no change for the rest of the slow period
    assert all(s.frame < 120 or s.frame >= 300 for s in c.switches)
    assert levels[-1] == 0 and all(s.frame > 300 + c.settings.up_frames for s in rest)  # back up after it ends
    assert len(c.switches) <= 4
    assert misses == c.misses and misses <= 10  # the frames before it reacted


def test_a_deep_slowdown_goes_to_the_lower_resolution(plan20):
    c = Controller.from_plan(plan20)
    levels, _ = simulate(c, slow_between(100, 300, 3.0))
    assert c.ladder[levels[250]].resolution == 512  # 3x: no 768 configuration fits
    down = [s for s in c.switches if s.frame < 300]
    # one level at a time, each after the down cooldown: there within 4 x 6 frames of the start
    assert [s.to_level - s.from_level for s in down] == [1] * len(down) and down[-1].frame <= 100 + 5 + 4 * 6
    assert levels[-1] == 0 and len(c.switches) <= 2 * (len(c.ladder) - 1)
    assert sorted({s.to_level for s in c.switches if s.frame >= 300}, reverse=True) == \
        [s.to_level for s in c.switches if s.frame >= 300]  # one level at a time on the way up


@pytest.mark.parametrize("seed", range(5))
def test_noise_around_the_boundary_switches_little(plan20, seed):
    # the device is slower by just the factor that puts the top level's median on the budget
    at_boundary = plan20.budget_ms / (plan20.config.latency.p50_ms / plan20.config.batch)
    c = Controller.from_plan(plan20)
    simulate(c, lambda t: at_boundary, noise=0.1, seed=seed)
    assert len(c.switches) <= 3


@pytest.mark.parametrize("seed", range(3))
def test_noise_the_profile_did_not_see_keeps_a_tight_plan_down(seed):
    # at 25 fps the top level's p90 is within 2% of the budget; 10% extra noise breaks that
    c = Controller.from_plan(plan(device(), 25))
    simulate(c, lambda t: 1.0, noise=0.1, seed=seed)
    assert len(c.switches) <= 2


def test_cooldown_and_up_frames_hold_it_down():
    p = plan(device(), 20)
    slow = ControllerSettings(up_frames=80, cooldown_frames=100)
    c = Controller.from_plan(p, settings=slow)
    simulate(c, slow_between(0, 40, 1.6), frames=300)
    up = [s for s in c.switches if s.to_level < s.from_level]
    assert up and up[0].frame >= 40 + 80


def test_runs_from_a_schedule_table_row():
    table = ScheduleTable.model_validate(plans_table(factory.profile(device()), [20]))
    row = table.lookup("phone-a", 18)
    c = Controller(row.ladder, row.budget_ms, deadline_ms=1000 / 18)
    for _ in range(20):
        c.observe(row.config.per_frame_p50_ms * 2)
    assert c.level > 0 and c.config.per_frame_p50_ms * 2 <= row.budget_ms


def test_counts_deadline_misses():
    c = Controller([factory.pipeline(1, 10.0)], 20.0, deadline_ms=25.0)
    for ms in (10, 30, 24, 26, 10):
        c.observe(ms)
    assert (c.frames, c.misses, c.level) == (5, 2, 0)  # one level: nowhere to go


def test_bad_settings():
    with pytest.raises(ConfigError):
        Controller([], 10.0)
    with pytest.raises(ConfigError):
        Controller([factory.pipeline(1, 10.0)], 0)
    for kwargs in ({"window": 2}, {"up_frames": 0}, {"cooldown_frames": -1}, {"min_gap": 1.0}):
        with pytest.raises(ConfigError):
            ControllerSettings(**kwargs)
