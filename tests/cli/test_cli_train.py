"""`hpv train`: a tiny run end to end, and typed errors for bad data."""

from click.testing import CliRunner

from hpv.cli.main import cli


def test_tiny_small_run_writes_weights_and_history(tmp_path):
    r = CliRunner().invoke(cli, ["train", "--config", "tiny", "--small", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    run = tmp_path / "default"
    assert (run / "history.json").is_file()
    assert {p.name.split("-")[0] for p in (run / "weights").glob("*.safetensors")} == \
        {"fire_gen", "refiner", "fire_upscaler"}


def test_missing_video_pair_exits_2(tmp_path):
    r = CliRunner().invoke(cli, ["train", "--config", "tiny", "--small", "--out", str(tmp_path),
                                 "--pair", f"{tmp_path / 'nope.mp4'}:{tmp_path / 'nope.pose'}"])
    assert r.exit_code == 2, r.output
    assert "nope" in r.output and "Traceback" not in r.output


def test_unknown_config_exits_2(tmp_path):
    r = CliRunner().invoke(cli, ["train", "--config", "cpuu", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Did you mean 'cpu'" in r.output
