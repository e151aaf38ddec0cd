"""The detect stage's result: person boxes of one image, and the NMS that makes them."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PERSON_CLASS = 0  # COCO-80 class index of "person" (and the only class of the RTMDet person models)


@dataclass(frozen=True)
class Detections:
    """Person boxes of one image.

    Attributes:
        bboxes: (N, 4) float32 x1, y1, x2, y2 in image pixels.
        scores: (N,) float32 confidences in [0, 1], descending.
    """

    bboxes: np.ndarray
    scores: np.ndarray

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return len(self.scores)


def nms(bboxes: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float,
        max_detections: int) -> np.ndarray:
    """Indices kept by greedy NMS (OpenCV ``cv2.dnn.NMSBoxes``), best first.

    Args:
        bboxes: (N, 4) x1y1x2y2 pixels. scores: (N,).
    """
    if len(scores) == 0:
        return np.zeros((0,), np.int64)
    xywh = np.concatenate([bboxes[:, :2], bboxes[:, 2:] - bboxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), score_threshold, iou_threshold)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    return keep[:max_detections]
