"""A second, closer look of the detector at a box: is it still a person?

A one-stage detector scores a whole frame at one scale, and at that scale some objects pass for
a person (on the shared ``har-stand`` clip YOLOX-Nano boxes a sofa armrest at the left edge,
46×150 px, once with score 0.75; BlazePose then fits a confident skeleton to it and the tracker
would follow a second "person"). Looked at again on a crop enlarged ``zoom`` times, the armrest
is no person (no box at all), while people stay people: the test-time scale check of cascade
detectors. The tracker asks it before a track is born (``tracking.verify_zoom``).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from posestream.engines.transforms import apply_affine, crop_warp_matrix

from .detections import Detections


def second_look(detector: Callable[[np.ndarray], Detections], image: np.ndarray, bboxes: np.ndarray,
                zoom: float = 2.5, padding: float = 1.25) -> np.ndarray:
    """Whether the detector still finds a person on each box in a crop enlarged about it.

    Each box's crop is the square about its centre, ``padding`` × its longer side, or larger
    where that would enlarge more than ``zoom`` times (a small, far person gets context around
    them instead of a blur), moved into the image as far as it fits (a person cut by the frame's
    edge is seen beside the rest of the picture, not beside a grey band, which hides half a
    body), and scaled to the detector's input size (the shorter side of
    ``detector.input_size``; grey 114, YOLOX's pad value, where the crop is larger than the
    image). The box is a person when a detection of the crop (the detector's own score
    threshold) contains the centre of the box's part inside the image (a neighbour's box over
    that centre counts too: the look errs towards people).

    Args:
        detector: a person detector, ``Detections = detector(image)`` on a BGR uint8 image,
            with ``input_size`` (width, height) pixels (:class:`~posestream.stream.detect.YOLOX`,
            :class:`~posestream.stream.detect.RTMDet`); one call per box.
        image: (H, W, 3) uint8 BGR frame.
        bboxes: (N, 4) float x1, y1, x2, y2 pixels.
        zoom: the most a crop is enlarged. 2.5 is the least of 1.5, 2.5 and 3.5 at which the
            har-stand armrest is no person in any look (0 of 11; 3 of 11 at 1.5); the 114 people
            of the shared clips are found in 1428 of 1438 looks (``tools/second_look_eval.py``).
        padding: scale of each box about its centre for its crop (1.25; the tracker's boxes
            are already its keypoints' box ×1.25, so their crops span 1.56× the keypoints: room
            for a detector box, which is larger than the keypoints' own).

    Returns:
        (N,) bool: True where a person is found again.

    Raises:
        ValueError: ``zoom`` or ``padding`` not positive.
        AttributeError: the detector has no ``input_size``.
    """
    if not zoom > 0 or not padding > 0:
        raise ValueError(f"second_look: zoom and padding must be > 0, got {zoom}, {padding}")
    bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4)
    size = int(min(detector.input_size))
    found = np.zeros(len(bboxes), bool)
    height, width = image.shape[:2]
    for i, (x1, y1, x2, y2) in enumerate(bboxes):
        side = max(padding * max(x2 - x1, y2 - y1), size / zoom, 1.0)
        corner = np.array([_inside((x1 + x2) / 2 - side / 2, side, width),
                           _inside((y1 + y2) / 2 - side / 2, side, height)])
        to_crop = crop_warp_matrix(corner + side / 2, (side, side), 0.0, (size, size))  # pixel-edge coordinates
        warp = to_crop.copy()
        warp[:, 2] += (size / side - 1) / 2  # warpAffine maps pixel centres
        crop = cv2.warpAffine(image, warp, (size, size), flags=cv2.INTER_LINEAR if size >= side else cv2.INTER_AREA,
                              borderValue=(114, 114, 114))
        boxes = detector(crop).bboxes
        cx, cy = apply_affine([(max(x1, 0) + min(x2, width)) / 2, (max(y1, 0) + min(y2, height)) / 2], to_crop)
        found[i] = bool(np.any((boxes[:, 0] <= cx) & (boxes[:, 2] >= cx) & (boxes[:, 1] <= cy) & (boxes[:, 3] >= cy)))
    return found


def _inside(start: float, side: float, length: int) -> float:
    """The start (pixels) of a window of ``side`` pixels moved into [0, ``length``] pixels as
    far as it fits (centred on the image where it is larger)."""
    if side >= length:
        return (length - side) / 2
    return min(max(start, 0.0), length - side)
