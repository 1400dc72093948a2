"""`hpv profile BUILD --device chromium:wasm` writes the device profile format that schedule and
report read unchanged."""

from click.testing import CliRunner


def test_chromium_profile_is_a_device_profile(wasm_build, tmp_path):
    from hpv.cli.main import cli
    from hpv.profiles.schema import load_profile

    out = tmp_path / "web.json"
    r = CliRunner().invoke(cli, ["profile", str(wasm_build.folder), "--device", "chromium:wasm", "--out", str(out),
                                 "--runs", "6", "--warmup", "1", "--rounds", "2", "--pipeline-runs", "4"])
    assert r.exit_code == 0, r.output
    device = load_profile(out).devices[0]  # validated on read
    assert device.device.id.startswith("chromium-wasm-1t-")
    assert device.device.runtimes["onnxruntime-web"] == "1.30.0" and device.device.runtimes["execution_provider"] == "wasm"
    assert device.threads == 1 and device.target == "onnx-wasm"
    assert {a.artifact for a in device.artifacts} == {a.path for a in wasm_build.manifest.artifacts}
    assert all(a.latency.runs >= 6 and a.delegate.name == "wasm" for a in device.artifacts)
    # every k with the part stages and without (the default pipeline has them), as --device local times them
    assert sorted((p.precision, p.steps, p.parts) for p in device.pipelines) == sorted(
        (p, k, on) for p in ("fp32", "int8") for k in (0, 1) for on in (False, True))
    r = CliRunner().invoke(cli, ["schedule", str(out), "--fps", "10"])
    assert r.exit_code in (0, 1), r.output  # a plan, or "no configuration fits" on a busy machine
    r = CliRunner().invoke(cli, ["report", str(out), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    table = tmp_path / "table.json"
    r = CliRunner().invoke(cli, ["schedule", str(out), "--emit", str(table)])
    assert r.exit_code == 0, r.output
    check_table_lookup(table, device.device.id)


def check_table_lookup(table, device_id):
    """The web package looks the table up as hpv.runtime.table does (row, precision, ladder)."""
    import json
    import subprocess

    from hpv.compiler.web.chromium import build_package, web_dir
    from hpv.runtime.table import load_table

    build_package()
    rates = [1, 10, 12.5, 25, 60, 1000]
    got = json.loads(subprocess.run(["node", "test/table.mjs", str(table), device_id, *map(str, rates)], cwd=web_dir(),
                                    check=True, capture_output=True, text=True).stdout)
    py = load_table(table)
    for fps, g in zip(rates, got):
        row = py.lookup(device_id, fps)
        assert g["row"] == (row.fps if row else None), (fps, g)
        if row is not None and row.feasible:
            same = [c for c in row.ladder if c.precision == row.config.precision]
            assert g["plan"]["precision"] == row.config.precision and g["plan"]["budgetMs"] == row.budget_ms
            assert g["plan"]["steps"] == [c.steps for c in same]
            assert g["plan"]["parts"] == [c.parts for c in same]


def test_unknown_browser_ep_is_refused(tmp_path):
    from hpv.compiler.web.profile import parse_device
    import pytest

    from hpv.errors import ConfigError

    with pytest.raises(ConfigError, match="wasm, webgpu"):
        parse_device("chromium:webgl")
