"""Typed errors. Every error a user can cause derives from `HpvError`; the CLI prints its message
and exits with `exit_code` (2), never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HpvError(Exception):
    """Base of every error caused by bad input or a failed check; the message says how to fix it."""

    exit_code = 2


class UnknownNameError(HpvError, LookupError):
    """A name (stage, target, precision, backend, ...) that is not registered."""

    def __init__(self, kind: str, name: str, choices: Iterable[str]):
        self.kind, self.name = kind, name
        self.choices = sorted(choices)
        close = difflib.get_close_matches(name, self.choices, n=1)
        self.suggestion = close[0] if close else None
        hint = f" Did you mean {self.suggestion!r}?" if self.suggestion else ""
        # "target" -> "Valid targets"; a qualified kind ("precision for target x") -> "Valid ones"
        plural = f"{kind}s" if " " not in kind else "ones"
        super().__init__(
            f"unknown {kind} {name!r}.{hint} Valid {plural}: {', '.join(self.choices) or '(none)'}"
        )

    def __str__(self) -> str:  # LookupError would repr() the message
        return self.args[0]


class DuplicateRegistrationError(HpvError):
    """A name registered twice in one registry."""


class ConfigError(HpvError, ValueError):
    """An option value that is out of range or inconsistent with another option."""


class PoseFileError(HpvError):
    """A `.pose` file that cannot be read or does not hold a usable pose sequence."""


class CheckpointError(HpvError):
    """A checkpoint that is unsafe, corrupt, or does not match the stage's parameters."""


class TargetSpecError(ConfigError):
    """A target spec file that does not validate."""


class ManifestError(HpvError):
    """A manifest that does not validate or points at files that are missing or changed."""


class ArtifactRunError(ManifestError):
    """An artifact that loaded failed while running (damaged, or from another version)."""


class MissingExtraError(HpvError, ImportError):
    """An optional dependency that is not installed; names the pip extra that brings it."""

    def __init__(self, package: str, extra: str):
        self.package, self.extra = package, extra
        super().__init__(
            f"{package} is not installed. Install it with: pip install 'hpv-compile[{extra}]'"
        )


class ExportError(HpvError):
    """A stage that a backend could not convert; names the stage and what failed."""


class VerificationError(HpvError):
    """An artifact whose outputs are outside the tolerance against its PyTorch stage."""

    def __init__(self, artifact: str, metric: str, measured: float, tolerance: float, detail: str = ""):
        self.artifact, self.metric = artifact, metric
        self.measured, self.tolerance = measured, tolerance
        relation = ">=" if metric.endswith("_db") else "<="
        super().__init__(
            f"{artifact}: verification failed: {metric} = {measured:.4g}, required {relation} "
            f"{tolerance:.4g}{'; ' + detail if detail else ''}"
        )


class DataError(HpvError):
    """Training or evaluation data (a video, a video/pose pair) that cannot be read or does not match."""


class DelegateFallbackError(HpvError):
    """An artifact with more ops falling back from the target's delegate than the target allows."""

    def __init__(self, artifact: str, target: str, ops: list[str], allowed: int):
        self.artifact, self.target, self.ops, self.allowed = artifact, target, ops, allowed
        super().__init__(
            f"{artifact}: {len(ops)} op kinds would fall back from {target}'s delegate to the CPU "
            f"({', '.join(ops)}); the target allows {allowed}. Use a stage without these ops or another target."
        )


class ProfileError(HpvError):
    """A device profile that cannot be read, does not validate, or lacks what a command needs."""


class DeviceError(HpvError):
    """A device that cannot be reached or that failed a measurement (adb, benchmark_model)."""


class InfeasibleError(HpvError):
    """A frame rate that no configuration of a device holds; says the best achievable rate and with what."""

    def __init__(self, message: str, *, device: str | None = None, target: str | None = None,
                 fps: float | None = None, best_fps: float | None = None, best: str | None = None):
        self.device, self.target, self.fps = device, target, fps
        self.best_fps, self.best = best_fps, best
        super().__init__(message)
