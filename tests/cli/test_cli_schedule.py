"""`hpv schedule`: the plan per device (rich text or JSON), the --emit table, and exit 2 with a
message on bad input or a rate no configuration holds."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hpv.cli.main import cli
from hpv.cli.schedule import parse_fps_range
from hpv.profiles.schema import write_profile
from hpv.runtime import load_table
from tests.profiles import factory


@pytest.fixture
def profile_path(tmp_path):
    """phone-a (fp32 and int8; up to 73 fps) and the slower phone-b (up to 32.7 fps)."""
    path = tmp_path / "profile.json"
    write_profile(path, factory.profile(factory.device("phone-a", precisions=("fp32", "int8")),
                                        factory.device("phone-b", step_ms=14, gen_ms=10, up_ms=15)))
    return path


def run(*args):
    return CliRunner().invoke(cli, ["schedule", *map(str, args)])


def test_plans_for_every_device(profile_path):
    r = run(profile_path, "--fps", 25)
    assert r.exit_code == 0, r.output
    assert "phone-a (onnx-cpu) at 25 fps: default/fire_gen fp32 k=2 768px" in r.output
    assert "phone-b (onnx-cpu) at 25 fps: default/fire_gen fp32 k=0 768px" in r.output
    assert "ladder: k=2 768px > k=1 768px > k=0 768px" in r.output and "expected PSNR 24.40 dB" in r.output


def test_plans_say_where_the_part_stages_are_drawn(tmp_path):
    path = write_profile(tmp_path / "parts.json", factory.profile(factory.parts_device()))
    r = run(path, "--fps", 20)
    assert r.exit_code == 0, r.output
    assert "at 20 fps: parts/fire_gen fp32 k=1 768px +parts" in r.output
    assert "ladder: k=1 768px +parts > k=1 768px > k=0 768px > k=0 512px" in r.output


def test_json_for_one_device(profile_path):
    r = run(profile_path, "--fps", 40, "--device", "phone-a", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["fps"], out["headroom"], out["max_batch"]) == (40, 0.85, 1)
    (p,) = out["plans"]
    assert p["device"] == "phone-a" and p["feasible"] and p["budget_ms"] == pytest.approx(21.25)
    assert (p["config"]["precision"], p["config"]["steps"]) == ("int8", 1)
    assert p["ladder"][0] == p["config"] and p["runners_up"] and p["reason"]


def test_options_reach_the_plan(profile_path):
    r = run(profile_path, "--fps", 20, "--device", "phone-a", "--first-frame-ms", 30, "--headroom", 0.9,
            "--max-batch", 2, "--json")
    assert r.exit_code == 0, r.output
    (p,) = json.loads(r.stdout)["plans"]
    assert p["config"]["call_p90_ms"] <= 30 and p["budget_ms"] == pytest.approx(45.0)


def test_infeasible_exits_2_with_the_best_rate(profile_path):
    r = run(profile_path, "--fps", 50)
    assert r.exit_code == 2
    assert "phone-a (onnx-cpu) at 50 fps" in r.stdout  # the device that holds it is still planned
    assert "no configuration of phone-b (onnx-cpu) holds 50 fps" in r.stderr
    assert "best achievable is 32.70 fps" in r.stderr and "Traceback" not in r.output


def test_infeasible_json_records_it(profile_path):
    r = run(profile_path, "--fps", 50, "--json")
    assert r.exit_code == 2
    a, b = json.loads(r.stdout)["plans"]
    assert a["feasible"] and not b["feasible"]
    assert b["best_fps"] == pytest.approx(32.70) and b["best"] == "default/fire_gen fp32 k=0 768px"


def test_emit_writes_the_table(profile_path, tmp_path):
    out = tmp_path / "app" / "table.json"
    r = run(profile_path, "--emit", out, "--fps-range", "10:60:5")
    assert r.exit_code == 0, r.output
    table = load_table(out)
    a, b = table.devices
    assert [row.fps for row in a.rows] == list(range(10, 61, 5))
    assert all(row.feasible for row in a.rows)
    assert [row.feasible for row in b.rows].count(True) == 5 and b.max_fps == pytest.approx(32.70)
    assert table.lookup("phone-b", 30).config.steps == 0
    assert not table.lookup("phone-b", 33).feasible
    assert "wrote" in r.stderr and not list(out.parent.glob(".*tmp"))


def test_emit_for_one_device(profile_path, tmp_path):
    out = tmp_path / "table.json"
    r = run(profile_path, "--emit", out, "--device", "phone-b", "--fps-range", "20:30:2.5")
    assert r.exit_code == 0, r.output
    (d,) = load_table(out).devices
    assert d.device == "phone-b" and [row.fps for row in d.rows] == [20, 22.5, 25, 27.5, 30]


@pytest.mark.parametrize("args, message", [
    (["--fps", 25, "--device", "phone-c"], "unknown device 'phone-c'. Did you mean"),
    (["--fps", 0], "fps must be a positive number"),
    (["--fps", -10], "fps must be a positive number"),
    (["--fps", 25, "--headroom", 1.2], "headroom must be in (0, 1]"),
    (["--fps", 25, "--max-batch", 0], "max_batch must be at least 1"),
    (["--emit", "t.json", "--fps-range", "60:10:5"], "LO <= HI"),
    (["--emit", "t.json", "--fps-range", "ten"], "LO:HI:STEP"),
    ([], "give --fps"),
])
def test_bad_input_exits_2(profile_path, args, message):
    r = run(profile_path, *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_missing_or_invalid_profile_exits_2(tmp_path):
    r = run(tmp_path / "nope.json", "--fps", 25)
    assert r.exit_code == 2 and "no profile at" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "devices": []}')
    r = run(bad, "--fps", 25)
    assert r.exit_code == 2 and "is invalid" in r.output


def test_parse_fps_range():
    assert parse_fps_range("10:60:5")[-1] == 60 and len(parse_fps_range("10:60:5")) == 11
    assert parse_fps_range("24:30:7") == [24]
    assert parse_fps_range("0.5:1.5:0.1")[-1] == 1.5
