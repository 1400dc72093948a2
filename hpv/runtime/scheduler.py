"""The scheduler: from a device's profiled pipeline configurations, the one with the best expected
quality that holds a frame rate at p90 with headroom.

A configuration is a pipeline entry of the profile (generator variant, precision, refinement steps k,
part stages on or off, batch, output resolution). It holds `fps` when its per-frame p90 (call p90 /
batch) is at most headroom * 1000 / fps. `fps` counts every frame produced: with batch B, each of
the B sequences gets fps / B.

The p90 is taken without outliers (`PipelineProfile.per_frame_p90_ms`, from
`hpv.profiles.schema.robust_p90`): samples above median + max(3 x 1.4826 x MAD, 0.25 x median) are
left out, the slowest first and at most a quarter of them, and the p90 is that of the rest. On a
shared machine a few runs of 20 can take 5x the others (another process had the CPU); the plain
p90 of such a profile is that burst, and plans from it came out at random. The median and MAD
barely move with a burst, so the plan does not; a configuration that is slow on most runs keeps
its figure and is still refused. Without samples (runtimes that report aggregates only) the plain
p90 is used. The first-frame limit reads the call's p90 the same way."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hpv.errors import ConfigError, InfeasibleError, ProfileError
from hpv.profiles.schema import DeviceProfile, PipelineProfile, ProfileFile
from hpv.runtime.table import TABLE_SCHEMA_VERSION, ConfigRecord, DeviceTable, Row, ScheduleTable

RUNNERS_UP = 3


@dataclass(frozen=True)
class Plan:
    device: str
    target: str
    fps: float
    headroom: float
    config: PipelineProfile
    budget_ms: float
    per_frame_p90_ms: float
    slack_ms: float
    expected_psnr_db: float | None
    ladder: tuple[PipelineProfile, ...]
    """config first, then cheaper levels for the online controller: the part stages off, fewer steps,
    then lower resolution."""
    runners_up: tuple[PipelineProfile, ...]
    """the next best feasible configurations, best first."""
    reason: str

    def row(self) -> Row:
        return Row(fps=self.fps, feasible=True, budget_ms=round(self.budget_ms, 4), config=ConfigRecord.of(self.config),
                   slack_ms=round(self.slack_ms, 4), ladder=[ConfigRecord.of(p) for p in self.ladder],
                   reason=self.reason)

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "target": self.target, "headroom": self.headroom,
                **self.row().model_dump(mode="json"),
                "runners_up": [ConfigRecord.of(p).model_dump(mode="json") for p in self.runners_up]}


def describe(p: PipelineProfile) -> str:
    """`default/fire_gen fp32 k=2 768px`, with ` batch 4` when batched and ` +parts` when the part
    stages are drawn."""
    return f"{p.pipeline}/{p.generator} {p.precision} k={p.steps} {p.resolution}px" + (
        f" batch {p.batch}" if p.batch > 1 else "") + p.parts_tag


def _rank(p: PipelineProfile) -> tuple:
    """Higher is better: known quality first, then expected PSNR (to 0.01 dB, finer is noise), then
    lower latency, then fewer steps."""
    q = p.quality.expected_psnr_db if p.quality else None
    return (q is not None, round(q, 2) if q is not None else 0.0, -p.per_frame_p90_ms, -p.steps)


def plan(device: DeviceProfile, fps: float, *, headroom: float = 0.85, first_frame_ms: float | None = None,
         max_batch: int | None = None) -> Plan:
    """The best-quality configuration of `device` that holds `fps`; InfeasibleError when none does."""
    max_batch = 1 if max_batch is None else max_batch
    _check(fps, headroom, first_frame_ms, max_batch)
    budget = headroom * 1000 / fps
    allowed = _allowed(device, first_frame_ms, max_batch)
    feasible = sorted((p for p in allowed if p.per_frame_p90_ms <= budget), key=_rank, reverse=True)
    if not feasible:
        raise _infeasible(device, fps, headroom, allowed, max_batch)
    best = feasible[0]
    return Plan(device=device.device.id, target=device.target, fps=fps, headroom=headroom, config=best,
                budget_ms=budget, per_frame_p90_ms=best.per_frame_p90_ms, slack_ms=budget - best.per_frame_p90_ms,
                expected_psnr_db=best.quality.expected_psnr_db if best.quality else None,
                ladder=ladder(device, best), runners_up=tuple(feasible[1:1 + RUNNERS_UP]),
                reason=_reason(device, best, budget, len(feasible), first_frame_ms, max_batch))


def _check(fps: float, headroom: float, first_frame_ms: float | None, max_batch: int) -> None:
    if not (fps > 0 and math.isfinite(fps)):
        raise ConfigError(f"fps must be a positive number, got {fps}")
    if not 0 < headroom <= 1:
        raise ConfigError(f"headroom must be in (0, 1], got {headroom}: 0.85 leaves 15% of each frame spare")
    if first_frame_ms is not None and not first_frame_ms > 0:
        raise ConfigError(f"first_frame_ms must be positive, got {first_frame_ms}; leave it out for no limit")
    if max_batch < 1:
        raise ConfigError(f"max_batch must be at least 1 (one sequence), got {max_batch}")


def _allowed(device: DeviceProfile, first_frame_ms: float | None, max_batch: int) -> list[PipelineProfile]:
    if not device.pipelines:
        raise ProfileError(f"device {device.device.id!r} ({device.target}) has no pipeline measurements to "
                           "schedule from; profile it with its pipelines")
    return [p for p in device.pipelines if p.batch <= max_batch
            and (first_frame_ms is None or p.latency.planning_p90_ms <= first_frame_ms)]


def ladder(device: DeviceProfile, top: PipelineProfile) -> tuple[PipelineProfile, ...]:
    """`top`, then the same pipeline, generator, precision and batch with the part stages off, then
    fewer steps, then at lower resolutions (most steps first); a level is kept only when it is
    cheaper than the one above it, and once the parts are off they stay off (a ladder that drew
    them again a level down would switch the hands' and face's look back and forth)."""
    def order(p: PipelineProfile) -> tuple:
        return p.resolution, p.steps, p.parts

    same = [p for p in device.pipelines if (p.pipeline, p.generator, p.precision, p.batch)
            == (top.pipeline, top.generator, top.precision, top.batch) and order(p) < order(top)]
    levels = [top]
    for p in sorted(same, key=order, reverse=True):
        if p.per_frame_p90_ms < levels[-1].per_frame_p90_ms and p.parts <= levels[-1].parts:
            levels.append(p)
    return tuple(levels)


def _reason(device: DeviceProfile, best: PipelineProfile, budget: float, n_feasible: int,
            first_frame_ms: float | None, max_batch: int) -> str:
    q = f"{best.quality.expected_psnr_db:.2f} dB" if best.quality else "unknown quality, the fastest"
    n = f"{n_feasible} configurations" if n_feasible > 1 else "the one configuration"
    head = (f"best expected quality ({q}) of {n} that fit "
            f"{budget:.1f} ms per frame at p90 without outliers ({best.per_frame_p90_ms:.1f} ms)")
    better = [p for p in device.pipelines if _rank(p) > _rank(best)]
    if not better:
        return head + "; no configuration of this device is better"
    top = min(better, key=lambda p: p.per_frame_p90_ms)  # the cheapest improvement
    if top.batch > max_batch:
        why = f"needs batch {top.batch} (max batch {max_batch})"
    elif first_frame_ms is not None and top.latency.planning_p90_ms > first_frame_ms:
        why = f"takes {top.latency.planning_p90_ms:.1f} ms per call, over the {first_frame_ms:g} ms first-frame budget"
    else:
        why = f"needs {top.per_frame_p90_ms:.1f} ms per frame"
    q_top = f" ({top.quality.expected_psnr_db:.2f} dB)" if top.quality else ""
    return f"{head}; the cheapest better one, {describe(top)}{q_top}, {why}"


def _infeasible(device: DeviceProfile, fps: float, headroom: float, allowed: list[PipelineProfile],
                max_batch: int) -> InfeasibleError:
    name = f"{device.device.id} ({device.target})"
    budget = headroom * 1000 / fps
    if not allowed:
        return InfeasibleError(f"no configuration of {name} is allowed: every one has a batch over {max_batch} "
                               "or a call over the first-frame budget", device=device.device.id,
                               target=device.target, fps=fps)
    fastest = min(allowed, key=lambda p: (p.per_frame_p90_ms, [-x for x in _rank(p)]))
    best_fps = max_fps(fastest, headroom)
    msg = (f"no configuration of {name} holds {fps:g} fps at p90 with headroom {headroom:g} "
           f"({budget:.1f} ms per frame): the fastest, {describe(fastest)}, takes {fastest.per_frame_p90_ms:.1f} ms, "
           f"so the best achievable is {best_fps:.2f} fps. Ask for at most {best_fps:.2f} fps")
    need = fps * fastest.per_frame_p90_ms / 1000
    msg += (f", or use headroom {math.ceil(need * 100) / 100:.2f}" if need <= 1 else
            f"; even with headroom 1 it reaches only {max_fps(fastest, 1.0):.2f} fps")
    batched = [p for p in device.pipelines if p.batch > max_batch and p.per_frame_p90_ms <= budget]
    if batched:
        msg += f"; batch {min(p.batch for p in batched)} (several sequences) would hold it"
    return InfeasibleError(msg, device=device.device.id, target=device.target, fps=fps, best_fps=best_fps,
                           best=describe(fastest))


def max_fps(p: PipelineProfile, headroom: float) -> float:
    """The highest fps `p` holds at `headroom`, rounded down to 0.01 so that asking for it succeeds."""
    return math.floor(headroom * 1000 / p.per_frame_p90_ms * 100) / 100 if p.per_frame_p90_ms else math.inf


def plans_table(profile: ProfileFile, fps_values: Iterable[float], *, headroom: float = 0.85,
                first_frame_ms: float | None = None, max_batch: int | None = None) -> dict[str, Any]:
    """The plan for each of `fps_values` on every device of `profile`, as the schedule table's JSON."""
    from hpv import __version__

    fps_values = sorted(set(fps_values))
    max_batch = 1 if max_batch is None else max_batch
    if not fps_values:
        raise ConfigError("no frame rates to plan for")
    _check(fps_values[0], headroom, first_frame_ms, max_batch)
    devices = []
    for d in profile.devices:
        rows = []
        for fps in fps_values:
            try:
                rows.append(plan(d, fps, headroom=headroom, first_frame_ms=first_frame_ms, max_batch=max_batch).row())
            except InfeasibleError as e:
                rows.append(Row(fps=fps, feasible=False, budget_ms=round(headroom * 1000 / fps, 4),
                                best_fps=e.best_fps, reason=str(e)))
        allowed = _allowed(d, first_frame_ms, max_batch)
        top = max((max_fps(p, headroom) for p in allowed), default=None)
        devices.append(DeviceTable(device=d.device.id, target=d.target, model=d.device.model, max_fps=top, rows=rows))
    table = ScheduleTable(schema_version=TABLE_SCHEMA_VERSION, generator=f"hpv {__version__}", headroom=headroom,
                          first_frame_ms=first_frame_ms, max_batch=max_batch, devices=devices)
    return table.model_dump(mode="json")
