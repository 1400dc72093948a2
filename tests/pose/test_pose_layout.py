"""`PoseLayout.from_header`: a header whose limbs or colors the renderer could not draw is refused
with a `PoseFileError` naming the component and the limb."""

import io

import numpy as np
import pytest
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

from hpv.errors import PoseFileError
from hpv.pose import PoseLayout, load_sequence, render
from hpv.pose.holistic import holistic_header


def _header(hand_limbs, colors=((0, 0, 255),)):
    return PoseHeader(0.2, PoseHeaderDimensions(512, 512), [
        PoseHeaderComponent("BODY", ["a", "b", "c"], [(0, 1), (1, 2)], [(255, 0, 0)], "XYZC"),
        PoseHeaderComponent("HAND", ["WRIST", "THUMB_CMC"], hand_limbs, list(colors), "XYZC"),
    ])


def test_limbs_become_global_indices_with_their_component():
    layout = PoseLayout.from_header(_header([(0, 1)]))
    assert layout.limbs.tolist() == [[0, 1], [1, 2], [3, 4]]
    assert layout.limb_component.tolist() == [0, 0, 1]
    assert layout.colors.shape == (5, 3)


@pytest.mark.parametrize("limbs, bad", [([(0, 2)], "limb 0 (0, 2)"), ([(0, 1), (7, 0)], "limb 1 (7, 0)"),
                                        ([(65535, 65535)], "limb 0 (65535, 65535)"), ([(-1, 0)], "limb 0 (-1, 0)")])
def test_a_limb_past_its_components_points_is_refused(limbs, bad):
    # (0, 2) is inside the whole layout's 5 points but not the hand's 2: it would join another component.
    with pytest.raises(PoseFileError) as e:
        PoseLayout.from_header(_header(limbs))
    assert f"component 'HAND': {bad} joins points outside its 2 points (indices 0..1)" in str(e.value)


def test_malformed_limbs_and_colors_are_refused():
    header = _header([(0, 1)])
    header.components[1].limbs = [(0, 1, 1)]  # pose-format's constructor would refuse it itself
    with pytest.raises(PoseFileError, match="component 'HAND': limbs must be pairs"):
        PoseLayout.from_header(header)
    with pytest.raises(PoseFileError, match="component 'HAND': colors must be RGB triples"):
        PoseLayout.from_header(_header([(0, 1)], colors=[(1, 2)]))
    with pytest.raises(PoseFileError, match="component 'HAND': colors must be finite"):
        PoseLayout.from_header(_header([(0, 1)], colors=[(np.nan, 0, 0)]))


def test_a_file_with_a_limb_past_its_points_still_renders():
    """pose-format keeps only limbs between kept points when the reader reduces to the 178 points, so a
    corrupt limb in a file is dropped on the way, never drawn and never an IndexError."""
    header = holistic_header(500, 500)
    hand = next(c for c in header.components if c.name == "LEFT_HAND_LANDMARKS")
    hand.limbs = [*hand.limbs, (0, 500), (600, 601)]
    data = np.zeros((2, 1, header.total_points(), 3), np.float32)
    conf = np.zeros(data.shape[:3], np.float32)
    data[:, 0, 11], data[:, 0, 12], conf[:, 0, [11, 12]] = (300, 180, 0), (220, 180, 0), 1
    buffer = io.BytesIO()
    Pose(header, NumPyPoseBody(25.0, data, conf)).write(buffer)
    seq = load_sequence(buffer.getvalue())
    assert ((seq.layout.limbs >= 0) & (seq.layout.limbs < seq.layout.num_points)).all()
    assert render(seq, 32).shape == (2, 32, 32, 3)
