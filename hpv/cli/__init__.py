"""Command line: a thin layer over the public verbs (hpv.compiler.build.compile, ...)."""
