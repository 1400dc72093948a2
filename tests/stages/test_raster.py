"""The rasterizer's splat buckets (hpv.stages.raster): a partition of the channels that draws no
more splats than padding every channel to the longest, and the same fields as the NumPy reference
for every group set the stages use."""

import numpy as np
import pytest
import torch

from hpv.pose import default_sequence
from hpv.pose.fields import FACE_CROP_GROUPS, FIELD_GROUPS, HAND_CROP_GROUPS, keypoint_fields, splat_table
from hpv.pose.keypoints import keypoints
from hpv.stages.raster import KeypointRaster, splat_buckets

GROUP_SETS = {"body": FIELD_GROUPS, "hand": HAND_CROP_GROUPS, "face": FACE_CROP_GROUPS}


@pytest.mark.parametrize("counts", [[5], [3, 3, 3], [10, 1, 1, 1, 1, 10], [24, 75, 32, 24, 156, 144, 30, 120]])
def test_buckets_partition_the_channels_and_save_splats(counts):
    buckets = splat_buckets(counts)
    assert sorted(c for b in buckets for c in b) == list(range(len(counts)))
    assert 1 <= len(buckets) <= 4 and all(b == sorted(b) for b in buckets)
    drawn = sum(len(b) * max(counts[c] for c in b) for b in buckets)
    assert drawn <= len(counts) * max(counts)


def test_equal_counts_stay_in_one_bucket():
    assert splat_buckets([7, 7, 7, 7]) == [[0, 1, 2, 3]]


@pytest.mark.parametrize("name", sorted(GROUP_SETS))
def test_bucketed_raster_matches_reference(name):
    groups = GROUP_SETS[name]
    raster = KeypointRaster(64, groups)
    valid = splat_table(64, groups)[3]
    assert raster.splats < valid.shape[0] * valid.shape[1]  # padding dropped
    kp = keypoints(default_sequence(4, seed=5, style="mixed"))
    ref = keypoint_fields(kp, 64, groups)
    got = raster(torch.from_numpy(kp)).numpy()
    assert ref.max() > 0.9 and np.isfinite(got).all()
    assert np.abs(got - ref).max() < 1e-4
