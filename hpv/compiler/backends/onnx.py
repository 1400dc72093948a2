"""ONNX backend: export -> simplify -> pad conv channels and conv blocks (target options) ->
precision, run in that order; verified in ONNX Runtime (a browser target: in Chromium on its EP)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpv.compiler.backends import Backend, CompileJob, register_backend
from hpv.errors import ArtifactRunError
from hpv.stages.interface import Role
from hpv.targets import Precision, Target


@register_backend
class OnnxBackend(Backend):
    format = "onnx"
    extra = "onnx"
    requires = ("onnx", "onnxruntime", "onnxscript")
    tool_packages = ("torch", "onnx", "onnxscript", "onnxruntime", "onnxslim")
    suffix = ".onnx"

    def prepare(self, stage, target: Target, path: Path, log, batch: int | None = None) -> dict:
        from hpv.compiler.onnx.export import export_onnx
        from hpv.compiler.onnx.pad_blocks import conv_block, pad_conv_blocks
        from hpv.compiler.onnx.pad_channels import channel_multiple, pad_conv_channels
        from hpv.compiler.onnx.simplify import simplify

        opset = int(target.minimums.get("opset", 18))
        notes: dict = {"opset": opset}
        log("export")
        export_onnx(stage, path, opset)
        if target.options.get("slim", True):
            log("simplify")
            notes["slimmed"] = simplify(path)
        multiple = channel_multiple(target.options)
        if multiple:
            log(f"pad conv input channels to a multiple of {multiple}")
            notes["conv_channels_padded"] = pad_conv_channels(path, multiple)
        block = conv_block(target.options)
        if block:
            log(f"pad conv outputs to blocks of {block}")
            notes["conv_blocks_padded"] = pad_conv_blocks(path, block)
        return notes

    def lower(self, job: CompileJob, path: Path, log) -> dict:
        notes: dict = {}
        if job.precision is Precision.FP16:
            from hpv.compiler.onnx.fp16 import to_fp16

            log("fp16")
            notes |= to_fp16(path)
        elif job.precision is Precision.INT8:
            from hpv.compiler.onnx.int8 import to_int8

            log("quantize int8")
            itf = job.stage.interface()
            state = [(b.input, b.output) for b in itf.state]
            keypoints = [t.name for t in itf.inputs if t.role is Role.KEYPOINTS]
            notes |= to_int8(path, job.calibration, state, float_inputs=keypoints,
                              quantize_first_layer=job.stage.int8_first_layer)
        return notes

    def runner(self, path: Path, target: Target, stage=None, threads: int | None = None):
        from hpv.compiler.web.runner import browser_runner, parse_verified_on

        # A browser target's artifacts are verified (the build passes the stage) inside Chromium on
        # the EP they target; the Python runtime (hpv render, a local profile) runs the same file in
        # ONNX Runtime's CPU provider (`hpv profile --device chromium` measures the browser).
        browser = parse_verified_on(target.verified_on)
        if browser is not None and stage is not None:
            return browser_runner(path, *browser)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads is not None:
            opts.intra_op_num_threads = threads
        # Idle intra-op threads would spin and steal cores from whatever runs beside the session
        # (the next stage's session, the video encoder). Spinning only within a run (stopped when
        # it returns: force_spinning_stop) made frames alone 0.95 of the time, but `hpv render`'s,
        # which share the cores with the encoder, slower (27.5-30.1 fps against 28.2-33.7, in turns).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Denormal floats (a Gaussian's tail, a decaying state) slow x86 kernels 2x and more.
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        feeds_wanted = [i.name for i in session.get_inputs()]

        def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            try:
                outs = session.run(names, {k: np.ascontiguousarray(feeds[k], np.float32) for k in feeds_wanted})
            except _ort_errors() as e:
                raise ArtifactRunError(f"{path.name} failed in ONNX Runtime: {str(e).strip()[:300]}. "
                                       "The artifact is damaged or was not built by this version: rebuild it "
                                       "with hpv-compile") from None
            return dict(zip(names, outs))

        return run

    def io_signature(self, path: Path) -> dict[str, list[dict]]:
        import onnx
        from onnx import TensorProto

        model = onnx.load(str(path), load_external_data=False)

        def describe(vi) -> dict:
            t = vi.type.tensor_type
            dims = [d.dim_param or d.dim_value for d in t.shape.dim]
            return {"name": vi.name, "shape": dims,
                    "dtype": TensorProto.DataType.Name(t.elem_type).lower().replace("float", "float32", 1)
                    if t.elem_type == TensorProto.FLOAT else TensorProto.DataType.Name(t.elem_type).lower()}

        return {"inputs": [describe(v) for v in model.graph.input],
                "outputs": [describe(v) for v in model.graph.output]}


def _ort_errors() -> tuple[type[BaseException], ...]:
    """The exception types ONNX Runtime raises from a run (Fail, InvalidArgument, EPFail, ...)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(v for v in vars(state).values() if isinstance(v, type) and issubclass(v, Exception))
