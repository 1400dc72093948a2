"""The compiler: stages -> verified per-target artifacts. Backends register by format name."""
