"""Pass 2 (optional): onnxslim. The exporter already folds BatchNorm; slim removes what is left."""

from __future__ import annotations

from pathlib import Path


def simplify(path: Path) -> bool:
    """Simplify in place; returns whether onnxslim ran (it is optional)."""
    try:
        import onnxslim
    except ImportError:
        return False
    import onnx

    model = onnxslim.slim(onnx.load(str(path)))
    onnx.save(model, str(path))
    return True
