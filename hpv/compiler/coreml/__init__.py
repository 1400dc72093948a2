"""Core ML lane: conversion (explicit-state and stateful variants), weight compression, and what
Linux can check of an .mlpackage (spec, ops, weights, a reproducible hash)."""
