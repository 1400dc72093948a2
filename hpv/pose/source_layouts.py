"""The layouts a `.pose` file may hold, each registered once with what it maps onto the app's 178
points (hpv.pose.keypoints): MediaPipe Holistic, the app's reduced layout itself (what
`reduce_holistic` writes), and OpenPose (BODY_25, 70 face points, two 21-point hands). A file in
any other layout is refused with a `PoseFileError` that lists the supported layouts and what the
file has."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent
from pose_format.utils import openpose

from hpv.errors import PoseFileError
from hpv.pose.holistic import FACE_CONTOURS, FACE_NUM_POINTS, POSE_POINTS, holistic_header
from hpv.pose.keypoints import COMPONENTS, NUM_KEYPOINTS
from hpv.registry import Registry


def _found(header: PoseHeader) -> str:
    return ", ".join(f"{c.name} ({len(c.points)})" for c in header.components) or "no components"


@dataclass(frozen=True)
class SourceLayout:
    """A layout named by its components and their accepted point counts."""

    title: str
    components: tuple[tuple[str, tuple[int, ...]], ...]

    def matches(self, header: PoseHeader) -> bool:
        found = {c.name: len(c.points) for c in header.components}
        return all(found.get(name) in counts for name, counts in self.components)

    def describe(self) -> str:
        parts = ", ".join(f"{name} {' or '.join(map(str, counts))}" for name, counts in self.components)
        return f"{self.title} ({parts})"

    def problem(self, header: PoseHeader) -> str | None:
        """Why a matching header still cannot be mapped, or None."""
        if header.num_dims() < 2:
            return f"points need at least X and Y; formats are {[c.format for c in header.components]}"
        return None

    def reduce(self, pose: Pose) -> tuple[Pose, tuple[str, ...]]:
        """`pose` in the app's 178-point layout (keypoints.COMPONENTS order), and notes on what was lost."""
        raise NotImplementedError


LAYOUTS: Registry[SourceLayout] = Registry("pose layout")


@dataclass(frozen=True)
class MediaPipeLayout(SourceLayout):
    """MediaPipe point names: the 178 points are taken by name (as `reduce_holistic` does), keeping
    the file's own limbs among them; world landmarks and any other component are dropped."""

    def problem(self, header: PoseHeader) -> str | None:
        found = {c.name: set(c.points) for c in header.components}
        missing = [f"{name}/{p}" for name, points in COMPONENTS for p in points if p not in found[name]]
        if missing:
            return f"{self.title} layout lacks points {missing[:8]}{' ...' if len(missing) > 8 else ''}"
        return super().problem(header)

    def reduce(self, pose: Pose) -> tuple[Pose, tuple[str, ...]]:
        return pose.get_components([c for c, _ in COMPONENTS], {c: list(p) for c, p in COMPONENTS}), ()


# dlib/OpenPose face index -> MediaPipe face mesh index, for the OpenPose points that fall on the
# 128 contour points: the jaw line on the face oval, the upper brows, six points per eye, the lips.
# The nose (27-35) and the pupils (68, 69) are not among the 128.
OPENPOSE_FACE = dict(enumerate((127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356)))
OPENPOSE_FACE |= dict(zip(range(17, 27), (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)))
OPENPOSE_FACE |= dict(zip(range(36, 48), (33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380)))
OPENPOSE_FACE |= dict(zip(range(48, 68), (61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
                                          78, 81, 13, 311, 308, 402, 14, 178)))
# The contour points OpenPose has no counterpart for: missing (confidence 0) in a mapped OpenPose file.
OPENPOSE_MISSING_FACE_POINTS = tuple(p for p in dict(COMPONENTS)["FACE_LANDMARKS"]
                                     if int(p) not in OPENPOSE_FACE.values())
OPENPOSE_BODY = {"LEFT_SHOULDER": "LShoulder", "RIGHT_SHOULDER": "RShoulder", "LEFT_ELBOW": "LElbow",
                 "RIGHT_ELBOW": "RElbow", "LEFT_WRIST": "LWrist", "RIGHT_WRIST": "RWrist",
                 "LEFT_HIP": "LHip", "RIGHT_HIP": "RHip"}  # both name the person's own left and right


def _openpose_sources() -> list[tuple[str, str, int] | None]:
    """For each of the 178 points, its OpenPose (component, point name, standard index), or None."""
    by_mediapipe = {str(mp): k for k, mp in OPENPOSE_FACE.items()}
    out: list[tuple[str, str, int] | None] = []
    for name, points in COMPONENTS:
        for k, point in enumerate(points):
            if name == "POSE_LANDMARKS":
                op = OPENPOSE_BODY[point]
                out.append(("pose_keypoints_2d", op, openpose.BODY_POINTS.index(op)))
            elif name == "FACE_LANDMARKS":
                j = by_mediapipe.get(point)
                out.append(None if j is None else ("face_keypoints_2d", openpose.FACE_POINTS[j], j))
            else:  # OpenPose's hand has MediaPipe's 21 points in the same order
                side = "left" if name.startswith("LEFT") else "right"
                out.append((f"hand_{side}_keypoints_2d", openpose.HAND_POINTS[k], k))
    return out


