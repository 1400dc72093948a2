"""Build outputs: the artifacts of one target in one folder, described by `manifest.json`."""
