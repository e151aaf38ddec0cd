"""What a person looks like, for finding a lost person again: colour histograms of the trunk and thighs.

A tracked person missed for a few frames can come back too far from where they were lost for box
IoU or OKS; the tracker then asks whether the new track looks like a lost one
(:attr:`~posestream.stream.track.tracker.TrackerConfig.reid_appearance`). The descriptor is the
classic one of person re-identification: HSV colour histograms over horizontal stripes of the
body (Gray and Tao, "Viewpoint invariant pedestrian recognition with an ensemble of localized
features", ECCV 2008), here two stripes placed by the keypoints — the trunk (shoulders to hips)
and the thighs (hips down 0.7 torso) —, compared by the Bhattacharyya distance (OpenCV's
``calcHist`` and ``compareHist``), as DeepSORT gates its matches by appearance (Wojke et al.,
ICIP 2017).
"""

from __future__ import annotations

import cv2
import numpy as np

from posestream.engines.layouts import COCO17_TRUNK

#: Hue, saturation, value bins of each stripe's histogram (coarse: the people are small).
BINS = (6, 3, 3)
#: Length of a descriptor: two stripes.
SIZE = 2 * int(np.prod(BINS))
_TRUNK = list(COCO17_TRUNK)  # shoulders, then hips


def _stripe(image: np.ndarray, x1: float, y1: float, x2: float, y2: float) -> np.ndarray | None:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = int(max(0, x1)), int(max(0, y1)), int(min(w, x2)), int(min(h, y2))
    if x2 - x1 < 3 or y2 - y1 < 3:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return hist / max(float(hist.sum()), 1.0)


def appearance_histograms(image: np.ndarray, keypoints: np.ndarray, keypoint_scores: np.ndarray,
                          threshold: float) -> np.ndarray:
    """Each person's descriptor: the HSV histograms (:data:`BINS`, each summing to 1, halved) of
    their trunk — between the shoulder and hip centres, 0.8 of the shoulders' width (at least
    0.24 torso) wide about the body's axis, its top tenth left out (the neck, the hair) — and of
    their thighs, from 0.1 to 0.7 torso below the hips, as wide.

    Args:
        image: (H, W, 3) uint8 BGR.
        keypoints: (N, 17, 2) pixels, COCO-17. keypoint_scores: (N, 17).
        threshold: both shoulders and both hips must score at least this.

    Returns:
        (N, :data:`SIZE`) float32; a row of NaN where the shoulders or hips are not seen, or a
        stripe inside the image is under 3 pixels wide or high (outside it, a person lying
        down, a tiny person).
    """
    out = np.full((len(keypoints), SIZE), np.nan, np.float32)
    if not len(keypoints):
        return out
    for row, (k, s) in enumerate(zip(np.asarray(keypoints, np.float64), np.asarray(keypoint_scores))):
        if not (s[_TRUNK] >= threshold).all():
            continue
        shoulders, hips = k[_TRUNK[:2]].mean(axis=0), k[_TRUNK[2:]].mean(axis=0)
        torso = float(np.linalg.norm(hips - shoulders))
        half = 0.4 * max(abs(k[5, 0] - k[6, 0]), 0.3 * torso)
        centre = (shoulders[0] + hips[0]) / 2
        trunk = _stripe(image, centre - half, shoulders[1] + 0.1 * torso, centre + half, hips[1])
        thighs = _stripe(image, centre - half, hips[1] + 0.1 * torso, centre + half, hips[1] + 0.7 * torso)
        if trunk is not None and thighs is not None:
            out[row] = np.concatenate([trunk, thighs]) / 2
    return out


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance (OpenCV's ``HISTCMP_BHATTACHARYYA``) between two descriptors of
    :func:`appearance_histograms`: 0 the same colours, 1 none in common; NaN if either is NaN."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    return float(cv2.compareHist(np.asarray(a, np.float32), np.asarray(b, np.float32), cv2.HISTCMP_BHATTACHARYYA))