def reduced_header(like: PoseHeader, point_format: str) -> PoseHeader:
    """The app's 178-point header (MediaPipe limbs and colors) with `like`'s version and dimensions."""
    full = {c.name: c for c in holistic_header(1, 1, point_format).components}
    components = []
    for name, points in COMPONENTS:
        source = full[name]
        at = {p: i for i, p in enumerate(points)}
        limbs = [(at[source.points[a]], at[source.points[b]]) for a, b in source.limbs
                 if source.points[a] in at and source.points[b] in at]
        components.append(PoseHeaderComponent(name, list(points), limbs, list(source.colors), point_format))
    return PoseHeader(like.version, like.dimensions, components)


@dataclass(frozen=True)
class OpenPoseLayout(SourceLayout):
    """OpenPose: the body's 8 points by BODY_25 name, the hands one to one, and the face points that
    correspond to the 128 contour points (`OPENPOSE_FACE`); the other face points are missing.
    A point is found by its OpenPose name, or where the file renames it, by its standard index."""

    def reduce(self, pose: Pose) -> tuple[Pose, tuple[str, ...]]:
        header = pose.header
        starts, offset = {}, 0
        for c in header.components:
            starts[c.name] = (offset, c.points)
            offset += len(c.points)
        index = np.full(NUM_KEYPOINTS, -1)
        for k, source in enumerate(_openpose_sources()):
            if source is not None:
                component, point, position = source
                start, points = starts[component]
                index[k] = start + (points.index(point) if point in points else position)
        have = index >= 0
        data = np.ma.getdata(pose.body.data)
        conf = np.where(np.ma.getmaskarray(pose.body.data).any(axis=-1), 0.0, np.ma.getdata(pose.body.confidence))
        out = np.zeros(data.shape[:2] + (NUM_KEYPOINTS, data.shape[-1]), np.float32)
        out_conf = np.zeros(data.shape[:2] + (NUM_KEYPOINTS,), np.float32)
        out[:, :, have] = data[:, :, index[have]]
        out_conf[:, :, have] = conf[:, :, index[have]]
        formats = {c.format for c in header.components}
        point_format = formats.pop() if len(formats) == 1 else "XY" + "Z" * (data.shape[-1] > 2) + "C"
        reduced = Pose(reduced_header(header, point_format), NumPyPoseBody(pose.body.fps, out, out_conf))
        return reduced, (_openpose_note(),)


def _openpose_note() -> str:
    missing = set(OPENPOSE_MISSING_FACE_POINTS)
    parts = []
    for contour, edges in FACE_CONTOURS.items():
        points = {str(p) for edge in edges for p in edge}
        parts.append(f"{contour} {len(points & missing)} of {len(points)}")
    return (f"OpenPose layout mapped onto the app's 178 points: the 8 body points and both hands map one "
            f"to one; {len(missing)} of the 128 face points have no OpenPose counterpart and are marked "
            f"missing (confidence 0): {', '.join(parts)} (MediaPipe indices "
            f"{' '.join(OPENPOSE_MISSING_FACE_POINTS)}); OpenPose's nose and pupils are not used")


LAYOUTS.add("holistic", MediaPipeLayout("MediaPipe Holistic", (
    ("POSE_LANDMARKS", (len(POSE_POINTS),)),
    ("FACE_LANDMARKS", (FACE_NUM_POINTS, FACE_NUM_POINTS + 10)),
    ("LEFT_HAND_LANDMARKS", (21,)),
    ("RIGHT_HAND_LANDMARKS", (21,)),
)))
LAYOUTS.add("reduced", MediaPipeLayout("the app's reduced 178-point layout",
                                       tuple((name, (len(points),)) for name, points in COMPONENTS)))
LAYOUTS.add("openpose", OpenPoseLayout("OpenPose", (
    ("pose_keypoints_2d", (len(openpose.BODY_POINTS),)),
    ("face_keypoints_2d", (len(openpose.FACE_POINTS),)),
    ("hand_left_keypoints_2d", (len(openpose.HAND_POINTS),)),
    ("hand_right_keypoints_2d", (len(openpose.HAND_POINTS),)),
)))


def find_layout(header: PoseHeader, label: str) -> SourceLayout:
    """The registered layout of `header`. Raises `PoseFileError` naming the supported layouts."""
    for name in LAYOUTS:
        layout = LAYOUTS.get(name)
        if layout.matches(header):
            problem = layout.problem(header)
            if problem:
                raise PoseFileError(f"{label}: {problem}")
            return layout
    supported = "; ".join(LAYOUTS.get(name).describe() for name in LAYOUTS)
    raise PoseFileError(f"{label}: not a supported pose layout. Supported layouts: {supported}. "
                        f"This file has: {_found(header)}. Convert it to one of these (e.g. re-extract "
                        f"the pose with MediaPipe Holistic)")
