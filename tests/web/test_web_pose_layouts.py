"""The browser's `.pose` reader (web/src/pose.ts) on every layout and version hpv reads: OpenPose
(BODY_25, 70 face points, two hands) as well as MediaPipe, in versions 0.0, 0.1 and 0.2, each file
written with pose-format's own API, read in node and compared with
`hpv.pose.keypoints.keypoints(load_sequence(path))`; and the files hpv refuses, refused alike."""

import io
import json
import struct
import subprocess
import warnings

import numpy as np
import pytest
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent
from pose_format.utils import openpose
from pose_format.utils.cocowholebody133_header import cocowholebody_components
from pose_format.utils.generic import reduce_holistic

from hpv.errors import PoseFileError
from hpv.pose import synthetic_pose
from hpv.pose.holistic import FACE_NUM_POINTS, POSE_POINTS
from hpv.pose.keypoints import depth, keypoints
from hpv.pose.reader import load_sequence
from hpv.pose.source_layouts import OPENPOSE_BODY, OPENPOSE_FACE

OPENPOSE_COMPONENTS = ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d")


def _openpose(num_frames: int = 4, seed: int = 6, people: int = 2) -> Pose:
    """The synthetic signer as OpenPose sees it (pose-format's `load_openpose`), with a second person
    beside them; OpenPose's points that the app does not use (legs, nose, pupils) hold points too."""
    holistic = synthetic_pose(num_frames, seed=seed)
    data, conf = holistic.body.data.data[:, 0], holistic.body.confidence[:, 0]
    at = {name: i for i, name in enumerate(POSE_POINTS)}
    body = {op: at[mp] for mp, op in OPENPOSE_BODY.items()}
    face0, left0 = len(POSE_POINTS), len(POSE_POINTS) + FACE_NUM_POINTS
    sources = ([body.get(p, at["NOSE"]) for p in openpose.BODY_POINTS]
               + [face0 + OPENPOSE_FACE.get(k, 4) for k in range(len(openpose.FACE_POINTS))]
               + list(range(left0, left0 + 42)))
    frames = {}
    for t in range(num_frames):
        xy, c = data[t, sources, :2].astype(float), conf[t, sources].astype(float)
        hands = len(openpose.BODY_POINTS) + len(openpose.FACE_POINTS)
        c[hands + 3] = 0.0  # a left-hand point unseen
        xy[hands + 21 + 5] = np.nan  # a right-hand point lost
        person = []
        for p in range(people):
            numbers = np.concatenate([xy + (60.0 * p, 0.0), c[:, None]], axis=1)
            parts = np.split(numbers, np.cumsum([len(openpose.BODY_POINTS), 70, 21]))
            person.append({name: part.ravel().tolist() for name, part in zip(OPENPOSE_COMPONENTS, parts)})
        frames[t] = {"people": person}
    return openpose.load_openpose(frames, fps=25, width=500, height=500)


def _bytes(pose: Pose) -> bytes:
    buffer = io.BytesIO()
    pose.write(buffer)
    return buffer.getvalue()


def _header_size(pose: Pose) -> int:
    buffer = io.BytesIO()
    pose.header.write(buffer)
    return len(buffer.getvalue())


def _v0_1(pose: Pose) -> bytes:
    """`pose` as 0.1: the same header, then fps, frames, people as uint16 (pose-format counts the frames)."""
    data, start = _bytes(pose), _header_size(pose)
    fps, frames, people = struct.unpack_from("<fIH", data, start)
    return struct.pack("<f", 0.1) + data[4:start] + struct.pack("<HHH", int(fps), frames, people) + data[start + 10:]


