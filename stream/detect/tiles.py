"""Small people in large frames: the detector run on overlapping tiles of the frame as well as on
the whole of it (slicing-aided inference: Akyon et al., "Slicing Aided Hyper Inference and
Fine-tuning for Small Object Detection", ICIP 2022).

A one-stage detector sees a frame shrunk to its input (416 px for YOLOX-Nano): a person 150 px
tall in a 1920×1080 frame is 33 px there, and YOLOX-Nano never finds the people of five of the
seven labelled shared clips scaled to that height in such a frame (``tools/eval_classify.py
--shared --composite 150 --detect-tile 0``). In a tile the size of the frame's height he is
1.78 times larger.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .detections import Detections, nms

#: Least overlap of neighbouring tiles, as a fraction of the tile's side: a person narrower than
#: that is whole in one tile at least.
TILE_OVERLAP = 0.2

#: Frames whose longer side is under this many tiles are not tiled: the detector would see their
#: people less than 1.5 times larger for at least twice the runs (1280×720 with 1080 px tiles: 1.19).
MIN_GAIN = 1.5


def tile_grid(width: int, height: int, tile: int, overlap: float = TILE_OVERLAP) -> np.ndarray:
    """Tiles covering a ``width`` × ``height`` frame: squares of side ``tile`` (cut to the frame's
    side where it is shorter), neighbours overlapping by at least ``overlap`` × that side, spread
    evenly from edge to edge.

    Returns:
        (K, 4) int64 x1, y1, x2, y2 pixels (x2, y2 exclusive), row by row; (0, 4) when the
        frame's longer side is under :data:`MIN_GAIN` tiles (the whole-frame detection sees
        nearly as well).

    Raises:
        ValueError: ``tile`` < 1, or ``overlap`` outside [0, 1).
    """
    if tile < 1 or not 0 <= overlap < 1:
        raise ValueError(f"tile_grid: tile must be >= 1 and overlap in [0, 1), got {tile}, {overlap}")
    if max(width, height) < MIN_GAIN * tile:
        return np.zeros((0, 4), np.int64)

    def starts(length: int) -> np.ndarray:
        side = min(tile, length)
        count = 1 if length <= side else math.ceil((length - side) / (side * (1 - overlap))) + 1
        return np.round(np.linspace(0, length - side, count)).astype(np.int64), side

    xs, tw = starts(width)
    ys, th = starts(height)
    return np.array([(x, y, x + tw, y + th) for y in ys for x in xs], np.int64)


def detect_tiled(detector: Callable[[np.ndarray], Detections], image: np.ndarray, tile: int,
                 overlap: float = TILE_OVERLAP) -> Detections:
    """Person boxes of the whole ``image`` and of each of its tiles (:func:`tile_grid`), merged.

    A tile's box that reaches an edge of the tile lying inside the frame is dropped: its person
    goes on in the neighbouring tile, whole there when narrower than the overlap (a fifth of the
    tile), else left to the whole-frame pass (which may miss someone both wide and small, e.g.
    lying across a tile boundary). The rest join the whole frame's boxes in one NMS at the
    detector's own ``score_threshold``, ``iou_threshold`` and ``max_detections`` (IoU only:
    a tile's box of part of a person inside the whole frame's box of them stays, for the
    tracker's one-crop-per-person merge).

    Args:
        detector: ``Detections = detector(image)`` on a BGR uint8 image, with ``score_threshold``,
            ``iou_threshold``, ``max_detections`` (:class:`~posestream.stream.detect.YOLOX`,
            :class:`~posestream.stream.detect.RTMDet`); called 1 + K times.
        image: (H, W, 3) uint8 BGR. tile: tile side, pixels. overlap: as in :func:`tile_grid`.

    Returns:
        :class:`Detections` in ``image`` pixels, scores descending.
    """
    whole = detector(image)
    height, width = image.shape[:2]
    tiles = tile_grid(width, height, tile, overlap)
    if not len(tiles):
        return whole
    bboxes, scores = [whole.bboxes], [whole.scores]
    for x1, y1, x2, y2 in tiles:
        found = detector(np.ascontiguousarray(image[y1:y2, x1:x2]))
        boxes = found.bboxes + np.array([x1, y1, x1, y1], np.float32)
        margin = 0.01 * max(x2 - x1, y2 - y1)
        cut = (((boxes[:, 0] <= x1 + margin) & (x1 > 0)) | ((boxes[:, 1] <= y1 + margin) & (y1 > 0))
               | ((boxes[:, 2] >= x2 - margin) & (x2 < width)) | ((boxes[:, 3] >= y2 - margin) & (y2 < height)))
        bboxes.append(boxes[~cut])
        scores.append(found.scores[~cut])
    bboxes, scores = np.concatenate(bboxes).astype(np.float32), np.concatenate(scores).astype(np.float32)
    keep = nms(bboxes, scores, detector.score_threshold, detector.iou_threshold, detector.max_detections)
    return Detections(bboxes[keep], scores[keep])
