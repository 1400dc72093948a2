"""PyTorch stage -> Core ML mlprogram: torch.export + run_decompositions -> ct.convert with named,
explicitly typed I/O. Recurrent stages come in two variants: state as explicit inputs/outputs
(iOS 17), or held inside the model as Core ML states updated in place (iOS 18)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hpv.errors import ConfigError, ExportError
from hpv.stages import Stage
from hpv.stages.interface import StageInterface, TensorSpec

STATEFUL_MIN_IOS = 18
STATEFUL_MIN_MACOS = 15


@dataclass(frozen=True)
class Deployment:
    """Where the model runs: the minimum OS a target names (`[minimums] ios = 17` or `macos = 14`)."""

    os: str  # "iOS" | "macOS"
    version: int

    @classmethod
    def from_minimums(cls, minimums: dict, target: str) -> Deployment:
        for key, os_name in (("ios", "iOS"), ("macos", "macOS")):
            if key in minimums:
                return cls(os_name, int(minimums[key]))
        raise ConfigError(f"target {target}: a Core ML target needs [minimums] ios = N or macos = N")

    @property
    def ct_target(self):
        import coremltools as ct

        name = f"{self.os}{self.version}"
        if not hasattr(ct.target, name):
            raise ConfigError(f"coremltools {ct.__version__} has no deployment target {name}")
        return getattr(ct.target, name)

    @property
    def supports_states(self) -> bool:
        return self.version >= (STATEFUL_MIN_IOS if self.os == "iOS" else STATEFUL_MIN_MACOS)

    def __str__(self) -> str:
        return f"{self.os} {self.version}"


def state_name(input_name: str) -> str:
    """The Core ML state holding a recurrent input: 'h_in' -> 'h'."""
    return input_name.removesuffix("_in")


def fold_batchnorm(stage: Stage) -> Stage:
    """A copy of the stage with every BatchNorm after a (transposed) convolution folded into it, so
    each Core ML weight is one PyTorch parameter (coremltools would fuse them under a new name)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(stage).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        items = list(module._modules.items())
        for (conv_name, conv), (bn_name, bn) in zip(items, items[1:]):
            if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d):
                module._modules[conv_name] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                module._modules[bn_name] = nn.Identity()
    return folded


class StatefulStage(nn.Module):
    """The stage with its recurrent state kept in buffers and updated in place each call: the form
    coremltools turns into Core ML states. Takes and returns only the non-state tensors."""

    def __init__(self, stage: Stage, batch: int = 1):
        super().__init__()
        self.stage = stage
        self.itf = stage.interface()
        self.bindings = {b.input: b.output for b in self.itf.state}
        for name in self.bindings:
            self.register_buffer(state_name(name), torch.zeros(self.itf.input(name).concrete_shape(batch)))

    def forward(self, *inputs):
        it = iter(inputs)
        args = [getattr(self, state_name(t.name)) if t.name in self.bindings else next(it) for t in self.itf.inputs]
        outs = dict(zip(self.itf.output_names, self.stage(*args)))
        for i, o in self.bindings.items():
            getattr(self, state_name(i)).copy_(outs[o])
        return tuple(outs[t.name] for t in self.itf.outputs if t.name not in self.bindings.values())


def model_io(itf: StageInterface, stateful: bool) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The stage's declared inputs and outputs as the Core ML model has them."""
    if not stateful:
        return list(itf.inputs), list(itf.outputs)
    state_in, state_out = {b.input for b in itf.state}, {b.output for b in itf.state}
    return [t for t in itf.inputs if t.name not in state_in], [t for t in itf.outputs if t.name not in state_out]


def convert(stage: Stage, *, deployment: Deployment, stateful: bool, batch: int | None, max_batch: int,
            compute_precision: str = "fp16"):
    """The stage as an ct.models.MLModel. batch None: a flexible batch 1..max_batch (default 1)."""
    import coremltools as ct

    itf = stage.interface()
    stateful = stateful and itf.is_recurrent
    if stateful and not deployment.supports_states:
        raise ConfigError(
            f"stage {stage.name}: a stateful Core ML model needs iOS {STATEFUL_MIN_IOS} / macOS {STATEFUL_MIN_MACOS} "
            f"(Core ML states, MLState, arrived there; coremltools refuses StateType for {deployment}). "
            f"Use target coreml-ios18, or state = \"explicit\" for {deployment}.")
    if stateful and batch is None:
        raise ConfigError(f"stage {stage.name}: Core ML states have a fixed shape; give the target a fixed batch, e.g. batch = [1]")
    module = fold_batchnorm(stage)
    ins, outs = model_io(itf, stateful)
    if stateful:
        module = StatefulStage(module, batch).eval()
    example_batch = batch or 2  # an example batch of 1 would specialize the exported graph to 1
    example = tuple(torch.zeros(t.concrete_shape(example_batch)) for t in ins)
    dynamic = None if batch else tuple({0: torch.export.Dim("batch", min=1, max=max_batch)} for _ in ins)

    def shape(t: TensorSpec):
        if batch:
            return t.concrete_shape(batch)
        return ct.Shape([ct.RangeDim(1, max_batch, default=1)] + list(t.concrete_shape(1)[1:]))

    try:
        with torch.no_grad():
            program = torch.export.export(module, example, dynamic_shapes=dynamic).run_decompositions({})
        states = [ct.StateType(wrapped_type=ct.TensorType(shape=itf.input(b.input).concrete_shape(batch),
                                                          dtype=np.float16), name=state_name(b.input))
                  for b in itf.state] if stateful else None
        return ct.convert(
            program, convert_to="mlprogram", minimum_deployment_target=deployment.ct_target,
            compute_precision=ct.precision.FLOAT16 if compute_precision == "fp16" else ct.precision.FLOAT32,
            inputs=[ct.TensorType(name=t.name, shape=shape(t), dtype=np.float32) for t in ins],
            outputs=[ct.TensorType(name=t.name, dtype=np.float32) for t in outs],
            states=states, skip_model_load=True,
        )
    except NotImplementedError as e:
        op = re.search(r"Unsupported fx node (\S+)", str(e))
        what = f"op {op.group(1).rstrip(',')!r}" if op else str(e)
        raise ExportError(f"stage {stage.name}: Core ML cannot convert {what} ({e}). Replace that op in the stage, "
                          f"or build this stage for another target") from None
    except (ValueError, RuntimeError, TypeError) as e:
        raise ExportError(f"stage {stage.name}: Core ML conversion failed: {e}") from None