def _v0_0(pose: Pose) -> bytes:
    """`pose` as 0.0: the header, fps and frames as uint16, then per frame a people count and per
    person an id and its (x, y, ..., c) points."""
    out = bytearray(_bytes(pose)[:_header_size(pose)])
    out[:4] = struct.pack("<f", 0.0)
    data, conf = np.ma.getdata(pose.body.data), np.ma.getdata(pose.body.confidence)
    out += struct.pack("<HH", int(pose.body.fps), len(data))
    for frame, frame_conf in zip(data, conf):
        out += struct.pack("<H", len(frame))
        for person, (points, c) in enumerate(zip(frame, frame_conf)):
            out += struct.pack("<h", person) + np.concatenate([points, c[:, None]], axis=-1).astype("<f4").tobytes()
    return bytes(out)


def _renamed(pose: Pose, component: str, names) -> Pose:
    """`pose` with `component`'s points named `names` (the data unchanged)."""
    components = [PoseHeaderComponent(c.name, list(names) if c.name == component else c.points, c.limbs,
                                       c.colors, c.format) for c in pose.header.components]
    return Pose(PoseHeader(pose.header.version, pose.header.dimensions, components), pose.body)


def _reordered(pose: Pose, component: str) -> Pose:
    """`pose` with `component`'s points stored in reverse order, under their names."""
    header, starts = pose.header, np.cumsum([0] + [len(c.points) for c in pose.header.components])
    k = [c.name for c in header.components].index(component)
    order = np.arange(header.total_points())
    order[starts[k]:starts[k + 1]] = order[starts[k]:starts[k + 1]][::-1]
    renamed = _renamed(pose, component, header.components[k].points[::-1])
    body = NumPyPoseBody(pose.body.fps, np.ma.getdata(pose.body.data)[:, :, order].copy(),
                         np.ma.getdata(pose.body.confidence)[:, :, order].copy())
    return Pose(renamed.header, body)


def _with_format(pose: Pose, point_format: str) -> Pose:
    components = [PoseHeaderComponent(c.name, c.points, c.limbs, c.colors, point_format) for c in pose.header.components]
    dims = len(point_format) - 1
    body = NumPyPoseBody(pose.body.fps, np.ma.getdata(pose.body.data)[..., :dims].copy(),
                         np.ma.getdata(pose.body.confidence).copy())
    return Pose(PoseHeader(pose.header.version, pose.header.dimensions, components), body)


def _node(web, path, tmp_path):
    """(the node reader's JSON line, its float32 output) for `path`; the output is None where it refused."""
    r = subprocess.run(["node", "test/pose.mjs", str(path), str(tmp_path / "out.bin")], cwd=web,
                       capture_output=True, text=True)
    assert r.returncode in (0, 2), r.stderr
    out = json.loads(r.stdout)
    return out, (np.fromfile(tmp_path / "out.bin", np.float32) if r.returncode == 0 else None)


def _load(path):
    with warnings.catch_warnings():  # the OpenPose mapping's note; compared below
        warnings.simplefilter("ignore")
        return load_sequence(path)


READ = {
    "openpose-0.2": lambda: _bytes(_openpose()),
    "openpose-0.1": lambda: _v0_1(_openpose()),
    "openpose-0.0": lambda: _v0_0(_openpose()),
    "openpose-one-person-0.0": lambda: _v0_0(_openpose(people=1)),
    "openpose-components-reordered": lambda: _bytes(_openpose().get_components(list(OPENPOSE_COMPONENTS[::-1]))),
    "openpose-face-renamed": lambda: _bytes(_renamed(_openpose(), "face_keypoints_2d", [f"f{i}" for i in range(70)])),
    "openpose-hand-reordered": lambda: _bytes(_reordered(_openpose(), "hand_left_keypoints_2d")),
    "holistic-0.0": lambda: _v0_0(synthetic_pose(3, seed=8)),
    "holistic-0.1": lambda: _v0_1(synthetic_pose(3, seed=8)),
    "reduced-0.0": lambda: _v0_0(reduce_holistic(synthetic_pose(3, seed=9))),
}


