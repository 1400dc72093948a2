"""The online controller: keeps the frame rate when the device runs slower than it was profiled
(thermal throttling, a busy CPU) by walking down the plan's ladder, and climbs back after sustained slack.

It tracks the speed ratio r, the median over a window of measured / predicted frame time
(predicted: the level's profiled per-frame p50), and its spread. The ratio carries across levels, so the cost of any
level at the current speed is r times its profiled figure.

- down, when the current level's median at this speed is over budget (r * p50 > budget), to the
  best level that fits (below), or the last;
- up one level, when the level above fits on `up_frames` frames in a row and `cooldown_frames`
  have passed since the last change.

A level fits when its p90 at the current speed is within budget: the p90 of the window's ratios
(at least the median * (1 + min_gap)) times the level's profiled p50. That is the planner's own test
with the spread measured now, so noise the profile did not see keeps the controller down. The gap
between the down test (median over budget) and the up test (p90 within budget) is the hysteresis.
A fixed "up below 0.8 * budget" would never return to a plan whose median sits above 0.8 * budget."""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hpv.errors import ConfigError


@dataclass(frozen=True)
class ControllerSettings:
    window: int = 9
    """frames in the median of measured / predicted; no decision until it is full"""
    min_gap: float = 0.05
    """the up test takes a level's p90 as at least its p50 * (1 + min_gap)"""
    up_frames: int = 30
    """consecutive frames on which the level above must fit before stepping up"""
    cooldown_frames: int = 30
    """frames after any change before stepping up"""
    down_cooldown_frames: int = 5
    """frames after any change before stepping down again (the window sees the new level)"""

    def __post_init__(self):
        if self.window < 3:
            raise ConfigError(f"window must be at least 3 frames (a median and a p90), got {self.window}")
        if self.up_frames < 1:
            raise ConfigError(f"up_frames must be at least 1, got {self.up_frames}")
        for name in ("cooldown_frames", "down_cooldown_frames"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if not 0 <= self.min_gap < 1:
            raise ConfigError(f"min_gap must be in [0, 1), got {self.min_gap}; 0.05 is 5%")


@dataclass(frozen=True)
class Switch:
    frame: int
    """frames observed when the change was made; the new level runs from the next frame"""
    from_level: int
    to_level: int
    ratio: float


def _predicted_ms(level: Any) -> float:
    """Profiled per-frame p50 of a PipelineProfile or a schedule table ConfigRecord."""
    if hasattr(level, "per_frame_p50_ms"):
        return level.per_frame_p50_ms
    return level.latency.p50_ms / level.batch


class Controller:
    """Feed it each frame's measured time with `observe`; it returns the configuration for the next
    frame. Frame times are per frame: a batched call's time divided by its batch."""

    def __init__(self, ladder: Sequence[Any], budget_ms: float, *, deadline_ms: float | None = None,
                 settings: ControllerSettings = ControllerSettings()):
        if not ladder:
            raise ConfigError("the controller needs a ladder of at least one configuration")
        if not budget_ms > 0:
            raise ConfigError(f"budget_ms must be positive, got {budget_ms}")
        self.ladder = tuple(ladder)
        self.budget_ms = budget_ms
        self.deadline_ms = budget_ms if deadline_ms is None else deadline_ms
        self.settings = settings
        self._p50 = tuple(_predicted_ms(x) for x in self.ladder)
        self._ratios: deque[float] = deque(maxlen=settings.window)
        self.level = 0
        self.frames = 0
        self.misses = 0
        self.switches: list[Switch] = []
        self._since_change = 0
        self._fit_above = 0

    @classmethod
    def from_plan(cls, plan, settings: ControllerSettings = ControllerSettings()) -> Controller:
        """Budget from the plan (with its headroom); deadline misses against the frame period."""
        return cls(plan.ladder, plan.budget_ms, deadline_ms=1000 / plan.fps, settings=settings)

    @property
    def config(self) -> Any:
        return self.ladder[self.level]

    @property
    def ratio(self) -> float | None:
        """Measured / profiled speed; None until the window is full."""
        return statistics.median(self._ratios) if len(self._ratios) == self._ratios.maxlen else None

    def _ratio_p90(self) -> float:
        p90 = statistics.quantiles(self._ratios, n=10, method="inclusive")[-1]
        return max(p90, self.ratio * (1 + self.settings.min_gap))

    def fits(self, level: int, ratio_p90: float) -> bool:
        return ratio_p90 * self._p50[level] <= self.budget_ms

    def observe(self, frame_ms: float) -> Any:
        self.frames += 1
        self.misses += int(frame_ms > self.deadline_ms)
        self._since_change += 1
        self._ratios.append(float(frame_ms) / self._p50[self.level])
        r, s = self.ratio, self.settings
        if r is None:
            return self.config
        last, r90 = len(self.ladder) - 1, self._ratio_p90()
        if (r * self._p50[self.level] > self.budget_ms and self.level < last
                and self._since_change > s.down_cooldown_frames):
            below = range(self.level + 1, last + 1)
            self._switch(next((j for j in below if self.fits(j, r90)), last), r)
        elif self.level > 0 and self.fits(self.level - 1, r90):
            self._fit_above += 1
            if self._fit_above >= s.up_frames and self._since_change > s.cooldown_frames:
                self._switch(self.level - 1, r)
        else:
            self._fit_above = 0
        return self.config

    def _switch(self, to: int, ratio: float) -> None:
        self.switches.append(Switch(self.frames, self.level, to, round(ratio, 4)))
        self.level, self._since_change, self._fit_above = to, 0, 0
