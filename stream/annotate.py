"""Drawing results on frames: boxes, COCO-17 skeletons, track ids and labels.

Stateless, one call shape (``annotate(image, result) -> image``) as in supervision's annotators.
"""

from __future__ import annotations

import cv2
import numpy as np

from engines.layouts import COCO17_SKELETON

from .results import FrameResult

# BGR colours: left limbs orange, right limbs blue, centre/face green (mmpose's convention)
_LEFT, _RIGHT, _CENTRE = (0, 128, 255), (255, 128, 0), (0, 200, 0)
_LEFT_IDS, _RIGHT_IDS = {1, 3, 5, 7, 9, 11, 13, 15}, {2, 4, 6, 8, 10, 12, 14, 16}


def _colour(a: int, b: int) -> tuple[int, int, int]:
    if a in _LEFT_IDS and b in _LEFT_IDS:
        return _LEFT
    if a in _RIGHT_IDS and b in _RIGHT_IDS:
        return _RIGHT
    return _CENTRE


class SkeletonAnnotator:
    """Draws boxes, skeletons and labels.

    Args:
        keypoint_threshold: keypoints with a score below this are not drawn (nor their links).
        thickness: line thickness in pixels (scaled up for large frames).
    """

    def __init__(self, keypoint_threshold: float = 0.3, thickness: int = 2):
        self.keypoint_threshold = keypoint_threshold
        self.thickness = thickness

    def annotate(self, image: np.ndarray, result: FrameResult) -> np.ndarray:
        """Return a copy of the BGR uint8 ``image`` with ``result`` drawn on it."""
        canvas = image.copy()
        scale = max(1, round(max(image.shape[:2]) / 720))
        thick = self.thickness * scale
        for i in range(len(result)):
            x1, y1, x2, y2 = result.bboxes[i].round().astype(int)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), max(1, thick // 2))
            label = [f"{result.bbox_scores[i]:.2f}"]
            if result.track_ids is not None:
                label.insert(0, f"#{int(result.track_ids[i])}")
            for labels in (result.postures, result.gestures):
                if labels is not None and labels[i] not in (None, "none", "unknown"):
                    label.append(labels[i])
            cv2.putText(canvas, " ".join(label), (x1, max(12 * scale, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5 * scale, (0, 255, 0), max(1, scale), cv2.LINE_AA)
            points = result.keypoints[i]
            visible = result.keypoint_scores[i] >= self.keypoint_threshold
            for a, b in COCO17_SKELETON:
                if visible[a] and visible[b]:
                    cv2.line(canvas, tuple(points[a].round().astype(int)), tuple(points[b].round().astype(int)),
                             _colour(a, b), thick, cv2.LINE_AA)
            for k in np.flatnonzero(visible):
                cv2.circle(canvas, tuple(points[k].round().astype(int)), thick + 1, (0, 0, 255), -1, cv2.LINE_AA)
        return canvas
