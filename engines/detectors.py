"""Person detectors: YOLOX (raw grid output, decoded here) and RTMDet (MMDeploy, NMS in the graph).

Both are callables in the rtmlib style: ``bboxes, scores = detector(image)`` with a BGR
uint8 image; both letterbox to their input size with pad value 114 and map boxes back.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .backend import InferenceBackend, require_signature
from .transforms import letterbox, unletterbox_boxes

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


class YOLOX:
    """YOLOX person detector on an ONNX model exported by the YOLOX repo (``images`` → ``output``).

    The output (1, A, 5 + C) holds, per anchor point of the stride-8/16/32 grids, x/y offsets,
    log w/h, objectness and C class scores (post-sigmoid); decode: xy = (o + grid) · stride,
    wh = exp(o) · stride, score = objectness · class score (YOLOX ``demo_postprocess``).

    Args:
        backend: an :class:`~engines.backend.InferenceBackend` for the model.
        score_threshold: minimum person score kept.
        iou_threshold: NMS IoU threshold.
        max_detections: most boxes returned per image.

    Raises:
        ModelSignatureError: the model is not a YOLOX export (input ``images`` [1,3,H,W],
            output ``output`` [1,A,≥6] with A matching the grids).
    """

    strides = (8, 16, 32)

    def __init__(self, backend: InferenceBackend, score_threshold: float = 0.3, iou_threshold: float = 0.45,
                 max_detections: int = 100):
        require_signature(backend, {"images": (1, 3, None, None)}, ["output"])
        self.backend = backend
        shape = backend.inputs[0].shape
        if shape[2] is None or shape[3] is None:
            raise ValueError(f"{getattr(backend, 'name', 'YOLOX')}: a fixed input size is needed, got {shape}")
        self.input_size = (shape[3], shape[2])  # (width, height)
        self.score_threshold, self.iou_threshold, self.max_detections = score_threshold, iou_threshold, max_detections
        grids, strides = [], []
        for stride in self.strides:
            gh, gw = self.input_size[1] // stride, self.input_size[0] // stride
            ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
            grids.append(np.stack([xs, ys], -1).reshape(-1, 2))
            strides.append(np.full((gh * gw, 1), stride))
        self._grid = np.concatenate(grids).astype(np.float32)
        self._stride = np.concatenate(strides).astype(np.float32)
        anchors = backend.outputs[[o.name for o in backend.outputs].index("output")].shape[1]
        if anchors is not None and anchors != len(self._grid):
            raise ValueError(f"YOLOX output has {anchors} anchor points, the {self.input_size} grids have {len(self._grid)}")

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """BGR uint8 (H, W, 3) → (1, 3, h, w) float32 0–255 letterboxed tensor, and the ratio."""
        canvas, ratio = letterbox(image, self.input_size)
        return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32), ratio

    def decode(self, output: np.ndarray, ratio: float, image_shape: tuple[int, int]) -> Detections:
        """Decode the raw (1, A, 5 + C) output into person :class:`Detections` in image pixels."""
        out = output[0]
        scores = out[:, 4] * out[:, 5 + PERSON_CLASS]
        candidates = scores >= self.score_threshold
        if not candidates.any():
            return Detections.empty()
        out, scores = out[candidates], scores[candidates]
        centers = (out[:, :2] + self._grid[candidates]) * self._stride[candidates]
        sizes = np.exp(out[:, 2:4]) * self._stride[candidates]
        boxes = unletterbox_boxes(np.concatenate([centers - sizes / 2, centers + sizes / 2], 1), ratio, image_shape)
        keep = nms(boxes, scores, self.score_threshold, self.iou_threshold, self.max_detections)
        return Detections(boxes[keep], scores[keep].astype(np.float32))

    def __call__(self, image: np.ndarray) -> Detections:
        """Detect people in a BGR uint8 (H, W, 3) image."""
        tensor, ratio = self.preprocess(image)
        (output,) = self.backend.run({"images": tensor}, ["output"])
        return self.decode(output, ratio, image.shape[:2])


class RTMDet:
    """RTMDet person detector exported by MMDeploy (``input`` → ``dets`` (1,N,5), ``labels`` (1,N)).

    Preprocessing follows the MMDeploy SDK pipeline of the RTMPose person detectors: letterbox
    (pad 114), BGR, normalise with mean (103.53, 116.28, 123.675) and std (57.375, 57.12, 58.395).
    NMS is inside the graph; only label 0 (person) and scores ≥ ``score_threshold`` are kept,
    and a second NMS at ``iou_threshold`` makes that knob mean the same as for YOLOX.

    Raises:
        ModelSignatureError: the model lacks ``input`` [1,3,H,W] or ``dets``/``labels``.
    """

    mean = np.array([103.53, 116.28, 123.675], np.float32)
    std = np.array([57.375, 57.12, 58.395], np.float32)

    def __init__(self, backend: InferenceBackend, score_threshold: float = 0.3, iou_threshold: float = 0.45,
                 max_detections: int = 100):
        require_signature(backend, {"input": (None, 3, None, None)}, ["dets", "labels"])
        self.backend = backend
        shape = backend.inputs[0].shape
        self.input_size = (shape[3] or 320, shape[2] or 320)
        self.score_threshold, self.iou_threshold, self.max_detections = score_threshold, iou_threshold, max_detections

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """BGR uint8 (H, W, 3) → normalised (1, 3, h, w) float32 tensor, and the letterbox ratio."""
        canvas, ratio = letterbox(image, self.input_size)
        tensor = canvas.astype(np.float32)
        tensor -= self.mean
        tensor /= self.std
        return np.ascontiguousarray(tensor.transpose(2, 0, 1)[None]), ratio

    def __call__(self, image: np.ndarray) -> Detections:
        """Detect people in a BGR uint8 (H, W, 3) image."""
        tensor, ratio = self.preprocess(image)
        dets, labels = self.backend.run({"input": tensor}, ["dets", "labels"])
        dets, labels = dets[0], labels[0]
        keep = (labels == PERSON_CLASS) & (dets[:, 4] >= self.score_threshold)
        boxes = unletterbox_boxes(dets[keep, :4], ratio, image.shape[:2])
        scores = dets[keep, 4].astype(np.float32)
        order = nms(boxes, scores, self.score_threshold, self.iou_threshold, self.max_detections)
        return Detections(boxes[order], scores[order])
