"""hpv-compile: the human pose viewer's stages, compiled and verified per silicon target.

Importing `hpv` stays light: torch, onnx and every converter load inside the code that needs them.
"""

__version__ = "0.1.0"
