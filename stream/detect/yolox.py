"""YOLOX person detector (raw grid output, decoded here)."""

from __future__ import annotations

import numpy as np

from posestream.engines.backend import InferenceBackend, require_signature
from posestream.engines.transforms import letterbox, unletterbox_boxes

from .detections import PERSON_CLASS, Detections, nms


class YOLOX:
    """YOLOX person detector on an ONNX model exported by the YOLOX repo (``images`` → ``output``).

    The output (1, A, 5 + C) holds, per anchor point of the stride-8/16/32 grids, x/y offsets,
    log w/h, objectness and C class scores (post-sigmoid); decode: xy = (o + grid) · stride,
    wh = exp(o) · stride, score = objectness · class score (YOLOX ``demo_postprocess``).

    Args:
        backend: an :class:`~posestream.engines.backend.InferenceBackend` for the model.
        score_threshold: minimum person score kept.
        iou_threshold: NMS IoU threshold.
        max_detections: most boxes returned per image.

    Raises:
        ModelSignatureError: the model is not a YOLOX export (input ``images`` [1,3,H,W],
            output ``output`` [1,A,≥6] with A matching the grids).
    """

    strides = (8, 16, 32)

    @staticmethod
    def matches(backend: InferenceBackend) -> bool:
        """Whether a model of unknown family has YOLOX's signature (``images`` → ``output``)."""
        ins, outs = {s.name for s in backend.inputs}, {s.name for s in backend.outputs}
        return "images" in ins and "output" in outs

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
