"""The schedule table: plans for a range of frame rates on every device of a profile, written by
`hpv schedule --emit` so an app can pick its configuration without porting the optimizer.
Versioned, validated on read (unknown keys refused), with a JSON Schema beside this module.
docs/schedule-table.md describes it for app teams."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hpv.errors import ProfileError
from hpv.profiles.schema import PipelineProfile

TABLE_SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "schedule-table.schema.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigRecord(_Strict):
    """One pipeline configuration of the profile, with the figures the scheduler and controller use."""

    pipeline: str
    generator: str
    precision: str
    steps: int = Field(ge=0, description="refinement steps k")
    batch: int = Field(ge=1, description="independent sequences per call")
    resolution: int = Field(ge=1, description="output frame side in pixels")
    parts: bool = Field(False, description="part stages drawn and stitched")
    per_frame_p90_ms: float = Field(ge=0, description="call p90 / batch: what the budget is checked against")
    per_frame_p50_ms: float = Field(ge=0, description="call p50 / batch: the controller's predicted frame time")
    call_p90_ms: float = Field(ge=0, description="p90 of one call (the whole batch), without outliers: the first-frame figure")
    expected_psnr_db: float | None = Field(description="expected PSNR against ground truth; null: unknown")

    @classmethod
    def of(cls, p: PipelineProfile) -> ConfigRecord:
        return cls(pipeline=p.pipeline, generator=p.generator, precision=p.precision, steps=p.steps,
                   batch=p.batch, resolution=p.resolution, parts=p.parts,
                   per_frame_p90_ms=round(p.per_frame_p90_ms, 4),
                   per_frame_p50_ms=round(p.latency.p50_ms / p.batch, 4), call_p90_ms=round(p.latency.planning_p90_ms, 4),
                   expected_psnr_db=p.quality.expected_psnr_db if p.quality else None)


class Row(_Strict):
    """The plan for one frame rate on one device, or the record that none holds it."""

    fps: float = Field(gt=0, description="frames per second asked for (all sequences of a batch together)")
    feasible: bool
    budget_ms: float = Field(gt=0, description="headroom * 1000 / fps: the per-frame p90 allowed")
    config: ConfigRecord | None = Field(None, description="the chosen configuration; null when infeasible")
    slack_ms: float | None = Field(None, description="budget_ms - config.per_frame_p90_ms")
    ladder: list[ConfigRecord] = Field(default_factory=list, description="config first, then cheaper "
                                       "levels (the part stages off, fewer steps, then lower resolution) for the "
                                       "online controller")
    best_fps: float | None = Field(None, description="infeasible rows: the highest fps any allowed "
                                   "configuration holds at this headroom")
    reason: str


class DeviceTable(_Strict):
    device: str = Field(description="device id in the profile")
    target: str = Field(description="build target the device was profiled with")
    model: str
    max_fps: float | None = Field(description="the highest fps any allowed configuration holds; null: none")
    rows: list[Row] = Field(description="sorted by fps, ascending")


class ScheduleTable(_Strict):
    schema_version: Literal[1]
    generator: str = Field(description="tool and version that wrote the file")
    headroom: float = Field(gt=0, le=1)
    first_frame_ms: float | None = Field(description="call p90 limit the plans respect; null: none")
    max_batch: int = Field(ge=1)
    devices: list[DeviceTable]

    def lookup(self, device: str, fps: float, target: str | None = None) -> Row | None:
        """The row to use for `fps` on `device`: the lowest-fps row at or above `fps` (its plan holds a
        tighter budget, so it holds `fps` too). None when `fps` is above every row."""
        tables = [d for d in self.devices if d.device == device and target in (None, d.target)]
        if not tables:
            raise ProfileError(f"device {device!r} is not in the table; it has "
                               f"{', '.join(sorted({d.device for d in self.devices})) or '(none)'}")
        return next((r for r in sorted(tables[0].rows, key=lambda r: r.fps) if r.fps >= fps), None)


def load_table(path: str | Path) -> ScheduleTable:
    path = Path(path)
    try:
        return ScheduleTable.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ProfileError(f"no schedule table at {path}: write one with "
                           f"`hpv schedule PROFILE --emit {path}`") from None
    except ValidationError as e:
        raise ProfileError(f"schedule table {path} is invalid:\n{e}") from None


def table_json_schema() -> dict:
    from hpv.schemas import json_schema

    return json_schema(ScheduleTable, "hpv schedule table")


def write_schema(path: Path = SCHEMA_PATH) -> None:
    from hpv.schemas import write_json_schema

    write_json_schema(table_json_schema(), path)
