"""LiteRT (TFLite) passes, run in order by the LiteRT backend: convert (NHWC I/O, fixed batch),
then fp16 float casting or full-integer int8 with ai-edge-quantizer."""
