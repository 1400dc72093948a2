"""The MediaPipe Holistic layout, written out so that neither mediapipe nor cv2 is needed.

The names and limb lists are copied from mediapipe (`PoseLandmark`, `HandLandmark`, `POSE_CONNECTIONS`,
`HAND_CONNECTIONS`, `FACEMESH_*`); tests check the face contours against the 128 points that
pose-format's `reduce_holistic` keeps.
"""

from __future__ import annotations

from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
from pose_format.utils.openpose import hand_colors

POSE_POINTS = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP",
    "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL", "RIGHT_HEEL",
    "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)
POSE_LIMBS = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
    (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20),
    (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)

HAND_POINTS = (
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)
HAND_LIMBS = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)

FACE_NUM_POINTS = 468  # 478 when the iris refinement is on; the extra 10 are never drawn reduced
FACE_CONTOURS = {
    "LIPS": (
        (61, 146), (146, 91), (91, 181), (181, 84), (84, 17), (17, 314), (314, 405), (405, 321),
        (321, 375), (375, 291), (61, 185), (185, 40), (40, 39), (39, 37), (37, 0), (0, 267),
        (267, 269), (269, 270), (270, 409), (409, 291), (78, 95), (95, 88), (88, 178), (178, 87),
        (87, 14), (14, 317), (317, 402), (402, 318), (318, 324), (324, 308), (78, 191), (191, 80),
        (80, 81), (81, 82), (82, 13), (13, 312), (312, 311), (311, 310), (310, 415), (415, 308),
    ),
    "LEFT_EYE": (
        (263, 249), (249, 390), (390, 373), (373, 374), (374, 380), (380, 381), (381, 382),
        (382, 362), (263, 466), (466, 388), (388, 387), (387, 386), (386, 385), (385, 384),
        (384, 398), (398, 362),
    ),
    "LEFT_EYEBROW": (
        (276, 283), (283, 282), (282, 295), (295, 285), (300, 293), (293, 334), (334, 296), (296, 336),
    ),
    "RIGHT_EYE": (
        (33, 7), (7, 163), (163, 144), (144, 145), (145, 153), (153, 154), (154, 155), (155, 133),
        (33, 246), (246, 161), (161, 160), (160, 159), (159, 158), (158, 157), (157, 173), (173, 133),
    ),
    "RIGHT_EYEBROW": (
        (46, 53), (53, 52), (52, 65), (65, 55), (70, 63), (63, 105), (105, 66), (66, 107),
    ),
    "FACE_OVAL": (
        (10, 338), (338, 297), (297, 332), (332, 284), (284, 251), (251, 389), (389, 356),
        (356, 454), (454, 323), (323, 361), (361, 288), (288, 397), (397, 365), (365, 379),
        (379, 378), (378, 400), (400, 377), (377, 152), (152, 148), (148, 176), (176, 149),
        (149, 150), (150, 136), (136, 172), (172, 58), (58, 132), (132, 93), (93, 234),
        (234, 127), (127, 162), (162, 21), (21, 54), (54, 103), (103, 67), (67, 109), (109, 10),
    ),
}
FACE_CONTOUR_LIMBS = tuple(edge for edges in FACE_CONTOURS.values() for edge in edges)
FACE_CONTOUR_POINTS = tuple(sorted({p for edge in FACE_CONTOUR_LIMBS for p in edge}))

BODY_COLOR = (255, 0, 0)
FACE_COLOR = (128, 0, 0)
HAND_COLORS = tuple(tuple(c) for c in hand_colors)  # OpenPose rainbow; some channels exceed 255

def holistic_header(width: int, height: int, point_format: str = "XYZC") -> PoseHeader:
    """A full 576-point holistic header. Face limbs are the contours: mediapipe's tesselation is not
    vendored here, and the contours are all that survives `reduce_holistic` anyway."""

    def component(name, points, limbs, colors):
        return PoseHeaderComponent(name, list(points), [tuple(l) for l in limbs], list(colors), point_format)

    face_points = [str(i) for i in range(FACE_NUM_POINTS)]
    return PoseHeader(
        version=0.2,
        dimensions=PoseHeaderDimensions(width=width, height=height, depth=0),
        components=[
            component("POSE_LANDMARKS", POSE_POINTS, POSE_LIMBS, [BODY_COLOR]),
            component("FACE_LANDMARKS", face_points, FACE_CONTOUR_LIMBS, [FACE_COLOR]),
            component("LEFT_HAND_LANDMARKS", HAND_POINTS, HAND_LIMBS, HAND_COLORS),
            component("RIGHT_HAND_LANDMARKS", HAND_POINTS, HAND_LIMBS, HAND_COLORS),
            component("POSE_WORLD_LANDMARKS", POSE_POINTS, POSE_LIMBS, [BODY_COLOR]),
        ],
    )
