"""ONNX passes, one per file, run in order by the ONNX backend: export, simplify, precision."""
