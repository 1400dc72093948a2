"""The artifact manifest: what an app team imports. Versioned, validated on read (unknown keys
are refused), with a JSON Schema file beside this module for other languages."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hpv.errors import ManifestError
from hpv.targets import MAX_BATCH

MANIFEST_NAME = "manifest.json"
SCHEMA_PATH = Path(__file__).parent / "manifest.schema.json"
SCHEMA_VERSION = 1
SHA256 = r"^[0-9a-f]{64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuantRecord(_Strict):
    """How an integer tensor maps to real values: real = (q - zero_point) * scale. A state output
    and the matching state input can have different scales: requantize between frames."""

    scale: float
    zero_point: int
    dtype: str


class TensorRecord(_Strict):
    name: str = Field(min_length=1)
    shape: list[Annotated[int, Field(ge=1)] | str] = Field(
        min_length=1, description='dimensions (each >= 1); "batch" where the batch size is free')
    dtype: str
    layout: str = Field(description="NCHW or NHWC for images, NC for vectors")
    value_range: tuple[float, float] | None = Field(description="nominal real range; null if unbounded")
    role: Literal["pose", "keypoints", "fields", "image", "previous_frame", "step", "state"]
    quantization: QuantRecord | None = Field(None, description="for integer tensors")

    @field_validator("value_range")
    @classmethod
    def _range(cls, v):
        # Images are scaled by 1 / (hi - lo): an empty or infinite range would make every pixel NaN.
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError(f"value_range {list(v)}: write [low, high] with finite low < high, or null")
        return v


class StateRecord(_Strict):
    input: str = Field(description="state input of frame t+1 ...")
    output: str = Field(description="... takes this output of frame t")
    model_state: str | None = Field(None, description="the runtime state that holds it inside the model "
                                    "(Core ML stateful); null: the app feeds output back to input")


class _Finite(_Strict):
    """A verification figure that is NaN or infinite says nothing was checked: refused on load."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ToleranceRecord(_Finite):
    min_psnr_db: float
    max_abs_error: float | None


class VerificationRecord(_Finite):
    checked_on: str = Field(description="what ran the artifact on the build machine")
    psnr_db: float = Field(description="worst PSNR of image outputs against the PyTorch stage")
    psnr_late_db: float | None = Field(None, description="the same over the rollout's second half: drift shows here")
    max_abs_error: float = Field(description="largest absolute error of any output, state included")
    frames: int = Field(ge=1, description="held-out calls in order (frames; a refiner has one per step), "
                                          "state carried by the artifact itself")
    batches: list[int] = Field(description="batch sizes checked")
    tolerance: ToleranceRecord
    inputs: str = Field(description="where the held-out inputs came from")


RELATIVE_PATH = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$"


class CheckDataRecord(_Strict):
    """Held-out inputs and the PyTorch stage's outputs, stored beside the artifact so a runtime
    that cannot run here (Core ML on macOS) can be checked where it runs."""

    path: str = Field(pattern=RELATIVE_PATH, description="an .npz: in/<name>/<t> and ref/<name>/<t> arrays")
    bytes: int = Field(ge=1)
    sha256: str = Field(pattern=SHA256)
    frames: int = Field(ge=1)


class ArtifactRecord(_Strict):
    stage: str
    params: dict[str, int | float | str]
    format: str
    precision: str
    batch: Annotated[int, Field(ge=1, le=MAX_BATCH)] | Literal["dynamic"] = Field(
        description=f"frames per call: 1..{MAX_BATCH}, or dynamic")
    # Relative, inside the build folder: no leading "/", no segment starting with "." (so no "..").
    path: str = Field(pattern=RELATIVE_PATH, description="relative to the manifest's folder (a folder for .mlpackage)")
    bytes: int = Field(ge=1)
    sha256: str = Field(pattern=SHA256)
    inputs: list[TensorRecord]
    outputs: list[TensorRecord]
    state: list[StateRecord]
    weights: str = Field(pattern=r"^(untrained|[0-9a-f]{64})$",
                         description='"untrained" or the sha256 of the source weights')
    verification: VerificationRecord
    canonical_sha256: str | None = Field(None, pattern=SHA256, description="a content hash that is equal for two "
                                         "builds of the same input where the file bytes are not (Core ML)")
    check_data: CheckDataRecord | None = None
    notes: dict[str, int | float | bool | str] = Field(default_factory=dict)


