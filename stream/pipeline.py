"""The per-frame pose pipeline: detect people, estimate their keypoints, return a FrameResult.

Immutable apart from the models it holds (as MMDeploy's PoseTracker): one instance serves any
number of frames and sources; per-stream state (tracks) lives in later stages.
"""

from __future__ import annotations

import time

import numpy as np

from engines.build import load_detector, load_pose_estimator
from engines.keypoints import BlazePoseLandmark

from .config import PipelineConfig
from .results import FrameResult
from .sources import Frame


class PosePipeline:
    """Detector + top-down keypoint estimator.

    Args:
        detector: callable ``image -> Detections``.
        estimator: callable ``(image, bboxes) -> PoseEstimates``.
        config: thresholds (:class:`PipelineConfig`); its model fields are not used here.
    """

    def __init__(self, detector, estimator, config: PipelineConfig = PipelineConfig()):
        self.detector, self.estimator, self.config = detector, estimator, config

    @classmethod
    def from_config(cls, config: PipelineConfig) -> "PosePipeline":
        """Load both models named by ``config``.

        Raises:
            engines.errors.ModelError: a model cannot be found, verified or loaded.
        """
        detector = load_detector(config.detector, config.device, config.threads,
                                 score_threshold=config.det_score_threshold, iou_threshold=config.det_iou_threshold,
                                 max_detections=config.max_people)
        estimator = load_pose_estimator(config.pose, config.device, config.threads)
        if isinstance(estimator, BlazePoseLandmark):
            estimator.refine = config.refine_crop
        return cls(detector, estimator, config)

    def __call__(self, frame: Frame) -> FrameResult:
        """Process one frame; ``timings`` gets ``detect`` and ``pose`` milliseconds."""
        image = frame.image
        t0 = time.perf_counter()
        detections = self.detector(image)
        sizes = detections.bboxes[:, 2:] - detections.bboxes[:, :2]
        keep = (sizes >= self.config.min_bbox_size).all(axis=1)
        bboxes, bbox_scores = detections.bboxes[keep], detections.scores[keep]
        t1 = time.perf_counter()
        poses = self.estimator(image, bboxes)
        keep = poses.pose_scores >= self.config.pose_score_threshold
        t2 = time.perf_counter()
        extra = poses.extra_keypoints
        return FrameResult(
            frame_id=frame.frame_id, pts=frame.pts, width=image.shape[1], height=image.shape[0],
            bboxes=bboxes[keep], bbox_scores=bbox_scores[keep],
            keypoints=poses.keypoints[keep], keypoint_scores=poses.keypoint_scores[keep],
            extra_keypoints=None if extra is None else extra[keep],
            extra_keypoint_scores=None if extra is None else poses.extra_keypoint_scores[keep],
            image=frame.name, timings={"detect": (t1 - t0) * 1e3, "pose": (t2 - t1) * 1e3},
        )
