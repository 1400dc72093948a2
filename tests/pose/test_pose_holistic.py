from pose_format.utils.generic import reduce_holistic

from hpv.pose import synthetic_pose
from hpv.pose.holistic import FACE_CONTOUR_POINTS, holistic_header


def test_face_contours_match_reduce_holistic():
    # reduce_holistic hard-codes mediapipe's FACEMESH_CONTOURS points; our edge lists must agree.
    reduced = reduce_holistic(synthetic_pose(num_frames=1))
    face = next(c for c in reduced.header.components if c.name == "FACE_LANDMARKS")
    assert face.points == [str(p) for p in FACE_CONTOUR_POINTS]
    assert len(FACE_CONTOUR_POINTS) == 128


def test_holistic_header_has_576_points():
    header = holistic_header(500, 500)
    assert header.total_points() == 576
    assert [len(c.points) for c in header.components] == [33, 468, 21, 21, 33]
    assert header.num_dims() == 3


def test_import_stays_light():
    import subprocess
    import sys

    code = "import sys, hpv.pose; assert not {'torch', 'cv2', 'mediapipe'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
