"""Resumable training state in safetensors: model weights, Adam moments and the step counter.

Randomness is a pure function of (seed, step) (see `step_generator`), so a run resumed from a
checkpoint takes exactly the batches and dropout masks an uninterrupted run would."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from hpv.errors import CheckpointError


def step_generator(seed: int, step: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step) % (2**63))
    return g


def save_state(path: Path, models: dict[str, nn.Module], optims: dict[str, torch.optim.Optimizer],
               step: int, meta: dict) -> None:
    from safetensors.torch import save

    from hpv.atomic import write_bytes

    tensors: dict[str, torch.Tensor] = {}
    for name, m in models.items():
        for k, v in m.state_dict().items():
            tensors[f"model.{name}.{k}"] = v.detach().contiguous()
    for name, opt in optims.items():
        for idx, st in opt.state_dict()["state"].items():
            for k, v in st.items():
                tensors[f"optim.{name}.{idx}.{k}"] = torch.as_tensor(v).detach().clone().contiguous()
    header = {"step": str(step), "meta": json.dumps(meta, sort_keys=True)}
    write_bytes(path, save(tensors, metadata=header))


def load_state(path: Path, models: dict[str, nn.Module], optims: dict[str, torch.optim.Optimizer],
               meta: dict) -> int:
    """Load into `models` and `optims`; refuse a checkpoint made with another config. Returns the step."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"training checkpoint {path} is corrupt: {e}") from None
    if "step" not in header:
        raise CheckpointError(f"{path} is not a training checkpoint (no step in its header)")
    saved = json.loads(header.get("meta", "{}"))
    if saved != json.loads(json.dumps(meta, sort_keys=True)):
        diff = sorted(k for k in set(saved) | set(meta) if saved.get(k) != meta.get(k))
        raise CheckpointError(f"training checkpoint {path} was made with other settings ({', '.join(diff)}); "
                              f"resume with the same config or start afresh")
    for name, m in models.items():
        prefix = f"model.{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        missing = sorted(set(m.state_dict()) - set(state))
        if missing:
            raise CheckpointError(f"training checkpoint {path}: {name} lacks {', '.join(missing[:5])}")
        m.load_state_dict(state)
    for name, opt in optims.items():
        sd = opt.state_dict()
        prefix = f"optim.{name}."
        per_param: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith(prefix):
                idx, key = k[len(prefix):].split(".", 1)
                per_param.setdefault(int(idx), {})[key] = v
        sd["state"] = per_param
        opt.load_state_dict(sd)
    return int(header["step"])
