"""The pose stage: COCO-17 keypoints of each person, top-down on their box.

One file per model family (:mod:`.rtmpose`, :mod:`.blazepose`); each class is a callable
``PoseEstimates = estimator(image, bboxes)`` that crops every box, runs all crops of the frame
in one batched call and maps keypoints back to image pixels. Adding a keypoint model is one
file here and a line in :data:`FAMILIES`.
"""

from __future__ import annotations

from posestream.engines.build import load_model

from .blazepose import BlazePoseLandmark, batched_blazepose_graph
from .estimates import PoseEstimates, empty_estimates
from .rtmpose import RTMPose, simcc_decode

#: zoo family → wrapper class.
FAMILIES = {"rtmpose": RTMPose, "blazepose": BlazePoseLandmark}


def load_pose_estimator(model: str, device: str = "auto", threads: int = 0, **options):
    """Load a top-down keypoint estimator by zoo name (``rtmpose-m``, ``blazepose-full``…) or path.

    Args: as :func:`posestream.stream.detect.load_detector`; options go to the wrapper.

    Returns:
        A :class:`RTMPose` or :class:`BlazePoseLandmark`.

    Raises:
        posestream.engines.errors.ModelError and subclasses: missing file, wrong hash, not a keypoint model.
    """
    return load_model(model, FAMILIES, "keypoint model", device, threads, **options)


__all__ = ["BlazePoseLandmark", "FAMILIES", "PoseEstimates", "RTMPose", "batched_blazepose_graph",
           "empty_estimates", "load_pose_estimator", "simcc_decode"]
