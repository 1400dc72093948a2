"""Real signing poses available offline: the fingerspelling lexicon of the optional PyPI package
`spoken-to-signed` (MIT): 600 holistic `.pose` files, 19 signed languages, one letter each.

The package is found with `importlib.util.find_spec`, never imported: only its data files are read.
Install it with the `poses` extra: `pip install 'hpv-compile[poses]'`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

from hpv.errors import ConfigError, PoseFileError
from hpv.pose.reader import load_sequence
from hpv.pose.sequence import PoseSequence

PACKAGE = "spoken_to_signed"
LEXICON = ("assets", "fingerspelling_lexicon")


def lexicon_dir() -> Path | None:
    """The installed lexicon folder, or None when the package (or its lexicon) is not installed."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        folder = Path(root).joinpath(*LEXICON)
        if folder.is_dir():
            return folder
    return None


def real_pose_files() -> list[Path]:
    """Every lexicon `.pose` file, sorted; [] when `spoken-to-signed` is not installed."""
    folder = lexicon_dir()
    return sorted(folder.rglob("*.pose")) if folder else []


class RealSequences:
    """Iterates (name, sequence) over the lexicon, name being the file's path in the lexicon (as in its
    `data.csv`, e.g. 'ase/fs-sts....pose'). Files that raise `PoseFileError` are skipped and listed in
    `skipped` as (name, message), so a caller can report them once iteration ends."""

    def __init__(self, limit: int | None = None):
        if limit is not None and not (isinstance(limit, int) and limit >= 0):
            raise ConfigError(f"limit must be None or an int >= 0; got {limit!r}")
        self.limit = limit
        self.loaded = 0
        self.skipped: list[tuple[str, str]] = []
        self._files = iter(real_pose_files())
        self._root = lexicon_dir()

    def __iter__(self) -> Iterator[tuple[str, PoseSequence]]:
        return self

    def __next__(self) -> tuple[str, PoseSequence]:
        while self.limit is None or self.loaded < self.limit:
            path = next(self._files)  # StopIteration ends the iteration
            name = path.relative_to(self._root).as_posix()
            try:
                sequence = load_sequence(path)
            except PoseFileError as e:
                self.skipped.append((name, str(e)))
                continue
            self.loaded += 1
            return name, sequence
        raise StopIteration


def real_sequences(limit: int | None = None) -> RealSequences:
    """The lexicon's sequences, normalized by `load_sequence`, at most `limit` of them; empty when
    `spoken-to-signed` is not installed. The result's `skipped` lists the files that did not load."""
    return RealSequences(limit)
