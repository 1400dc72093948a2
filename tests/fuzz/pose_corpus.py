"""Seed `.pose` files for the fuzz cases, made at test time: real fingerspelling files from the
`spoken-to-signed` package when it is installed, and files written through pose-format's own API in
every layout and version the reader takes (holistic, the app's reduced layout, OpenPose; 0.1, 0.2).
`fields` maps where a file's header and body counts lie, so that cases can aim at them."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from pose_format import Pose
from pose_format.utils import openpose
from pose_format.utils.generic import reduce_holistic

from hpv.data.real_poses import real_pose_files
from hpv.pose import synthetic_pose


def _bytes(pose: Pose) -> bytes:
    buffer = io.BytesIO()
    pose.write(buffer)
    return buffer.getvalue()


def _openpose(frames: int, seed: int) -> Pose:
    """A plausible OpenPose person (shoulders apart, hands near the chest), through `load_openpose`."""
    rng = np.random.default_rng(seed)
    people = {}
    for t in range(frames):
        def points(n, center, spread):
            xy = center + rng.normal(0, spread, (n, 2))
            return np.concatenate([xy, rng.uniform(0.5, 1, (n, 1))], axis=1).ravel().tolist()
        body = np.array(points(len(openpose.BODY_POINTS), (250, 250), 5)).reshape(-1, 3)
        body[openpose.BODY_POINTS.index("LShoulder"), :2] = (300, 200)
        body[openpose.BODY_POINTS.index("RShoulder"), :2] = (200, 200)
        people[t] = {"people": [{
            "pose_keypoints_2d": body.ravel().tolist(),
            "face_keypoints_2d": points(70, (250, 120), 20),
            "hand_left_keypoints_2d": points(21, (300, 300), 15),
            "hand_right_keypoints_2d": points(21, (200, 300), 15),
        }]}
    return openpose.load_openpose(people, fps=25, width=500, height=500)


def as_version_0_1(data: bytes) -> bytes:
    """A 0.2 file as 0.1: fps, frames, people as uint16 after the same header."""
    start = fields(data).body_start
    fps, frames, people = struct.unpack_from("<fIH", data, start)
    return (struct.pack("<f", 0.1) + data[4:start] + struct.pack("<HHH", int(fps), frames, people)
            + data[start + 10:])


def seeds(real: int = 3) -> dict[str, bytes]:
    """name -> bytes of every seed file; `real` of them from the installed lexicon (its smallest files)."""
    out = {}
    smallest = {}  # per signed language, its smallest file
    for path in sorted(real_pose_files(), key=lambda p: (p.stat().st_size, p.name)):
        smallest.setdefault(path.parent.name, path)
    lexicon = [smallest[lang] for lang in sorted(smallest)][:real]
    for path in lexicon:
        out[f"real-{path.parent.name}-{path.stem[-6:]}"] = path.read_bytes()
    holistic = synthetic_pose(num_frames=4, seed=11)
    out["holistic"] = _bytes(holistic)
    out["holistic-0.1"] = as_version_0_1(out["holistic"])
    out["reduced"] = _bytes(reduce_holistic(synthetic_pose(num_frames=5, seed=12)))
    out["openpose"] = _bytes(_openpose(3, seed=13))
    return out


@dataclass(frozen=True)
class Field:
    """A number in a file: where it lies, its struct format, and what it is."""

    name: str
    offset: int
    fmt: str


@dataclass(frozen=True)
class Fields:
    header: tuple[Field, ...]
    body_start: int
    body: tuple[Field, ...]
    version: float


def fields(data: bytes) -> Fields:
    """The counts and sizes of a well-formed file's header and body header (pose-format's layout)."""
    out = [Field("version", 0, "<f"), Field("width", 4, "<H"), Field("height", 6, "<H"), Field("depth", 8, "<H"),
           Field("components", 10, "<H")]
    (version,) = struct.unpack_from("<f", data, 0)
    (components,) = struct.unpack_from("<H", data, 10)
    offset = 12

    def string(name: str) -> int:
        nonlocal offset
        out.append(Field(f"{name} length", offset, "<H"))
        (n,) = struct.unpack_from("<H", data, offset)
        offset += 2 + n
        return n

    for k in range(components):
        string(f"component {k} name")
        string(f"component {k} format")
        points, limbs, colors = struct.unpack_from("<HHH", data, offset)
        out += [Field(f"component {k} points", offset, "<H"), Field(f"component {k} limbs", offset + 2, "<H"),
                Field(f"component {k} colors", offset + 4, "<H")]
        offset += 6
        for p in range(points):
            string(f"component {k} point {p} name")
        for j in range(limbs):
            out += [Field(f"component {k} limb {j} from", offset, "<H"), Field(f"component {k} limb {j} to", offset + 2, "<H")]
            offset += 4
        offset += 6 * colors
    if round(version, 3) == 0.2:
        body = (Field("fps", offset, "<f"), Field("frames", offset + 4, "<I"), Field("people", offset + 8, "<H"))
    else:
        body = (Field("fps", offset, "<H"), Field("frames", offset + 2, "<H"), Field("people", offset + 4, "<H"))
    return Fields(tuple(out), offset, body, version)
