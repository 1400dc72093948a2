"""Pose sequences: read `.pose` files, reduce and normalize them as the app does, synthesize a
signer, and draw the conditioning images the generator sees. numpy and pose-format only; no torch."""

from hpv.pose.layout import PoseLayout
from hpv.pose.reader import PoseNoteWarning, load_sequence, read_pose
from hpv.pose.render import APP_BACKGROUNDS, letterbox, render, to_model_input
from hpv.pose.sequence import PoseSequence
from hpv.pose.synthetic import default_sequence, synthetic_pose

__all__ = [
    "APP_BACKGROUNDS", "PoseLayout", "PoseNoteWarning", "PoseSequence", "default_sequence", "letterbox",
    "load_sequence", "read_pose", "render", "synthetic_pose", "to_model_input",
]
