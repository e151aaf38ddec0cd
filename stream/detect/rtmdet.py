"""RTMDet person detector exported by MMDeploy (NMS inside the graph)."""

from __future__ import annotations

import numpy as np

from posestream.engines.backend import InferenceBackend, require_signature
from posestream.engines.transforms import letterbox, unletterbox_boxes

from .detections import PERSON_CLASS, Detections, nms


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

    @staticmethod
    def matches(backend: InferenceBackend) -> bool:
        """Whether a model of unknown family has RTMDet's outputs (``dets``, ``labels``)."""
        outs = {s.name for s in backend.outputs}
        return {"dets", "labels"} <= outs

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
