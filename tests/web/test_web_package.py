"""The web/ package's pieces that need no browser, run in node against the Python originals:
the controller on the shared vectors, the .pose reader on examples/signer.pose (the parts:
test_web_parts.py)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["keypoints", "parts"])
def test_layout_json_is_current(name):
    from hpv.compiler.web.layout import LAYOUT_FILE, PARTS_FILE, keypoint_layout, parts_layout

    path, data = (LAYOUT_FILE, keypoint_layout()) if name == "keypoints" else (PARTS_FILE, parts_layout())
    assert json.loads((ROOT / "web" / path).read_text()) == data, "regenerate with python -m hpv.compiler.web.layout"


def test_controller_port_makes_the_python_decisions(web):
    vectors_path = ROOT / "tests" / "runtime" / "controller_vectors.json"
    vectors = json.loads(vectors_path.read_text())["vectors"]
    out = json.loads(subprocess.run(["node", "test/controller.mjs", str(vectors_path)], cwd=web, check=True,
                                    capture_output=True, text=True).stdout)
    assert len(out) == len(vectors) >= 5
    for want, got in zip(vectors, out):
        assert got["levels"] == want["levels"], want["name"]
        assert got["switches"] == [list(s[:3]) for s in want["switches"]], want["name"]


def test_pose_reader_matches_pose_format_and_hpv(web, tmp_path, real_pose):
    from pose_format import Pose

    from hpv.pose.keypoints import depth, keypoints
    from hpv.pose.reader import load_sequence

    path = real_pose
    r = subprocess.run(["node", "test/pose.mjs", str(path), str(tmp_path / "out.bin")], cwd=web, check=True,
                       capture_output=True, text=True)
    header = json.loads(r.stdout)
    pose = Pose.read(path.read_bytes())
    data = np.ma.getdata(pose.body.data).astype(np.float32)
    conf = np.ma.getdata(pose.body.confidence).astype(np.float32)
    assert header["width"] == pose.header.dimensions.width and header["fps"] == pytest.approx(float(pose.body.fps))
    assert [c["name"] for c in header["components"]] == [c.name for c in pose.header.components]
    assert [c["points"] for c in header["components"]] == [list(c.points) for c in pose.header.components]
    flat = np.fromfile(tmp_path / "out.bin", np.float32)
    got_data, rest = flat[:data.size].reshape(data.shape), flat[data.size:]
    got_conf, got_kp = rest[:conf.size].reshape(conf.shape), rest[conf.size:]
    np.testing.assert_array_equal(got_data, data)
    np.testing.assert_array_equal(got_conf, conf)
    seq = load_sequence(path)
    want = keypoints(seq)
    got_kp, got_z = got_kp[:want.size].reshape(want.shape), got_kp[want.size:]
    assert float(np.max(np.abs(got_kp - want))) < 1e-3
    want_z = depth(seq)  # what orders the stitched hands against the body
    np.testing.assert_allclose(got_z.reshape(want_z.shape), want_z, atol=1e-3)


def test_the_package_typechecks_strict(web):
    r = subprocess.run(["node", "node_modules/typescript/bin/tsc", "-p", "."], cwd=web, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
