"""What a stage's pose input is fed: drawn conditioning images (the baseline's contract) or the
178 keypoints (the keypoint stages draw their own fields). One key per kind of input: the
resolution of a drawn image, or "keypoints". numpy only, so runtimes use it without torch."""

from __future__ import annotations

import numpy as np

from hpv.pose.sequence import PoseSequence

KEYPOINTS = "keypoints"
DEPTH = "depth"  # optional [T, 178] z of the keypoints (`hpv.pose.keypoints.depth`): orders stitched hands
POSE_ROLES = ("pose", "keypoints")


def conditioning_key(spec) -> int | str:
    """Key of a pose input (a TensorSpec or a manifest tensor record)."""
    role = getattr(spec.role, "value", spec.role)
    return KEYPOINTS if role == KEYPOINTS else int(spec.shape[-1])


def conditioning(seq: PoseSequence, keys) -> dict[int | str, np.ndarray]:
    """Model inputs of `seq` for each key: float32 [T,178,3] keypoints or [T,3,R,R] drawn images."""
    from hpv.pose.keypoints import keypoints
    from hpv.pose.render import render, to_model_input

    return {k: keypoints(seq) if k == KEYPOINTS else to_model_input(render(seq, k)) for k in keys}
