"""Geometric transforms between image pixels and network inputs.

Conventions: points are (x, y) in pixels of the full image, x to the right, y down; angles
are radians, positive clockwise on screen (the y-down rotation MediaPipe uses for its ROIs).
Affine matrices are OpenCV's (2, 3) float64 ``M`` with ``dst = M @ [x, y, 1]``.
"""

from __future__ import annotations

import cv2
import numpy as np


def letterbox(image: np.ndarray, size: tuple[int, int], pad_value: int = 114) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio and pad bottom/right to ``size`` (YOLOX, RTMDet test pipelines).

    Args:
        image: (H, W, 3) uint8.
        size: network input (width, height) in pixels.
        pad_value: fill of the padding (114 as in YOLOX and mmdet).

    Returns:
        ``(canvas, ratio)``: (height, width, 3) uint8 canvas with the resized image in its top-left
        corner, and the scale applied (network px per image px). Undo with :func:`unletterbox_boxes`.
    """
    width, height = size
    h, w = image.shape[:2]
    ratio = min(width / w, height / h)
    new_w, new_h = max(1, int(round(w * ratio))), max(1, int(round(h * ratio)))
    canvas = np.full((height, width, 3), pad_value, dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, ratio


def unletterbox_boxes(boxes: np.ndarray, ratio: float, image_shape: tuple[int, int]) -> np.ndarray:
    """Map (N, 4) x1y1x2y2 boxes from letterboxed network pixels back to image pixels, clipped.

    Args:
        boxes: (N, 4) float, network input pixels.
        ratio: the ratio :func:`letterbox` returned.
        image_shape: (H, W) of the original image.

    Returns:
        (N, 4) float32 boxes in image pixels, clipped to [0, W] × [0, H].
    """
    out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) / ratio
    h, w = image_shape[:2]
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out


def bbox_to_center_scale(bboxes: np.ndarray, padding: float = 1.25,
                         aspect_ratio: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Convert x1y1x2y2 boxes to centres and padded crop sizes (mmpose ``bbox_xyxy2cs`` + ``_fix_aspect_ratio``).

    Args:
        bboxes: (N, 4) pixels.
        padding: factor applied to width and height (1.25 in RTMPose configs).
        aspect_ratio: if given, width/height of the crop: the shorter side is grown to match.

    Returns:
        ``(centers, scales)``: (N, 2) float32 px and (N, 2) float32 crop (width, height) px.
    """
    bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
    centers = (bboxes[:, :2] + bboxes[:, 2:]) / 2
    scales = (bboxes[:, 2:] - bboxes[:, :2]) * padding
    if aspect_ratio is not None:
        w, h = scales[:, 0], scales[:, 1]
        scales = np.where((w > h * aspect_ratio)[:, None],
                          np.stack([w, w / aspect_ratio], 1), np.stack([h * aspect_ratio, h], 1))
    return centers, scales.astype(np.float32)


def crop_warp_matrix(center: np.ndarray, scale: np.ndarray, rotation: float,
                     output_size: tuple[int, int]) -> np.ndarray:
    """Affine matrix taking image pixels into a (rotated) crop of ``output_size``.

    The crop of size ``scale`` (w, h) px centred on ``center`` and rotated by ``rotation``
    (radians, clockwise on screen) is stretched onto the (width, height) ``output_size``;
    ``center`` lands on the output centre (w/2, h/2), as in mmpose's ``get_warp_matrix``.

    Returns:
        (2, 3) float64 matrix for ``cv2.warpAffine``; invert with ``cv2.invertAffineTransform``.
    """
    out_w, out_h = output_size
    sx, sy = out_w / float(scale[0]), out_h / float(scale[1])
    cos, sin = np.cos(rotation), np.sin(rotation)
    linear = np.array([[sx * cos, sx * sin], [-sy * sin, sy * cos]])
    offset = np.array([out_w / 2.0, out_h / 2.0]) - linear @ np.asarray(center, dtype=np.float64)
    return np.hstack([linear, offset[:, None]])


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (..., 2) points; returns float32 of the same shape."""
    points = np.asarray(points, dtype=np.float64)
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def rotation_from_points(start: np.ndarray, end: np.ndarray, target_angle: float = np.pi / 2) -> float:
    """Rotation that turns the vector ``start → end`` to ``target_angle`` (MediaPipe ``AlignmentPointsRectsCalculator``).

    With the default target of 90° a person whose hips (start) are straight below the
    shoulders or head point (end) gets rotation 0. Result in [-π, π).
    """
    angle = target_angle - np.arctan2(-(end[1] - start[1]), end[0] - start[0])
    return float(angle - 2 * np.pi * np.floor((angle + np.pi) / (2 * np.pi)))


def warp_crops(image: np.ndarray, matrices: list[np.ndarray], output_size: tuple[int, int],
               rgb: bool = True) -> np.ndarray:
    """Warp every crop of one image into one uint8 batch, BGR → RGB on the way.

    Each crop is warped with bilinear interpolation (``cv2.warpAffine``) straight into its slot of
    the batch and turned to RGB in place with ``cv2.cvtColor`` (a negative-stride ``[..., ::-1]``
    view costs about six times as much when it is later cast to float).

    Args:
        image: (H, W, 3) uint8 BGR.
        matrices: N (2, 3) affine matrices, image pixels → crop pixels (:func:`crop_warp_matrix`).
        output_size: crop (width, height) in pixels.
        rgb: convert to RGB (else the crops stay BGR).

    Returns:
        (N, height, width, 3) uint8 crops; pixels outside the image are 0.
    """
    width, height = output_size
    crops = np.empty((len(matrices), height, width, 3), np.uint8)
    for crop, matrix in zip(crops, matrices):
        cv2.warpAffine(image, matrix, (width, height), dst=crop, flags=cv2.INTER_LINEAR)
        if rgb:
            cv2.cvtColor(crop, cv2.COLOR_BGR2RGB, dst=crop)
    return crops
