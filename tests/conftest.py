import io
from pathlib import Path

import pytest

from hpv.pose import synthetic_pose

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pose_file(tmp_path_factory) -> Path:
    """A real .pose file (synthetic holistic signing, 16 frames) written through pose-format."""
    path = tmp_path_factory.mktemp("poses") / "signer.pose"
    buf = io.BytesIO()
    synthetic_pose(num_frames=16, seed=5).write(buf)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture(scope="session")
def small_build(tmp_path_factory):
    """The default pipeline at its small size, built for onnx-cpu once per session."""
    pytest.importorskip("onnxruntime")
    from hpv.compiler.build import CompileRequest, compile

    out = tmp_path_factory.mktemp("build")
    return compile(CompileRequest(target="onnx-cpu", out=out, small=True))
