"""LiteRT backend: convert (NHWC, fixed batch) -> precision; verified in ai-edge-litert's
interpreter with XNNPACK and 2 threads. Reports which ops a target's delegate would not run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpv.compiler.backends import Backend, CompileJob, register_backend
from hpv.errors import ExportError
from hpv.stages.interface import Role
from hpv.targets import Precision, Target

THREADS = 2


LEARNED_TFLITE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED")


def _interpreter(path: Path, threads: int | None = None):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path), num_threads=THREADS if threads is None else threads)


def prologue_op_indices(details: list[dict], input_details: list[dict], inputs: list[str]) -> set[int]:
    """Indices of the ops (`_get_ops_details()`, in execution order) computed from the named graph
    inputs and constants alone, up to (not including) the first learned layer."""
    produced = {t for op in details for t in op["outputs"]}
    graph_inputs = {d["index"]: d["name"] for d in input_details}
    derived = {i for i, n in graph_inputs.items() if any(n.startswith(f"serving_default_{x}") for x in inputs)}
    constant = lambda t: t not in produced and t not in graph_inputs  # noqa: E731
    prologue = set()
    for op in details:
        ins = [t for t in op["inputs"] if t >= 0]
        if op["op_name"] in LEARNED_TFLITE_OPS:
            continue
        if all(t in derived or constant(t) for t in ins) and any(t in derived for t in ins):
            derived.update(op["outputs"])
            prologue.add(op["index"])
    return prologue


def _io_name(detail_name: str, names: list[str]) -> str:
    """Map a tensor detail name ('serving_default_pose:0', 'serving_default_image_output') to ours."""
    for n in sorted(names, key=len, reverse=True):
        if detail_name.startswith(f"serving_default_{n}"):
            return n
    raise ExportError(f"LiteRT tensor {detail_name!r} matches none of {names}")


def to_device(x: np.ndarray, meta: dict) -> np.ndarray:
    """An NCHW float tensor as the artifact takes it: NHWC, quantized where the input is int8."""
    x = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
    if meta["quantization"]:
        q = meta["quantization"]
        return np.ascontiguousarray(np.clip(np.round(x / q["scale"]) + q["zero_point"], -128, 127), np.int8)
    return np.ascontiguousarray(x, np.float32)


def from_device(y: np.ndarray, meta: dict) -> np.ndarray:
    """An artifact output back as an NCHW float tensor (dequantized where it is int8)."""
    if meta["quantization"]:
        q = meta["quantization"]
        y = (y.astype(np.float32) - q["zero_point"]) * q["scale"]
    return np.array(y.transpose(0, 3, 1, 2) if y.ndim == 4 else y)


@register_backend
class LiteRTBackend(Backend):
    format = "tflite"
    extra = "tflite"
    requires = ("litert_torch", "ai_edge_litert", "ai_edge_quantizer")
    tool_packages = ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer")
    suffix = ".tflite"
    channel_last = True

    def prepare(self, stage, target: Target, path: Path, log, batch: int | None = None) -> dict:
        from hpv.compiler.tflite.convert import convert_tflite

        batch = batch or 1
        log(f"convert (NHWC, batch {batch})")
        convert_tflite(stage, batch, path)
        return {"io_layout": "NHWC"}

    def lower(self, job: CompileJob, path: Path, log) -> dict:
        from hpv.compiler.tflite import quantize

        notes: dict = {}
        if job.precision is Precision.FP16:
            log("fp16 (float casting)")
            notes |= quantize.to_fp16(path)
        elif job.precision is Precision.INT8:
            log("quantize int8 (full integer)")
            keypoints = [t.name for t in job.stage.interface().inputs if t.role is Role.KEYPOINTS]
            notes |= quantize.to_int8(path, [self.to_device_layout(job.stage, s) for s in job.calibration], keypoints)
        notes |= self.delegate_report(path, job.target, [t.name for t in job.stage.interface().inputs
                                                         if t.role is Role.KEYPOINTS])
        return notes

    @staticmethod
    def to_device_layout(stage, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from hpv.compiler.tflite.convert import channel_last

        itf = stage.interface()
        return {t.name: np.ascontiguousarray(feeds[t.name].transpose(0, 2, 3, 1) if channel_last(t) else feeds[t.name],
                                             np.float32) for t in itf.inputs}

    def delegate_report(self, path: Path, target: Target, prologue_inputs: list[str] = ()) -> dict:
        """The ops a delegate would leave to the CPU. Ops computed from `prologue_inputs` (the
        keypoints) alone form one CPU segment before the first learned layer: the in-graph
        rasterizer, which does on the CPU what an app used to do before handing the delegate an
        image. They are listed (`cpu_prologue_ops`) and do not count against `max_fallback_ops`;
        any other op the delegate lacks splits its graph and counts."""
        it = _interpreter(path)
        details = it._get_ops_details()
        ops = sorted({op["op_name"] for op in details})
        if not target.delegate_ops:
            return {"ops": ",".join(ops)}
        prologue = prologue_op_indices(details, it.get_input_details(), prologue_inputs) if prologue_inputs else set()
        missing = [(op["op_name"], op["index"] in prologue) for op in details if op["op_name"] not in target.delegate_ops]
        fallback = sorted({name for name, in_prologue in missing if not in_prologue})
        notes = {"ops": ",".join(ops), "fallback_ops": ",".join(fallback), "fallback_op_count": len(fallback)}
        if prologue:
            notes["cpu_prologue_ops"] = ",".join(sorted({name for name, in_prologue in missing if in_prologue}))
        if target.max_fallback_ops is not None and len(fallback) > target.max_fallback_ops:
            from hpv.errors import DelegateFallbackError

            raise DelegateFallbackError(path.name, target.name, fallback, target.max_fallback_ops)
        return notes

    def runner(self, path: Path, target: Target, stage=None, threads: int | None = None):
        """Run with NCHW float feeds (as verification holds them): transposes to NHWC, quantizes
        int8 inputs with their scale and zero point, dequantizes int8 outputs, transposes back.
        Feeding a dequantized state output back in requantizes it with the input's scale."""
        # set_tensor/invoke rather than the signature runner: after some int8 calibrations the
        # runner reported "Tensor data is null" for a model that invokes correctly.
        it = _interpreter(path, threads)
        it.allocate_tensors()
        sig = self.io_signature(path)
        ins = [(t, d["index"]) for t, d in zip(sig["inputs"], it.get_input_details())]
        outs = [(t, d["index"]) for t, d in zip(sig["outputs"], it.get_output_details())]

        def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            for meta, index in ins:
                it.set_tensor(index, to_device(feeds[meta["name"]], meta))
            it.invoke()
            return {meta["name"]: from_device(it.get_tensor(index), meta) for meta, index in outs}

        return run

    def io_signature(self, path: Path) -> dict[str, list[dict]]:
        it = _interpreter(path)
        sig = it.get_signature_list()["serving_default"]

        def describe(d, names) -> dict:
            scales, zps = d["quantization_parameters"]["scales"], d["quantization_parameters"]["zero_points"]
            quant = None
            if len(scales):
                quant = {"scale": float(scales[0]), "zero_point": int(zps[0]), "dtype": np.dtype(d["dtype"]).name}
            return {"name": _io_name(d["name"], names), "shape": [int(x) for x in d["shape"]],
                    "dtype": np.dtype(d["dtype"]).name, "layout": {4: "NHWC", 3: "NPC"}.get(len(d["shape"]), "NC"),
                    "quantization": quant}

        return {"inputs": [describe(d, sig["inputs"]) for d in it.get_input_details()],
                "outputs": [describe(d, sig["outputs"]) for d in it.get_output_details()]}
