"""`hpv train`: a tiny run end to end, and typed errors for bad data."""

from click.testing import CliRunner

from hpv.cli.main import cli
from hpv.pipelines import PIPELINES


def test_tiny_small_run_writes_weights_and_history(tmp_path, monkeypatch):
    """Also what a log file gets (no terminal, no bar): a line per phase and stage, and while a
    phase runs, step, loss and time left at the heartbeat interval; weights paths unwrapped."""
    import re

    import hpv.cli.train

    monkeypatch.setattr(hpv.cli.train, "HEARTBEAT_S", 0.05)
    r = CliRunner().invoke(cli, ["train", "--config", "tiny", "--small", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    run = tmp_path / "default"
    assert (run / "history.json").is_file()
    weights = sorted((run / "weights").glob("*.safetensors"))
    # every stage of the default: a run writes its part generators too (as loaded, when not trained)
    assert {p.name.split("-")[0] for p in weights} == {r.stage for r in PIPELINES.get("default").stages}
    lines = r.output.splitlines()
    for expected in (r"rendering or loading training data \(tiny config\)", r"data: \d+ train, \d+ val",
                     r"training generator: 6 steps", r"generator: 6 steps in \d+\.\d s, last loss \d",
                     r"generator estimates of \d+ training", r"training refiner-step0: 4 steps",
                     r"training upscaler: 4 steps", r"trained in \d"):
        assert any(re.match(rf"\[\d+:\d\d\] {expected}", line) for line in lines), (expected, r.output)
    assert any(re.match(r"\[\d+:\d\d\] \.\.\. still training \w+, step \d+/\d+, loss \d\.\d{4}, "
                        r"\d+\.\d\d s/step, ~\d+\.\d s left", line) for line in lines), r.output
    for p in weights:
        assert any(line.startswith(f"{p.name.split('-')[0]}: {p} (sha256 ") for line in lines), r.output


def test_missing_video_pair_exits_2(tmp_path):
    r = CliRunner().invoke(cli, ["train", "--config", "tiny", "--small", "--out", str(tmp_path),
                                 "--pair", f"{tmp_path / 'nope.mp4'}:{tmp_path / 'nope.pose'}"])
    assert r.exit_code == 2, r.output
    assert "nope" in r.output and "Traceback" not in r.output


def test_unknown_config_exits_2(tmp_path):
    r = CliRunner().invoke(cli, ["train", "--config", "cpuu", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Did you mean 'cpu'" in r.output
