"""Similarities between people: box IoU, keypoint OKS, OKS-NMS, and boxes from keypoints.

OKS follows the COCO keypoint evaluation (``cocoeval.py`` ``computeOks``): per keypoint
``exp(-d² / (2 · s² · k²))`` with ``s²`` the object area in pixels² and ``k = 2σ`` from
:data:`posestream.engines.layouts.COCO17_SIGMAS`, averaged over the keypoints counted.
"""

from __future__ import annotations

import numpy as np

from posestream.engines.layouts import COCO17_SIGMAS


def _intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, M) pairwise intersection areas and the (N,), (M,) areas of x1y1x2y2 boxes, float64 px²."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter, area_a, area_b


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union.

    Args:
        a: (N, 4) and b: (M, 4) float x1, y1, x2, y2 pixels.

    Returns:
        (N, M) float64 in [0, 1]; 0 where both boxes are empty.
    """
    inter, area_a, area_b = _intersections(a, b)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_containment(a: np.ndarray, b: np.ndarray, min_area_ratio: float = 0.0) -> np.ndarray:
    """Pairwise fraction of the smaller box covered by the other (intersection over the smaller
    area; the "overlap coefficient"), 0 for pairs whose smaller / larger area is under
    ``min_area_ratio`` (a small box inside a much larger one is another person).

    Args:
        a: (N, 4) and b: (M, 4) float x1, y1, x2, y2 pixels.
        min_area_ratio: in [0, 1].

    Returns:
        (N, M) float64 in [0, 1]; 0 where either box is empty.
    """
    inter, area_a, area_b = _intersections(a, b)
    small = np.minimum(area_a[:, None], area_b[None, :])
    large = np.maximum(area_a[:, None], area_b[None, :])
    ok = (small > 0) & (small >= min_area_ratio * large)
    return np.divide(inter, small, out=np.zeros_like(inter), where=ok)


def oks(keypoints_a: np.ndarray, keypoints_b: np.ndarray, areas: np.ndarray, visible_a: np.ndarray | None = None,
        visible_b: np.ndarray | None = None, sigmas: np.ndarray = COCO17_SIGMAS) -> np.ndarray:
    """Pairwise object keypoint similarity.

    Args:
        keypoints_a: (N, K, 2) pixels (the reference side, e.g. ground truth or a track).
        keypoints_b: (M, K, 2) pixels.
        areas: (N,) object areas in pixels² of the ``a`` side (COCO uses the segment area; for
            tracks, the area of the keypoints' box).
        visible_a, visible_b: (N, K) / (M, K) bool, keypoints to count (default all). A keypoint
            counts where it is visible on both sides (on ``a`` alone, as COCO, when ``visible_b``
            is None).
        sigmas: (K,) per-keypoint sigmas (COCO-17 by default).

    Returns:
        (N, M) float64 in [0, 1]; 0 for a pair with no keypoint counted.
    """
    keypoints_a = np.asarray(keypoints_a, np.float64)
    keypoints_b = np.asarray(keypoints_b, np.float64)
    n, k = keypoints_a.shape[:2]
    m = len(keypoints_b)
    visible_a = np.ones((n, k), bool) if visible_a is None else np.asarray(visible_a, bool)
    counted = np.broadcast_to(visible_a[:, None, :], (n, m, k))
    if visible_b is not None:
        counted = counted & np.asarray(visible_b, bool)[None, :, :]
    d2 = np.sum((keypoints_a[:, None] - keypoints_b[None, :]) ** 2, axis=-1)  # (N, M, K)
    variances = (2 * np.asarray(sigmas, np.float64)) ** 2
    scale = 2 * np.maximum(np.asarray(areas, np.float64), np.finfo(np.float64).eps)[:, None, None] * variances
    similarity = np.exp(-d2 / scale)
    total = np.sum(similarity * counted, axis=-1)
    count = counted.sum(axis=-1)
    return np.divide(total, count, out=np.zeros((n, m)), where=count > 0)


def keypoint_bboxes(keypoints: np.ndarray, visible: np.ndarray, padding: float = 1.25,
                    fallback: np.ndarray | None = None) -> np.ndarray:
    """Boxes around each person's visible keypoints, grown about their centre.

    Args:
        keypoints: (N, K, 2) pixels. visible: (N, K) bool.
        padding: scale of the box about its centre (1.25 as MMDeploy's PoseTracker).
        fallback: (N, 4) boxes used for people with fewer than two visible keypoints.

    Returns:
        (N, 4) float32 x1, y1, x2, y2 pixels (rows of ``fallback``, or zeros, where too few
        keypoints are visible).
    """
    keypoints = np.asarray(keypoints, np.float32)
    out = np.zeros((len(keypoints), 4), np.float32) if fallback is None else np.array(fallback, np.float32)
    for i, (points, mask) in enumerate(zip(keypoints, np.asarray(visible, bool))):
        if mask.sum() < 2:
            continue
        lo, hi = points[mask].min(axis=0), points[mask].max(axis=0)
        centre, half = (lo + hi) / 2, (hi - lo) / 2 * padding
        out[i] = np.concatenate([centre - half, centre + half])
    return out


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, threshold: float,
            visible: np.ndarray | None = None, boxes: np.ndarray | None = None,
            iou_threshold: float = 1.0) -> np.ndarray:
    """Greedy non-maximum suppression of duplicate poses by OKS (mmpose ``oks_nms``) and,
    with ``boxes``, by box IoU too (two skeletons fitted to one body in different ways: their
    keypoints differ, their boxes do not).

    Args:
        keypoints: (N, K, 2) pixels. scores: (N,) instance scores (higher kept first).
        areas: (N,) pixels². threshold: a pose whose OKS with a kept one exceeds this is dropped.
        visible: (N, K) bool keypoints to compare (default all).
        boxes: (N, 4) x1, y1, x2, y2 pixels, or None. iou_threshold: ... or whose box IoU with
            a kept one's exceeds this (1.0: never; the pipeline's ``tracking.pose_nms_iou``).

    Returns:
        (n,) int64 indices kept, best score first.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    similarity = oks(keypoints, keypoints, areas, visible, visible)
    overlap = box_iou(boxes, boxes) if boxes is not None else np.zeros_like(similarity)
    keep: list[int] = []
    for i in order:
        if all(similarity[j, i] <= threshold and overlap[j, i] <= iou_threshold for j in keep):
            keep.append(int(i))
    return np.asarray(keep, np.int64)


def pose_nms(keypoints: np.ndarray, visible: np.ndarray, crop_bboxes: np.ndarray, scores: np.ndarray,
             oks_threshold: float, iou_threshold: float) -> np.ndarray:
    """:func:`oks_nms` of poses on their keypoints' own boxes (:func:`keypoint_bboxes`, padding
    1; the crop's box where fewer than two keypoints are seen), OKS areas from those boxes.

    Args:
        keypoints: (N, K, 2) pixels. visible: (N, K) bool keypoints to compare.
        crop_bboxes: (N, 4) x1, y1, x2, y2 pixels, the crops the poses came from.
        scores: (N,) higher kept first. oks_threshold, iou_threshold: as ``threshold`` and
            ``iou_threshold`` of :func:`oks_nms` (the tracker's ``pose_nms_threshold``, ``pose_nms_iou``).

    Returns:
        (n,) int64 indices kept, best score first.
    """
    boxes = keypoint_bboxes(keypoints, visible, 1.0, crop_bboxes)
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 1, None), axis=1)
    return oks_nms(keypoints, scores, areas, oks_threshold, visible, boxes, iou_threshold)
