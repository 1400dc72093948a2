"""What Linux can read of an .mlpackage: the interface (inputs, outputs, states), the op inventory,
weight dtypes, the effective (decompressed) weights, and a hash that two builds of the same input
share. Nothing here runs the model: Core ML prediction needs macOS."""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import numpy as np
import torch

from hpv.compiler.coreml.compress import COMPRESSED_SUFFIXES
from hpv.errors import VerificationError

DATE_KEY = "com.github.apple.coremltools.conversion_date"
WEIGHTS = Path("Data/com.apple.CoreML/weights/weight.bin")
_DTYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "INT32": "int32", "DOUBLE": "float64"}


def _model(path: Path):
    import coremltools as ct

    return ct.models.MLModel(str(path), skip_model_load=True)


def _program(model):
    from coremltools.converters.mil.frontend.milproto.load import load

    spec = model.get_spec()
    return load(spec, spec.specificationVersion, model.weights_dir)


def io_signature(path: Path) -> dict[str, list[dict]]:
    """Inputs, outputs and states as the spec stores them; a flexible first dimension is "batch"."""
    from coremltools.proto import FeatureTypes_pb2 as ft

    model = _model(path)
    desc = model.get_spec().description
    # Output shapes are not in the spec's description; the program's output variables have them.
    program_outputs = {v.name: v.shape for v in _program(model).functions["main"].outputs}

    def dtype(array) -> str:
        return _DTYPES.get(ft.ArrayFeatureType.ArrayDataType.Name(array.dataType), "unknown")

    def describe(feature) -> dict:
        array = feature.type.multiArrayType
        shape: list[int | str] = [int(d) for d in array.shape]
        if not shape and feature.name in program_outputs:
            shape = [int(d) if isinstance(d, int | np.integer) else "batch" for d in program_outputs[feature.name]]
        ranges = array.shapeRange.sizeRanges
        if ranges and ranges[0].lowerBound != ranges[0].upperBound:
            shape[0] = "batch"
        return {"name": feature.name, "shape": shape, "dtype": dtype(array),
                "layout": "NCHW" if len(shape) == 4 else "NC"}

    def state(feature) -> dict:
        array = feature.type.stateType.arrayType
        return {"name": feature.name, "shape": [int(d) for d in array.shape], "dtype": dtype(array)}

    return {"inputs": [describe(f) for f in desc.input], "outputs": [describe(f) for f in desc.output],
            "states": [state(f) for f in desc.state]}


def op_inventory(path: Path) -> tuple[dict[str, int], dict[str, int], list[tuple[int, ...]]]:
    """(op type -> count, weight dtype -> count, every intermediate tensor shape)."""
    from coremltools.converters.mil.mil import types

    ops = list(_program(_model(path)).functions["main"].operations)
    inventory = collections.Counter(op.op_type for op in ops)
    weight_dtypes: collections.Counter = collections.Counter()
    shapes = []
    packed = {id(v) for op in ops if op.op_type.startswith("constexpr") for v in op.inputs.values()}
    for op in ops:
        if op.op_type.startswith("constexpr"):
            for name, var in op.inputs.items():
                if var.op is not None and var.op.op_type == "const" and np.size(var.val) > 1:
                    weight_dtypes[f"{name}:{types.builtin_to_string(var.dtype)}"] += 1
        elif op.op_type == "const" and np.ndim(op.outputs[0].val) >= 2 and id(op.outputs[0]) not in packed:
            weight_dtypes[f"dense:{types.builtin_to_string(op.outputs[0].dtype)}"] += 1
        shapes += [tuple(int(d) for d in v.shape if isinstance(d, int | np.integer)) for v in op.outputs]
    return dict(sorted(inventory.items())), dict(sorted(weight_dtypes.items())), shapes


def canonical_sha256(path: Path) -> str:
    """sha256 of the spec serialized deterministically without its conversion date, then the weight
    file: equal for two builds of the same input (model.mlmodel's raw bytes and the package's
    Manifest.json are not)."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    spec.description.metadata.userDefined.pop(DATE_KEY, None)
    h = hashlib.sha256(spec.SerializeToString(deterministic=True))
    weights = Path(path) / WEIGHTS
    if weights.is_file():
        h.update(weights.read_bytes())
    return h.hexdigest()


def _torch_key(const_name: str) -> str:
    """'p_down1_0_0_weight_to_fp16_palettized' -> 'down1_0_0_weight'."""
    name = const_name
    for suffix in COMPRESSED_SUFFIXES + ("_to_fp16",):
        name = name.removesuffix(suffix)
    name = name.removesuffix("_to_fp16")
    return name.removeprefix("p_").removeprefix("stage_")  # stateful models wrap the stage as `stage`


def effective_state_dict(path: Path, stage: torch.nn.Module, artifact: str) -> dict[str, torch.Tensor]:
    """The weights the Core ML model really computes with (compression undone, fp16 as stored),
    keyed like `stage`'s state_dict. Raises VerificationError when a parameter has no weight in the
    model or the shapes differ."""
    from coremltools.optimize.coreml import decompress_weights

    model = decompress_weights(_model(path))
    consts = {}
    for op in model._mil_program.functions["main"].operations:
        if op.op_type == "const" and op.outputs[0].val is not None and np.ndim(op.outputs[0].val) >= 1:
            consts[_torch_key(op.name)] = np.asarray(op.outputs[0].val)
    wanted = {n: t for n, t in stage.state_dict().items() if not n.endswith("num_batches_tracked")}
    out, missing = {}, []
    for name, tensor in wanted.items():
        value = consts.get(name.replace(".", "_"))
        if value is None or value.size != tensor.numel():
            missing.append(name)
            continue
        out[name] = torch.from_numpy(value.astype(np.float32).reshape(tensor.shape))
    if missing:
        raise VerificationError(artifact, "weights_found", len(wanted) - len(missing), len(wanted),
                                f"no Core ML weight for {missing[:5]} (the weight-level check needs each parameter)")
    return out
