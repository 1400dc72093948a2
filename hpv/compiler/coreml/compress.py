"""Weight compression after conversion, with coremltools.optimize.coreml. `weight_threshold` is set
on purpose (the target's option, 0 by default): coremltools skips weights under 2048 elements by
default, which would silently leave a small stage's layers uncompressed."""

from __future__ import annotations

from hpv.errors import ConfigError
from hpv.targets import Precision

# Compression op each mode must leave in the program, by deployment generation.
EXPECTED_OPS = {
    Precision.W8: ({"constexpr_affine_dequantize"}, {"constexpr_blockwise_shift_scale"}),
    Precision.PAL6: ({"constexpr_lut_to_dense"},) * 2,
    Precision.PAL4: ({"constexpr_lut_to_dense"},) * 2,
    Precision.PRUNE50: ({"constexpr_sparse_to_dense"},) * 2,
    Precision.PRUNE50_PAL4: (set(), {"constexpr_lut_to_sparse", "constexpr_sparse_to_dense"}),
}
COMPRESSED_SUFFIXES = ("_quantized", "_palettized", "_sparsified")


def expected_ops(precision: Precision, ios18_ops: bool) -> set[str]:
    return EXPECTED_OPS[precision][int(ios18_ops)] if precision in EXPECTED_OPS else set()


LEARNED_OP_TYPES = ("conv", "conv_transpose", "linear")


def few_valued_layers(model, levels: int) -> list[str]:
    """Names of the learned layers whose weight has at most `levels` distinct values."""
    import numpy as np

    from hpv.compiler.coreml.inspect import _program

    names = []
    for op in _program(model).functions["main"].operations:
        w = op.inputs.get("weight") if op.op_type in LEARNED_OP_TYPES else None
        if w is not None and w.val is not None and len(np.unique(w.val)) <= levels:
            names.append(op.name)
    return names


PALETTE_LEVELS = {Precision.PAL6: 64, Precision.PAL4: 16, Precision.PRUNE50_PAL4: 16}


def compress(model, precision: Precision, *, weight_threshold: int, joint_supported: bool):
    """The model with its weights compressed as `precision` asks (fp16/fp32: unchanged)."""
    from coremltools.optimize import coreml as cto

    def learned(op_config):
        # Only the learned layers' weights: the keypoint rasterizer's constant tables (splat
        # positions, pixel grid) feed elementwise ops and must stay exact.
        return cto.OptimizationConfig(op_type_configs={t: op_config for t in LEARNED_OP_TYPES})

    def palettize(m, nbits: int, joint: bool = False):
        config = learned(cto.OpPalettizerConfig(mode="kmeans", nbits=nbits, weight_threshold=weight_threshold))
        # k-means with more clusters than a weight has distinct values returns a wrong table (the
        # upscaler's bilinear base came out 0.67 off): such a weight stays as it is (it is tiny).
        config.op_name_configs = {name: None for name in few_valued_layers(m, 2**nbits)}
        return cto.palettize_weights(m, config, joint_compression=joint)

    def prune(m):
        config = learned(cto.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=weight_threshold))
        return cto.prune_weights(m, config)

    if precision in (Precision.FP16, Precision.FP32):
        return model
    if precision is Precision.W8:
        config = learned(cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=weight_threshold))
        return cto.linear_quantize_weights(model, config)
    if precision is Precision.PAL6:
        return palettize(model, 6)
    if precision is Precision.PAL4:
        return palettize(model, 4)
    if precision is Precision.PRUNE50:
        return prune(model)
    if precision is Precision.PRUNE50_PAL4:
        if not joint_supported:
            raise ConfigError("prune50-pal4 compresses jointly (sparse + palettized weights), which Core ML "
                              "supports from iOS 18 / macOS 15: use target coreml-ios18")
        return palettize(prune(model), 4, joint=True)
    raise ConfigError(f"precision {precision.value} is not a Core ML compression mode")
