"""The parts (both hands and the face) generated apart in crops and stitched into the frame (issue 14):
crop boxes that follow each part's keypoints, smoothed over time, and their crop <-> frame transforms.
numpy only; the stitch itself is `hpv.runtime.stitch`."""

from hpv.parts.crops import (
    CROP_SIZE, HANDS, PARTS, BoxState, BoxTracker, CropTransform, PartBox, PartSpec, PartTracker, Smoothing,
    box_array, inside_frame, metric_box, raw_box, track_boxes,
)

__all__ = ["CROP_SIZE", "HANDS", "PARTS", "BoxState", "BoxTracker", "CropTransform", "PartBox", "PartSpec",
           "PartTracker", "Smoothing", "box_array", "inside_frame", "metric_box", "raw_box", "track_boxes"]
