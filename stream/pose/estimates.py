"""The pose stage's result: keypoints of the people in one image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PoseEstimates:
    """Keypoints of N people in one image.

    Attributes:
        keypoints: (N, 17, 2) float32, COCO-17 order, image pixels.
        keypoint_scores: (N, 17) float32 in [0, 1].
        extra_keypoints: (N, E, 2) float32 image pixels of extra keypoints (BlazePose: heels and
            foot tips, :data:`posestream.engines.layouts.FOOT_EXTRA_NAMES`), or None.
        extra_keypoint_scores: (N, E) float32 in [0, 1], or None.
        pose_scores: (N,) float32 in [0, 1], the model's "a person is in this crop" score
            (BlazePose ``Identity_1``; RTMPose has no such output and reports 1).
        rois: (N, 4) float32 crop regions for each person's next frame (cx, cy, side pixels,
            rotation radians; BlazePose's body-aligned ROI), or None for models that crop from
            the box alone (RTMPose).
        hand_points: (N, 2, 3, 2) float32 image pixels of each hand's wrist, index and pinky
            points (left hand, right hand; BlazePose 15/19/17 and 16/20/18,
            :data:`posestream.engines.layouts.BLAZEPOSE33_HAND_POINTS`), or None for models
            without finger points (COCO-17: hands are then cropped along the forearm).
        hand_point_scores: (N, 2, 3) float32 in [0, 1], or None.
        wholebody_keypoints: (N, 133, 2) float32 image pixels in COCO-WholeBody order
            (:data:`posestream.engines.layouts.WHOLEBODY133_NAMES`) from a whole-body model
            (RTMW, DWPose), or None.
        wholebody_scores: (N, 133) float32 in [0, 1] (SimCC peak values), or None.
    """

    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    pose_scores: np.ndarray
    extra_keypoints: np.ndarray | None = None
    extra_keypoint_scores: np.ndarray | None = None
    rois: np.ndarray | None = None
    hand_points: np.ndarray | None = None
    hand_point_scores: np.ndarray | None = None
    wholebody_keypoints: np.ndarray | None = None
    wholebody_scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keypoints)


def empty_estimates(k: int) -> PoseEstimates:
    return PoseEstimates(np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32), np.zeros((0,), np.float32))
