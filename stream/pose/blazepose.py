"""MediaPipe BlazePose GHUM landmark model (full), top-down on person crops."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

from posestream.engines.backend import InferenceBackend, require_signature
from posestream.engines.layouts import BLAZEPOSE33_HAND_POINTS, BLAZEPOSE33_TO_COCO17, BLAZEPOSE33_TO_FOOT_EXTRA
from posestream.engines.transforms import apply_affine, crop_warp_matrix, rotation_from_points, warp_crops

from .estimates import PoseEstimates, empty_estimates


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))).astype(np.float32)


def batched_blazepose_graph(path: str | Path) -> bytes:
    """Rewrite the tf2onnx BlazePose landmark graph for batched crops and prune unused heads.

    The converted graph has batch 1 baked into its input and into Reshape constants; this
    makes the batch dimension dynamic (Reshape shapes ``[1, …]`` → ``[-1, …]``) and keeps only
    the landmark (``Identity``), pose-flag (``Identity_1``) and world-landmark (``Identity_4``)
    outputs, dropping the segmentation and heatmap heads (``tools/benchmark.py`` prints the
    per-crop cost of both graphs).

    Returns:
        The serialized ONNX model.
    """
    import onnx
    from onnx import numpy_helper
    from onnx.utils import Extractor

    model = onnx.load(str(path))
    initializers = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in initializers:
            shape = numpy_helper.to_array(initializers[node.input[1]])
            if shape.ndim == 1 and len(shape) and shape[0] == 1 and -1 not in shape:
                shape = shape.copy()
                shape[0] = -1
                initializers[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    for value in [model.graph.input[0], *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    keep = ["Identity", "Identity_1", "Identity_4"]
    pruned = Extractor(model).extract_model([model.graph.input[0].name], keep)
    buffer = io.BytesIO()
    onnx.save(pruned, buffer)
    return buffer.getvalue()


class BlazePoseLandmark:
    """MediaPipe BlazePose GHUM landmark model (full), top-down on person crops.

    Input ``input_1`` [B,256,256,3] RGB in [0, 1]; output ``Identity`` [B,195] = 39 × (x, y, z,
    visibility logit, presence logit) in crop pixels, where 0–32 are the landmarks and 33–34 the
    alignment points (hip centre and a point fixing scale and rotation); ``Identity_1`` [B,1] is
    the pose-present score.

    Crops follow MediaPipe's ``pose_landmark`` ROI logic. A person seen for the first time (no
    ROI given) is cropped upright: a square of ``padding`` × the box's longer side around the
    box centre; with ``refine=True`` a second pass re-crops on the body-aligned ROI of those
    landmarks. A tracked person (an ROI given, from their previous frame) gets one pass on that
    ROI, as MediaPipe's tracking does: the aligned crop comes for free from the last landmarks;
    where that pass's pose flag falls under ``retrack_below`` the ROI has lost the person, who is
    cropped afresh from the box (as MediaPipe then runs its detector).
    Every estimate returns the aligned ROI of its landmarks for the next frame
    (:attr:`PoseEstimates.rois`): centred on the hip centre, side 2 × |alignment vector| × 1.25,
    rotated so that the body axis is vertical.

    Keypoint scores are sigmoid(visibility) × sigmoid(presence).

    Args:
        backend: a backend for :func:`batched_blazepose_graph`'s output or the raw file.
        refine: run the aligned second pass for people without an ROI.
        padding: first-pass square side as a multiple of the box's longer side.

    Raises:
        ModelSignatureError: the model lacks ``input_1`` [B,256,256,3] or ``Identity``/``Identity_1``.
    """

    padding = 1.25
    alignment_scale = 1.25  # MediaPipe RectTransformationCalculator scale_x/scale_y for pose ROIs
    retrack_below = 0.5  # pose flag under which a tracked ROI has lost the person (MediaPipe's 0.5)

    @staticmethod
    def matches(backend: InferenceBackend) -> bool:
        """Whether a model of unknown family has BlazePose's signature (``input_1`` → ``Identity``)."""
        ins, outs = {s.name for s in backend.inputs}, {s.name for s in backend.outputs}
        return "input_1" in ins and "Identity" in outs

    @staticmethod
    def prepare_model(backend: InferenceBackend, path: Path) -> bytes | None:
        """The graph rewritten for batched crops (:func:`batched_blazepose_graph`) when the file
        has batch 1 baked in, so that all crops of a frame go in one call; else None."""
        return batched_blazepose_graph(path) if backend.inputs[0].shape[0] == 1 else None

    def __init__(self, backend: InferenceBackend, refine: bool = True, padding: float = 1.25):
        require_signature(backend, {"input_1": (None, 256, 256, 3)}, ["Identity", "Identity_1"])
        self.backend = backend
        self.refine, self.padding = refine, padding
        self.fixed_batch = backend.inputs[0].shape[0]
        self.input_size = (256, 256)

    def _run(self, image: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Crop the (N, 4) ROIs (cx, cy, side, rotation), run, map back: (N, 39, 2) image-pixel
        points and (N, 34) scores (33 keypoints + pose flag)."""
        matrices = [crop_warp_matrix(r[:2], (r[2], r[2]), r[3], self.input_size) for r in rois]
        tensor = warp_crops(image, matrices, self.input_size).astype(np.float32)  # NHWC RGB
        tensor *= np.float32(1.0 / 255.0)
        if self.fixed_batch is not None and self.fixed_batch != len(tensor):
            parts = [self.backend.run({"input_1": t[None]}, ["Identity", "Identity_1"]) for t in tensor]
            landmarks, flags = (np.concatenate(p) for p in zip(*parts))
        else:
            landmarks, flags = self.backend.run({"input_1": tensor}, ["Identity", "Identity_1"])
        landmarks = landmarks.reshape(len(tensor), 39, 5)
        points = np.stack([apply_affine(l[:, :2], cv2.invertAffineTransform(m)) for l, m in zip(landmarks, matrices)])
        scores = _sigmoid(landmarks[:, :33, 3]) * _sigmoid(landmarks[:, :33, 4])
        return points, np.concatenate([scores, flags.reshape(-1, 1).astype(np.float32)], axis=1)

    def aligned_rois(self, points: np.ndarray) -> np.ndarray:
        """Body-aligned ROIs (MediaPipe's tracking crop) of (N, 39, 2) landmarks from :meth:`_run`.

        Returns:
            (N, 4) float32: centre x, y (pixels, the hip centre), side (pixels, ≥ 1) and
            rotation (radians, clockwise on screen).
        """
        hips, scale_points = points[:, 33], points[:, 34]
        sides = np.maximum(2 * np.linalg.norm(scale_points - hips, axis=1) * self.alignment_scale, 1.0)
        rotations = [rotation_from_points(h, s) for h, s in zip(hips, scale_points)]
        return np.column_stack([hips, sides, rotations]).astype(np.float32).reshape(-1, 4)

    def __call__(self, image: np.ndarray, bboxes: np.ndarray, rois: np.ndarray | None = None) -> PoseEstimates:
        """Estimate keypoints for each person of a BGR uint8 image.

        Args:
            image: (H, W, 3) uint8 BGR.
            bboxes: (N, 4) x1, y1, x2, y2 pixel boxes.
            rois: (N, 4) float32 aligned ROIs (cx, cy, side px, rotation rad) from each person's
                previous frame (:attr:`PoseEstimates.rois`), NaN rows for people seen afresh;
                None: every person afresh.

        Returns:
            :class:`PoseEstimates` with the next frame's ``rois``.
        """
        bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4)
        if len(bboxes) == 0:
            return empty_estimates(17)
        upright = np.empty((len(bboxes), 4), np.float32)
        upright[:, :2] = (bboxes[:, :2] + bboxes[:, 2:]) / 2
        upright[:, 2] = (bboxes[:, 2:] - bboxes[:, :2]).max(axis=1) * self.padding
        upright[:, 3] = 0.0
        crops = upright.copy()
        fresh = np.ones(len(bboxes), bool)
        if rois is not None:
            rois = np.asarray(rois, np.float32).reshape(-1, 4)
            fresh = ~np.isfinite(rois).all(axis=1)
            crops[~fresh] = rois[~fresh]
        points, scores = self._run(image, crops)
        lost = ~fresh & (scores[:, 33] < self.retrack_below)
        if lost.any():  # the previous frame's ROI lost the person: crop afresh from the box
            again = np.flatnonzero(lost)
            points[again], scores[again] = self._run(image, upright[again])
            fresh |= lost
        if self.refine and fresh.any():
            again = np.flatnonzero(fresh)
            points[again], scores[again] = self._run(image, self.aligned_rois(points[again]))
        coco, extra = list(BLAZEPOSE33_TO_COCO17), list(BLAZEPOSE33_TO_FOOT_EXTRA)
        hands = np.asarray(BLAZEPOSE33_HAND_POINTS)
        return PoseEstimates(points[:, coco], scores[:, coco], scores[:, 33],
                             points[:, extra], scores[:, extra], rois=self.aligned_rois(points),
                             hand_points=points[:, hands], hand_point_scores=scores[:, hands])
