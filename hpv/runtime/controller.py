"""The online controller: keeps the frame rate when the device runs slower than it was profiled
(thermal throttling, a busy CPU) by walking down the plan's ladder one level at a time (the part
stages off, fewer steps, a lower resolution: `hpv.runtime.scheduler.ladder`), and climbs back after
sustained slack. One slow frame or a short burst of them changes nothing: every test
reads order statistics of a window of recent frames that such a burst cannot move.

Its decisions are a function of the frame times alone (no clock, no randomness), so a trace of
frame times gives the same levels in any language; `replay` runs one, and
tests/runtime/controller_vectors.json holds traces with their expected levels for ports.

State: the level (0 = the plan's configuration; higher = cheaper), the last `window` ratios,
`since_change` (frames since the last switch, or since the start) and `fit_above` (a counter).
p50[i] is level i's profiled per-frame p50; `budget` the plan's budget (headroom x frame period).
For each measured frame time t (ms per frame: a batched call's time / its batch), in order:

1. frames += 1; since_change += 1; append r = t / p50[level] to the window (the ratio says how
   much slower than profiled the device runs now; it carries across levels, so level i costs
   r x p50[i] at the current speed). Until the window holds `window` ratios, stop here.
2. Sort the window (N ratios, N odd): m = the middle one (median); u = the (ignore_slowest + 1)-th
   largest, at least m x (1 + min_gap) (with the defaults: the second slowest of the last 9).
3. Down: if m x p50[level] > budget, level is not the last, and since_change > down_cooldown_frames:
   level += 1 (one level), since_change = 0, fit_above = 0. Half the window must be slow for the
   median to move, so fewer than (N + 1) / 2 slow frames never step down; each further level
   needs another down_cooldown_frames + 1 frames of the slowdown.
4. Else, up: if level > 0 and u x p50[level - 1] <= budget, fit_above += 1, and when
   fit_above >= up_frames and since_change > cooldown_frames: level -= 1, since_change = 0,
   fit_above = 0. If the level above does not fit, fit_above = 0.

The gap between the down test (median over budget) and the up test (a near-worst frame of the
window within budget, at the level above) is the hysteresis; ignoring the slowest frame keeps one
stray frame from resetting the climb. A fixed "up below 0.8 x budget" would never return to a plan
whose median sits above 0.8 x budget."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hpv.errors import ConfigError


@dataclass(frozen=True)
class ControllerSettings:
    window: int = 9
    """recent frames the tests read (odd: its median is one frame); no decision until it is full"""
    ignore_slowest: int = 1
    """the up test reads the window's (ignore_slowest + 1)-th slowest frame: one stray frame does not block it"""
    min_gap: float = 0.05
    """the up test takes a frame at least (1 + min_gap) x the median"""
    up_frames: int = 30
    """consecutive frames on which the level above must fit before stepping up"""
    cooldown_frames: int = 30
    """frames after any change before stepping up"""
    down_cooldown_frames: int = 5
    """frames after any change before stepping down again (the window sees the new level)"""

    def __post_init__(self):
        if self.window < 3 or self.window % 2 == 0:
            raise ConfigError(f"window must be an odd number of frames, at least 3 (its median is one frame), "
                              f"got {self.window}")
        if not 0 <= self.ignore_slowest < self.window // 2:
            raise ConfigError(f"ignore_slowest must be 0..{self.window // 2 - 1} for a window of {self.window} "
                              f"(the frame it reads must be above the median), got {self.ignore_slowest}")
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
    """Profiled per-frame p50 of a PipelineProfile or a schedule table ConfigRecord, or the figure
    itself (a number: traces and test vectors)."""
    if isinstance(level, (int, float)):
        return float(level)
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
        """Measured / profiled speed, the window's median; None until the window is full."""
        if len(self._ratios) < self.settings.window:
            return None
        return sorted(self._ratios)[self.settings.window // 2]

    def _upper(self) -> float:
        """The window's (ignore_slowest + 1)-th largest ratio, at least the median x (1 + min_gap)."""
        ordered, s = sorted(self._ratios), self.settings
        return max(ordered[s.window - 1 - s.ignore_slowest], ordered[s.window // 2] * (1 + s.min_gap))

    def fits(self, level: int, ratio: float) -> bool:
        return ratio * self._p50[level] <= self.budget_ms

    def observe(self, frame_ms: float) -> Any:
        self.frames += 1
        self.misses += int(frame_ms > self.deadline_ms)
        self._since_change += 1
        self._ratios.append(float(frame_ms) / self._p50[self.level])
        r, s = self.ratio, self.settings
        if r is None:
            return self.config
        if (not self.fits(self.level, r) and self.level < len(self.ladder) - 1
                and self._since_change > s.down_cooldown_frames):
            self._switch(self.level + 1, r)
        elif self.level > 0 and self.fits(self.level - 1, self._upper()):
            self._fit_above += 1
            if self._fit_above >= s.up_frames and self._since_change > s.cooldown_frames:
                self._switch(self.level - 1, r)
        else:
            self._fit_above = 0
        return self.config

    def _switch(self, to: int, ratio: float) -> None:
        self.switches.append(Switch(self.frames, self.level, to, round(ratio, 4)))
        self.level, self._since_change, self._fit_above = to, 0, 0


def replay(p50_ms: Sequence[float], budget_ms: float, frame_ms: Sequence[float], *, deadline_ms: float | None = None,
           settings: ControllerSettings = ControllerSettings()) -> list[int]:
    """The level each frame of a trace ran at: a controller over a ladder with per-frame p50s
    `p50_ms`, fed `frame_ms` in order (frame i ran at the level returned before it was observed)."""
    c = Controller(list(p50_ms), budget_ms, deadline_ms=deadline_ms, settings=settings)
    levels = []
    for ms in frame_ms:
        levels.append(c.level)
        c.observe(ms)
    return levels
