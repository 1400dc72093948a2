import importlib.util
import io

import pytest

from hpv.data import real_poses
from hpv.data.real_poses import real_pose_files, real_sequences
from hpv.errors import ConfigError
from hpv.pose import PoseSequence, synthetic_pose

installed = importlib.util.find_spec("spoken_to_signed") is not None
needs_package = pytest.mark.skipif(not installed, reason="spoken-to-signed not installed "
                                   "(pip install 'hpv-compile[poses]')")


@pytest.fixture
def absent(monkeypatch):
    monkeypatch.setattr(real_poses, "PACKAGE", "hpv_no_such_package_here")


@pytest.fixture
def fake_lexicon(tmp_path, monkeypatch):
    """A package-shaped folder with two good files and one bad one, found through find_spec."""
    pkg = tmp_path / "fake_sts"
    folder = pkg.joinpath(*real_poses.LEXICON)
    (folder / "ase").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name, seed in (("ase/b.pose", 1), ("ase/a.pose", 2)):
        buffer = io.BytesIO()
        synthetic_pose(num_frames=5, seed=seed).write(buffer)
        (folder / name).write_bytes(buffer.getvalue())
    (folder / "ase" / "broken.pose").write_bytes(b"\x00" * 10)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(real_poses, "PACKAGE", "fake_sts")
    return folder


def test_absent_package_gives_nothing(absent):
    assert real_poses.lexicon_dir() is None
    assert real_pose_files() == []
    it = real_sequences()
    assert list(it) == [] and it.skipped == [] and it.loaded == 0


def test_skips_and_lists_files_that_do_not_load(fake_lexicon):
    assert [p.name for p in real_pose_files()] == ["a.pose", "b.pose", "broken.pose"]
    it = real_sequences()
    names = [name for name, seq in it]
    assert names == ["ase/a.pose", "ase/b.pose"]
    assert it.loaded == 2
    assert [name for name, _ in it.skipped] == ["ase/broken.pose"]
    assert "broken.pose" in it.skipped[0][1]


def test_limit_counts_loaded_sequences(fake_lexicon):
    assert [name for name, _ in real_sequences(limit=1)] == ["ase/a.pose"]
    assert list(real_sequences(limit=0)) == []
    with pytest.raises(ConfigError, match="limit"):
        real_sequences(limit=-1)


@needs_package
def test_real_files_are_present_and_sorted():
    files = real_pose_files()
    assert len(files) == 600  # spoken-to-signed 0.4.0
    assert files == sorted(files)


@needs_package
def test_real_files_load():
    it = real_sequences(limit=25)
    loaded = list(it)
    assert len(loaded) == 25 and it.skipped == []
    for name, seq in loaded:
        assert name.endswith(".pose") and "/" in name
        assert isinstance(seq, PoseSequence) and seq.layout.num_points == 178
        assert seq.num_frames >= 1 and seq.fps > 0
