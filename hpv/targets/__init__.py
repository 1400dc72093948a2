"""Silicon targets are data: one TOML spec per target under `specs/`, validated and loaded into
frozen objects. Adding a target is adding a file."""

from __future__ import annotations

import json
import math
import tomllib
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hpv.errors import TargetSpecError, UnknownNameError

SPEC_DIR = Path(__file__).parent / "specs"
SCHEMA_PATH = Path(__file__).parent / "target.schema.json"
TARGET_SCHEMA_VERSION = 1
# The largest batch an artifact is built or run at (the ONNX export's dynamic batch ends here too):
# a batch beyond it costs gigabytes of calibration and verification tensors for nothing.
MAX_BATCH = 64
# ONNX opsets the exporter really produces (torch.onnx converts from its native 18; outside this
# range it keeps 18 while the spec, and so the manifest, would claim the opset asked for).
ONNX_OPSETS = range(13, 25)


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"  # weights and activations (ONNX QDQ, LiteRT full-integer)
    # Core ML weight compression (fp16 compute; weights decompressed on load or on the fly):
    W8 = "w8"  # int8 linear weights, per channel
    PAL6 = "pal6"  # 6-bit k-means palettization (64-entry lookup table per weight)
    PAL4 = "pal4"  # 4-bit k-means palettization
    PRUNE50 = "prune50"  # 50% magnitude pruning (sparse weights)
    PRUNE50_PAL4 = "prune50-pal4"  # 50% pruning and 4-bit palettization jointly (iOS 18)


def _whole(x, lo: int, hi: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi


class Tolerance(BaseModel):
    """Limits an artifact's outputs must hold against its PyTorch stage on held-out inputs."""

    # NaN or infinity refused: `nan` in a spec would otherwise pass or fail every artifact unseen.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    min_psnr_db: float = Field(description="minimum PSNR of image outputs, over a state-carrying rollout")
    max_abs_error: float | None = Field(
        None, ge=0, description="maximum absolute error of any output; null: not checked")


class Target(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1]
    name: str
    description: str
    format: str = Field(description="compiler backend that builds this target's artifacts")
    runtime: str = Field(description="runtime the artifacts are meant for on the device")
    compute_units: tuple[str, ...] = Field(description="execution providers / delegates, preferred first")
    fallback: tuple[str, ...] = Field(description="order the runtime falls back in when a unit cannot run an op")
    precisions: tuple[Precision, ...] = Field(description="precisions this target can be built in")
    default_precisions: tuple[Precision, ...]
    batch: Literal["dynamic"] | tuple[Annotated[int, Field(ge=1, le=MAX_BATCH)], ...] = Field(
        "dynamic", description=f"fixed batch sizes to build (1..{MAX_BATCH}), or dynamic")
    minimums: dict[str, int | str] = Field(default_factory=dict, description="e.g. opset, iOS, Android API")
    options: dict[str, int | float | bool | str] = Field(default_factory=dict, description="backend options")
    tolerance: dict[Precision, Tolerance]
    verified_on: str = Field(description="what runs the verification on the build machine")
    heldout_frames: int = Field(12, ge=2, description="frames of the state-carrying verification rollout")
    delegate_ops: tuple[str, ...] = Field(
        (), description="ops the accelerator delegate runs (runtime op names); empty: every op runs on it")
    max_fallback_ops: int | None = Field(
        None, description="refuse an artifact with more op kinds than this falling back to the CPU; null: report only")
    fallback_prone_ops: tuple[str, ...] = Field(
        (), description="ops (runtime op names) likely to fall back from the accelerator; flagged per artifact")
    max_tensor_dim: int | None = Field(
        None, description="largest tensor dimension the accelerator takes; larger tensors are flagged")

    # Before validation: the file's own values in the message (not pydantic's coerced ones), one
    # message per field instead of one per branch of the union.
    @field_validator("batch", mode="before")
    @classmethod
    def _batches(cls, v):
        if v == "dynamic":
            return v
        sizes = list(v) if isinstance(v, list | tuple) else None
        # Whole numbers first: a list of tables or lists cannot go into a set.
        if not sizes or not all(_whole(b, 1, MAX_BATCH) for b in sizes) or len(set(sizes)) != len(sizes):
            raise ValueError(f"batch = {v!r}: write \"dynamic\" or a list of distinct whole numbers "
                             f"from 1 to {MAX_BATCH}, like [1, 4]")
        return v

    @field_validator("minimums", mode="before")
    @classmethod
    def _opset(cls, v):
        if isinstance(v, dict) and "opset" in v and not _whole(v["opset"], ONNX_OPSETS.start, ONNX_OPSETS.stop - 1):
            raise ValueError(f"opset = {v['opset']!r}: write a whole number from {ONNX_OPSETS.start} to "
                             f"{ONNX_OPSETS.stop - 1}, unquoted (18 is the exporter's own)")
        return v

    @field_validator("options", mode="before")
    @classmethod
    def _max_batch(cls, v):
        if isinstance(v, dict) and "max_batch" in v and not _whole(v["max_batch"], 1, MAX_BATCH):
            raise ValueError(f"max_batch = {v['max_batch']!r}: write a whole number from 1 to {MAX_BATCH}")
        if isinstance(v, dict):
            for k, x in v.items():
                if isinstance(x, float) and not math.isfinite(x):
                    raise ValueError(f"options.{k} = {x!r}: write a finite number (or the option's word)")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        for p in self.default_precisions:
            if p not in self.precisions:
                raise ValueError(f"default precision {p.value} is not among precisions")
        for p in self.precisions:
            if p not in self.tolerance:
                raise ValueError(f"precision {p.value} has no [tolerance.{p.value}] table")
        return self

    def check_precision(self, name: str) -> Precision:
        valid = [p.value for p in self.precisions]
        if name not in valid:
            raise UnknownNameError(f"precision for target {self.name}", name, valid)
        return Precision(name)


def load_target_file(path: str | Path) -> Target:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        target = Target.model_validate(data)
    except UnicodeDecodeError as e:
        raise TargetSpecError(f"target spec {path} is not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r}); "
                              f"save it as UTF-8") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise TargetSpecError(f"target spec {path}: {e}") from None
    except ValidationError as e:
        raise TargetSpecError(f"target spec {path} is invalid:\n{e}") from None
    if target.name != path.stem:
        raise TargetSpecError(f"target spec {path} names itself {target.name!r}; the file must be {target.name}.toml")
    return target


@cache
def all_targets() -> dict[str, Target]:
    return {p.stem: load_target_file(p) for p in sorted(SPEC_DIR.glob("*.toml"))}


def get_target(name: str) -> Target:
    """A registered target by name, or a target spec file of your own (`my-phone.toml`)."""
    if name.endswith(".toml"):
        return load_target_file(name)
    targets = all_targets()
    if name not in targets:
        raise UnknownNameError("target", name, targets)
    return targets[name]


def target_json_schema() -> dict:
    return Target.model_json_schema()


def write_schema(path: Path = SCHEMA_PATH) -> None:
    from hpv.atomic import write_text

    write_text(path, json.dumps(target_json_schema(), indent=2) + "\n")
