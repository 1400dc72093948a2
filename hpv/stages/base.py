"""The stage registry. A stage is an nn.Module class with a frozen params dataclass; it declares
its interface from its params, and runs its declared inputs in order to its declared outputs."""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from hpv.errors import ConfigError
from hpv.registry import Registry
from hpv.stages.interface import StageInterface


class Stage(nn.Module):
    """Base of every stage. `forward(*inputs)` takes the declared inputs in order and returns a
    tuple of the declared outputs in order."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "generator" | "refiner" | "upscaler"
    Params: ClassVar[type]
    # Whether an ONNX int8 build may quantize the stage's first layer. An image stage's first layer
    # stays float unless the stage says so: quantized, the upscaler's image neighbourhood (its
    # linear base) fell from 66 to 58 dB. A stage whose first layer only feeds a learned residual
    # (the refiner) can say yes.
    int8_first_layer: ClassVar[bool] = False

    def __init__(self, params: Any):
        super().__init__()
        self.params = params

    def interface(self) -> StageInterface:
        raise NotImplementedError

    @property
    def tag(self) -> str:
        """Short string naming the build parameters, for artifact file names."""
        return params_tag(self.params)

    def initial_state(self, batch: int = 1) -> dict[str, torch.Tensor]:
        """Zero state for the first frame, keyed by state input name."""
        itf = self.interface()
        return {b.input: torch.zeros(itf.input(b.input).concrete_shape(batch)) for b in itf.state}


@dataclass(frozen=True)
class StageDef:
    name: str
    cls: type[Stage]
    small: Any  # params for tests: every stage at a size CI converts quickly
    description: str

    @property
    def kind(self) -> str:
        return self.cls.kind

    def params(self, **overrides) -> Any:
        try:
            return self.cls.Params(**overrides)
        except TypeError as e:
            fields = [f.name for f in dataclasses.fields(self.cls.Params)]
            raise ConfigError(f"stage {self.name!r}: {e}; its parameters are {fields}") from None


STAGES: Registry[StageDef] = Registry("stage")


def register_stage(name: str, *, small: dict, description: str):
    def decorator(cls: type[Stage]) -> type[Stage]:
        cls.name = name
        STAGES.add(name, StageDef(name, cls, cls.Params(**small), description))
        return cls

    return decorator


def params_tag(params: Any) -> str:
    return "-".join(f"{f.name}{getattr(params, f.name)}" for f in dataclasses.fields(params))


def build_stage(name: str, params: Any = None, *, seed: int | None = None) -> Stage:
    """Instantiate a registered stage with seeded weights, in eval mode.

    The default seed derives from the stage name, so an untrained stage is the same module on
    every machine and every run."""
    sdef = STAGES.get(name)
    params = params if params is not None else sdef.cls.Params()
    if not isinstance(params, sdef.cls.Params):
        raise ConfigError(f"stage {name!r} takes {sdef.cls.Params.__name__}, got {type(params).__name__}")
    seed = zlib.crc32(name.encode()) if seed is None else seed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = sdef.cls(params)
    return module.eval()


def check_positive(owner: str, **values: int) -> None:
    for k, v in values.items():
        if not isinstance(v, int) or v <= 0:
            raise ConfigError(f"{owner}: {k} must be a positive integer, got {v!r}")


def check_resolution(owner: str, resolution: int, multiple: int) -> None:
    if resolution % multiple:
        raise ConfigError(f"{owner}: resolution must be a multiple of {multiple}, got {resolution}")