class Manifest(_Strict):
    schema_version: Literal[1]
    target: str
    pipeline: str
    generator: str = Field(description="tool and version that wrote this manifest")
    tool_versions: dict[str, str]
    calibration: str = Field(description="where the calibration poses came from")
    artifacts: list[ArtifactRecord] = Field(min_length=1)
    part_stages: dict[str, str] = Field(
        default_factory=dict, description="part (left_hand, right_hand, face) -> the stage of this build that "
        "draws it in a crop stitched into the upscaled frame (docs/stitching.md); empty: no part stages")
    max_steps: int | None = Field(
        default=None, ge=0, description="refinement steps the pipeline runs at most (its K: a runtime offers "
        "k = 0..max_steps); absent in builds written before it: the pipeline's own K")

    @model_validator(mode="after")
    def _part_stages_are_built(self):
        # A runtime in another language reads which part each part stage draws from here, so a
        # part must name a stage the build holds and a part the stitch knows.
        from hpv.parts.crops import PARTS

        stages = {a.stage for a in self.artifacts}
        for name, stage in self.part_stages.items():
            if name not in PARTS:
                raise ValueError(f"part_stages names part {name!r}; the parts are {sorted(PARTS)}")
            if stage not in stages:
                raise ValueError(f"part_stages draws {name!r} with stage {stage!r}, which the build lacks "
                                 f"(its stages: {sorted(stages)})")
        return self


def manifest_json_schema() -> dict:
    from hpv.schemas import json_schema

    return json_schema(Manifest, "hpv-compile artifact manifest")


def write_schema(path: Path = SCHEMA_PATH) -> None:
    from hpv.schemas import write_json_schema

    write_json_schema(manifest_json_schema(), path)


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    from hpv.atomic import write_text

    return write_text(folder / MANIFEST_NAME, manifest.model_dump_json(indent=2) + "\n")


def load_manifest(folder: str | Path, *, check_files: bool = True) -> Manifest:
    """Read and validate `folder/manifest.json`; with check_files, every artifact must exist with
    the recorded size and sha256."""
    from hpv.stages.checkpoint import path_bytes, sha256_file

    folder = Path(folder)
    path = folder / MANIFEST_NAME if folder.is_dir() and folder.name != MANIFEST_NAME else folder
    folder = path.parent
    if path.is_dir():
        raise ManifestError(f"{path} is a folder, not a manifest file: remove it and rebuild with "
                            f"`hpv-compile --target ...`")
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}: build one with `hpv-compile --target ...`") from None
    except OSError as e:
        raise ManifestError(f"cannot read manifest {path}: {e.strerror or e}") from None
    except ValidationError as e:
        raise ManifestError(f"manifest {path} is invalid:\n{e}") from None
    if check_files:
        inside = folder.resolve()
        for i, a in enumerate(manifest.artifacts):
            for rel, size, sha in [(a.path, a.bytes, a.sha256)] + (
                    [(a.check_data.path, a.check_data.bytes, a.check_data.sha256)] if a.check_data else []):
                f = folder / rel
                if not f.exists():
                    raise ManifestError(f"manifest {path} lists {rel}, which is missing")
                outside = _outside(f, inside)
                if outside is not None:
                    raise ManifestError(f"manifest {path}: artifacts[{i}] {rel} is a link to {outside}, outside the "
                                        f"build folder; copy the file into {folder} instead of linking it")
                if path_bytes(f) != size or sha256_file(f) != sha:
                    raise ManifestError(f"manifest {path}: {rel} does not match its recorded size/sha256")
    return manifest


def _outside(path: Path, folder: Path) -> Path | None:
    """Where `path` (or, for a folder artifact, a file in it) really lies, if not inside `folder`."""
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        real = p.resolve()
        if not real.is_relative_to(folder):
            return real
    return None
