"""What a stage declares about itself. Exporters, calibration, verification and the manifest read
these declarations instead of guessing from example tensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

BATCH = "batch"  # the symbolic batch dimension in declared shapes


class Role(str, Enum):
    """What a tensor carries; calibration uses it to make realistic inputs."""

    POSE = "pose"  # rendered conditioning image (the baseline's contract: the app draws it)
    KEYPOINTS = "keypoints"  # [B, 178, 3] x, y in the 512 frame + confidence; the stage draws its own fields
    FIELDS = "fields"  # keypoint fields [B, C, R, R] drawn by the pipeline's generator, passed on
    IMAGE = "image"  # a person frame (estimate or output)
    PREVIOUS = "previous_frame"  # the pipeline's output for the previous frame
    STEP = "step"  # refinement step index, as float
    STATE = "state"  # recurrent state, fed back from the matching output


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]  # BATCH for the batch dimension
    role: Role
    dtype: str = "float32"
    layout: str = "NCHW"
    # Nominal range of values; None where unbounded (an LSTM cell state).
    value_range: tuple[float, float] | None = (-1.0, 1.0)

    def concrete_shape(self, batch: int) -> tuple[int, ...]:
        return tuple(batch if d == BATCH else int(d) for d in self.shape)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "layout": self.layout,
            "value_range": list(self.value_range) if self.value_range else None,
            "role": self.role.value,
        }


def keypoints_spec(name: str = "keypoints") -> TensorSpec:
    """The keypoint stages' pose input: the app's 178 reduced points, (x, y, confidence) each."""
    from hpv.pose.keypoints import NUM_KEYPOINTS

    return TensorSpec(name, (BATCH, NUM_KEYPOINTS, 3), Role.KEYPOINTS, layout="NPC", value_range=None)


def fields_spec(resolution: int, name: str = "fields") -> TensorSpec:
    """The keypoint fields the generator draws and the later stages of its pipeline take, so the
    pose is drawn once per frame (`hpv.pose.fields`)."""
    from hpv.pose.fields import NUM_FIELDS

    return TensorSpec(name, (BATCH, NUM_FIELDS, resolution, resolution), Role.FIELDS, value_range=(0.0, 1.0))


@dataclass(frozen=True)
class StateBinding:
    """The output whose value the next frame feeds into `input`."""

    input: str
    output: str


@dataclass(frozen=True)
class StageInterface:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    state: tuple[StateBinding, ...] = ()
    scale: int = 1  # output resolution / input resolution
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self):
        names = [t.name for t in self.inputs + self.outputs]
        if len(names) != len(set(names)):
            raise ValueError(f"tensor names must be unique across inputs and outputs: {names}")
        ins, outs = {t.name for t in self.inputs}, {t.name for t in self.outputs}
        for b in self.state:
            if b.input not in ins or b.output not in outs:
                raise ValueError(f"state binding {b} names a tensor the stage does not declare")

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(t for t in self.outputs if t.name == name)

    @property
    def is_recurrent(self) -> bool:
        return bool(self.state)

    def state_output_for(self, input_name: str) -> str:
        return next(b.output for b in self.state if b.input == input_name)

    def image_outputs(self) -> list[TensorSpec]:
        return [t for t in self.outputs if t.role is Role.IMAGE]
