"""Loading stage weights safely: safetensors, or torch.load(weights_only=True); never a pickle
that can run code. Every mismatch names the key."""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import torch

from hpv.errors import CheckpointError
from hpv.stages.base import Stage, params_tag

WEIGHTS_DIR = Path(__file__).parent / "weights"
UNTRAINED = "untrained"


def sha256_file(path: str | Path) -> str:
    """sha256 of a file; of a folder (a Core ML .mlpackage), over its files' relative paths and
    contents in sorted order."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            h.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def path_bytes(path: str | Path) -> int:
    """Size of a file, or of every file in a folder."""
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _refused_content(error: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler objected to ("Unsupported global: GLOBAL builtins.print"),
    without the advice around it: torch's message says to re-run with weights_only=False or to
    allowlist the global, which is how a pickle runs its code."""
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed global|\. Please use|\n|$)", str(error))
    return found.group(1).strip().rstrip(".") if found else "content the weights-only loader does not accept"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"checkpoint {path} is not a valid safetensors file: {e}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors ({_refused_content(e)}) and was refused: "
            f"only tensors are loaded, never code. Re-save it as a plain state_dict or as safetensors."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a PyTorch file: {e}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} is not a state_dict of tensors")
    return state


def read_upgraded(path: str | Path, stage: Stage) -> dict[str, torch.Tensor]:
    """`read_state_dict`, with weights of an earlier layout of any of `stage`'s modules mapped to
    the current one (each module's `upgrade_state`)."""
    state = read_state_dict(path)
    for name, module in stage.named_modules():
        if hasattr(module, "upgrade_state"):
            module.upgrade_state(state, f"{name}." if name else "")
    return state


def load_weights(stage: Stage, path: str | Path) -> str:
    """Load a checkpoint into `stage` strictly; return the checkpoint's sha256."""
    state = read_upgraded(path, stage)
    expected = stage.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''}")
        raise CheckpointError(
            f"checkpoint {path} does not match stage {stage.name!r} ({stage.tag}): {'; '.join(parts)}. "
            f"Was it saved from a stage with other parameters?"
        )
    for k, v in expected.items():
        if state[k].shape != v.shape:
            raise CheckpointError(
                f"checkpoint {path}: key {k!r} has shape {tuple(state[k].shape)}, stage {stage.name!r} "
                f"({stage.tag}) expects {tuple(v.shape)}"
            )
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"checkpoint {path}: {', '.join(bad[:5])} hold NaN or infinite values; "
                              "it is not a usable model (a diverged training run?)")
    stage.load_state_dict(state, strict=True)
    return sha256_file(path)


def default_weights_path(stage: Stage) -> Path:
    return WEIGHTS_DIR / f"{stage.name}-{params_tag(stage.params)}.safetensors"


def load_default_weights(stage: Stage) -> str:
    """Load the shipped trained weights for this stage and params if there are any; otherwise keep
    the seeded initialisation. Returns the weights' sha256, or "untrained"."""
    path = default_weights_path(stage)
    return load_weights(stage, path) if path.is_file() else UNTRAINED


def load_overlapping_shipped(stage: Stage) -> str | None:
    """Start a stage whose parameters have no shipped weights from the shipped weights of the same
    stage at other parameters (a narrower upscaler from the wider one): every tensor takes the
    leading slice of the shipped tensor along each dimension where the shapes differ. A training
    start, not a model: returns the source file's name, or None when nothing fits."""
    if default_weights_path(stage).is_file():
        return None
    own = stage.state_dict()
    for path in sorted(WEIGHTS_DIR.glob(f"{stage.name}-*.safetensors")):
        state = read_upgraded(path, stage)
        if set(state) != set(own) or any(state[k].dim() != v.dim() for k, v in own.items()):
            continue
        new = {}
        for k, v in own.items():
            w = state[k]
            if any(a < b for a, b in zip(w.shape, v.shape)):
                break  # the shipped stage is narrower somewhere: no slice fills this one
            new[k] = w[tuple(slice(0, n) for n in v.shape)].clone()
        else:
            stage.load_state_dict(new, strict=True)
            return path.name
    return None


def save_weights(stage: Stage, path: str | Path) -> str:
    """Write the stage's weights as safetensors, atomically; return their sha256."""
    from safetensors.torch import save

    from hpv.atomic import write_bytes

    data = save({k: v.contiguous() for k, v in stage.state_dict().items()})
    write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()
