"""Compiler backends, registered by the format name a target spec names. A backend module is
imported only when a target asks for it, so its heavy dependencies load lazily."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from hpv.compiler.verify import Runner
from hpv.errors import MissingExtraError, UnknownNameError
from hpv.registry import Registry
from hpv.stages import Stage
from hpv.targets import Precision, Target

# format name -> module that registers it; the module is imported on first use.
BACKEND_MODULES = {
    "onnx": "hpv.compiler.backends.onnx",
    "tflite": "hpv.compiler.backends.tflite",
    "coreml": "hpv.compiler.backends.coreml",
}
BACKENDS: Registry[type[Backend]] = Registry("backend")


@dataclass(frozen=True)
class CompileJob:
    stage: Stage
    precision: Precision
    target: Target
    calibration: list[dict[str, np.ndarray]]  # per-frame stage inputs, state included
    batch: int | None = None  # the artifact's fixed batch size; None: dynamic


class Backend(ABC):
    format: ClassVar[str]
    extra: ClassVar[str]  # pip extra that installs this backend's dependencies
    requires: ClassVar[tuple[str, ...]]  # importable modules it needs
    suffix: ClassVar[str]

    def __init__(self):
        for module in self.requires:
            try:
                importlib.import_module(module)
            except ImportError:
                raise MissingExtraError(module, self.extra) from None

    tool_packages: ClassVar[tuple[str, ...]]  # distributions whose versions the manifest records

    def tool_versions(self) -> dict[str, str]:
        from importlib.metadata import PackageNotFoundError, version

        out = {}
        for pkg in self.tool_packages:
            try:
                out[pkg] = version(pkg)
            except PackageNotFoundError:
                pass
        return out

    @abstractmethod
    def prepare(self, stage: Stage, target: Target, path: Path, log, batch: int | None = None) -> dict:
        """Convert the stage at full precision to `path` (shared by every precision); return notes
        for the manifest. `log(step)` reports progress. batch: a fixed batch size, or None for a
        dynamic batch where the format has one."""

    @abstractmethod
    def lower(self, job: CompileJob, path: Path, log) -> dict:
        """Turn the prepared file at `path` into `job.precision`, in place; return notes."""

    @abstractmethod
    def runner(self, path: Path, target: Target, stage: Stage, threads: int | None = None) -> Runner:
        """A callable that runs the artifact on this machine, for verification. (Core ML, which
        cannot run here, runs the artifact's own weights in `stage`.) `threads`: the runtime's
        intra-op threads (None: its default, every core), where it has the option."""

    def check_target(self, target: Target) -> None:
        """Refuse a target whose options this backend cannot honour, before anything is built."""

    def canonical_hash(self, path: Path) -> str | None:
        """A content hash equal for two builds of the same input, where file bytes are not."""
        return None

    @abstractmethod
    def io_signature(self, path: Path) -> dict[str, list[dict]]:
        """The artifact's real inputs and outputs: name, shape, dtype, as stored in the file."""


def register_backend(cls: type[Backend]) -> type[Backend]:
    BACKENDS.add(cls.format, cls)
    return cls


def get_backend(fmt: str) -> Backend:
    if fmt not in BACKEND_MODULES:
        raise UnknownNameError("backend", fmt, BACKEND_MODULES)
    if fmt not in BACKENDS:
        importlib.import_module(BACKEND_MODULES[fmt])
    return BACKENDS.get(fmt)()
