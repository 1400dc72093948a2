"""A build folder, loaded once for running it here: the manifest validated, every artifact's
format matched to the target, and every tensor the manifest lists (names, shapes, dtypes, batch)
checked against the artifact file's own signature. The renderer and the profiler run what this
checked, so a tampered or stale manifest is refused with the field named instead of crashing a
runtime mid-frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hpv.artifacts.manifest import MANIFEST_NAME, ArtifactRecord, Manifest, TensorRecord, load_manifest
from hpv.errors import ConfigError, ManifestError, MissingExtraError
from hpv.targets import Target

if TYPE_CHECKING:  # the backends import torch: loaded only when a build is
    from hpv.compiler.backends import Backend

RUNNABLE = ("onnx", "tflite")  # formats with a runtime on this machine


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


@dataclass(frozen=True)
class Build:
    folder: Path
    manifest: Manifest
    target: Target
    backend: Backend

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST_NAME

    def where(self, record: ArtifactRecord) -> str:
        return f"{self.manifest_path}: artifacts[{self.manifest.artifacts.index(record)}] ({record.path})"

    def runner(self, record: ArtifactRecord, threads: int | None = None):
        """The artifact's runner (NCHW float feeds -> outputs), at `threads` intra-op threads (None:
        the runtime's default); a file its runtime refuses is a ManifestError naming it, not the
        runtime's own exception."""
        try:
            return self.backend.runner(self.folder / record.path, self.target, None, threads)
        except MissingExtraError:
            raise
        except Exception as e:  # noqa: BLE001 - each runtime raises its own types for a bad file
            raise ManifestError(f"{self.where(record)}: {self.backend.format} runtime cannot load the file "
                                f"({_first_line(e)}); rebuild it with hpv-compile --target {self.target.name}") from None


def load_build(folder: str | Path, manifest: Manifest | None = None) -> Build:
    """The build in `folder` (its manifest read and checked here unless given), every artifact
    checked against its file. Refuses formats this machine cannot run."""
    from hpv.compiler.backends import get_backend
    from hpv.targets import get_target

    folder = Path(folder)
    if folder.name == MANIFEST_NAME and not folder.is_dir():
        folder = folder.parent
    manifest = manifest or load_manifest(folder)
    target = get_target(manifest.target)
    for i, a in enumerate(manifest.artifacts):
        if a.format != target.format:
            raise ManifestError(f"{folder / MANIFEST_NAME}: artifacts[{i}].format is {a.format!r}, but target "
                                f"{target.name} builds {target.format!r} artifacts; rebuild with hpv-compile "
                                f"--target {target.name}")
    if target.format not in RUNNABLE:
        raise ConfigError(f"{folder}: {target.format} artifacts cannot run on this machine; build for "
                          f"{', '.join(RUNNABLE)} targets (Core ML runs in the macOS job)")
    build = Build(folder, manifest, target, get_backend(target.format))
    for a in manifest.artifacts:
        _check_artifact(build, a)
    return build


def _check_artifact(build: Build, a: ArtifactRecord) -> None:
    where, backend = build.where(a), build.backend
    if not a.path.endswith(backend.suffix):
        raise ManifestError(f"{where}: path {a.path!r} is not a {backend.format} file ({backend.suffix}), the "
                            f"format the manifest and target {build.target.name} say")
    try:
        sig = backend.io_signature(build.folder / a.path)
    except MissingExtraError:
        raise
    except Exception as e:  # noqa: BLE001 - garbage or truncated bytes: each parser raises its own
        raise ManifestError(f"{where}: the file is not a readable {backend.format} model ({_first_line(e)}); "
                            f"rebuild it with hpv-compile --target {build.target.name}") from None
    if not sig.get("inputs") and not sig.get("outputs"):
        raise ManifestError(f"{where}: the file parses as a {backend.format} model with no inputs or outputs "
                            f"(corrupt or not a model); rebuild it with hpv-compile --target {build.target.name}")
    for kind in ("inputs", "outputs"):
        _check_tensors(where, kind, getattr(a, kind), sig[kind], a.batch)
    inputs, outputs = {t.name for t in a.inputs}, {t.name for t in a.outputs}
    for j, s in enumerate(a.state):
        if s.model_state is None and (s.input not in inputs or s.output not in outputs):
            raise ManifestError(f"{where}: state[{j}] feeds output {s.output!r} back to input {s.input!r}, but the "
                                f"artifact's inputs are {sorted(inputs)} and its outputs {sorted(outputs)}")


def _check_tensors(where: str, kind: str, records: list[TensorRecord], actual: list[dict], batch) -> None:
    have = {t["name"]: t for t in actual}
    names = [t.name for t in records]
    for j, t in enumerate(records):
        field = f"{kind}[{j}]"
        got = have.get(t.name)
        if got is None:
            raise ManifestError(f"{where}: {field}.name is {t.name!r}, which the file does not have; its {kind} "
                                f"are {sorted(have)}")
        if names.count(t.name) > 1:
            raise ManifestError(f"{where}: {kind} lists {t.name!r} {names.count(t.name)} times")
        if list(t.shape) != list(got["shape"]):
            raise ManifestError(f"{where}: {field}.shape is {list(t.shape)}, but the file's {t.name!r} is "
                                f"{list(got['shape'])}")
        if t.dtype != got["dtype"]:
            raise ManifestError(f"{where}: {field}.dtype is {t.dtype!r}, but the file's {t.name!r} is "
                                f"{got['dtype']!r}")
        first = got["shape"][0] if got["shape"] else None
        if isinstance(first, int) and batch != first:
            raise ManifestError(f"{where}: batch is {batch!r}, but the file's {t.name!r} takes batch {first}")
        if isinstance(first, str) and batch != "dynamic":
            raise ManifestError(f"{where}: batch is {batch!r}, but the file's {t.name!r} takes any batch "
                                f"(write \"dynamic\")")
    extra = sorted(set(have) - set(names))
    if extra:
        raise ManifestError(f"{where}: the file has {kind} {extra} that the manifest does not list")