@pytest.mark.parametrize("name", READ)
def test_browser_reader_reads_like_hpv(web, tmp_path, name):
    path = tmp_path / f"{name}.pose"
    path.write_bytes(READ[name]())
    header, flat = _node(web, path, tmp_path)
    assert flat is not None, header
    pose = Pose.read(path.read_bytes())  # pose-format's own reading of the body
    data = np.ma.getdata(pose.body.data).astype(np.float32)
    conf = np.ma.getdata(pose.body.confidence).astype(np.float32)
    assert header["version"] == pytest.approx(pose.header.version) and header["people"] == data.shape[1]
    assert [c["points"] for c in header["components"]] == [list(c.points) for c in pose.header.components]
    np.testing.assert_array_equal(flat[:data.size].reshape(data.shape), data)
    np.testing.assert_array_equal(flat[data.size:data.size + conf.size].reshape(conf.shape), conf)

    seq = _load(path)
    want, want_z = keypoints(seq), depth(seq)
    rest = flat[data.size + conf.size:]
    np.testing.assert_allclose(rest[:want.size].reshape(want.shape), want, rtol=0, atol=1e-4)
    np.testing.assert_allclose(rest[want.size:].reshape(want_z.shape), want_z, rtol=0, atol=1e-4)
    assert [f"{path}: {note}" for note in header["notes"]] == list(seq.notes)
    if name.startswith("openpose"):
        assert (want[..., 2] > 0).sum(axis=1).min() > 100 and "OpenPose layout mapped" in header["notes"][0]


def _patched(data: bytes, offset: int, fmt: str, value) -> bytes:
    return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt):]


def _holistic_face_renamed() -> bytes:
    pose = synthetic_pose(2, seed=3)
    face = next(c for c in pose.header.components if c.name == "FACE_LANDMARKS")
    return _bytes(_renamed(pose, "FACE_LANDMARKS", ["zero", *face.points[1:]]))


# name -> (bytes, whether the browser's message is hpv's, less the file name)
REFUSE = {
    "openpose-without-right-hand": (lambda: _bytes(_openpose().get_components(list(OPENPOSE_COMPONENTS[:3]))), True),
    "openpose-68-face-points": (lambda: _bytes(_openpose().get_components(
        list(OPENPOSE_COMPONENTS), {"face_keypoints_2d": openpose.FACE_POINTS[:68]})), True),
    "openpose-x-only": (lambda: _bytes(_with_format(_openpose(), "XC")), True),
    "cocowholebody": (lambda: _bytes(Pose(PoseHeader(0.2, _openpose().header.dimensions, cocowholebody_components()),
                                          NumPyPoseBody(25, np.ones((2, 1, 133, 2), np.float32),
                                                        np.ones((2, 1, 133), np.float32)))), True),
    "holistic-face-point-renamed": (_holistic_face_renamed, True),
    "openpose-fps-0": (lambda: _patched(_bytes(_openpose()), _header_size(_openpose()), "<f", 0.0), True),
    "openpose-0.1-trailing-byte": (lambda: _v0_1(_openpose()) + b"\0", True),
    "openpose-0.2-zero-people": (lambda: _patched(_bytes(_openpose()), _header_size(_openpose()) + 8, "<H", 0), True),
    "openpose-0.0-truncated": (lambda: _v0_0(_openpose())[:-1], False),
    "version-0.3": (lambda: _patched(_bytes(_openpose()), 0, "<f", 0.3), True),
}


@pytest.mark.parametrize("name", REFUSE)
def test_browser_reader_refuses_what_hpv_refuses(web, tmp_path, name):
    make, same_message = REFUSE[name]
    path = tmp_path / f"{name}.pose"
    path.write_bytes(make())
    with pytest.raises(PoseFileError) as info:
        _load(path)
    out, flat = _node(web, path, tmp_path)
    assert flat is None and out["refused"] == "PoseFileError", out
    if same_message:
        assert f"{path}: {out['message']}" == str(info.value)
