"""Top-down keypoint estimators: RTMPose (SimCC) and BlazePose GHUM landmark (full).

Both are callables in the rtmlib style, ``poses = estimator(image, bboxes)``, that crop every
box of a frame, run all crops in one batched call and map keypoints back to image pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .backend import InferenceBackend, require_signature
from .layouts import BLAZEPOSE33_TO_COCO17, BLAZEPOSE33_TO_FOOT_EXTRA
from .transforms import apply_affine, bbox_to_center_scale, crop_warp_matrix, rotation_from_points


@dataclass(frozen=True)
class PoseEstimates:
    """Keypoints of N people in one image.

    Attributes:
        keypoints: (N, 17, 2) float32, COCO-17 order, image pixels.
        keypoint_scores: (N, 17) float32 in [0, 1].
        extra_keypoints: (N, E, 2) float32 image pixels of extra keypoints (BlazePose: heels and
            foot tips, :data:`engines.layouts.FOOT_EXTRA_NAMES`), or None.
        extra_keypoint_scores: (N, E) float32 in [0, 1], or None.
        pose_scores: (N,) float32 in [0, 1], the model's "a person is in this crop" score
            (BlazePose ``Identity_1``; RTMPose has no such output and reports 1).
    """

    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    pose_scores: np.ndarray
    extra_keypoints: np.ndarray | None = None
    extra_keypoint_scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keypoints)


def simcc_decode(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Decode SimCC classification vectors (mmpose ``get_simcc_maximum``).

    Args:
        simcc_x: (N, K, Wx) float; simcc_y: (N, K, Wy) float.
        split_ratio: bins per input pixel (2.0 for RTMPose).

    Returns:
        ``(keypoints, scores)``: (N, K, 2) float32 in network-input pixels (argmax / split_ratio)
        and (N, K) float32, the smaller of the two peak values (as mmpose, which takes the
        minimum, not the maximum), clipped to [0, 1]. Keypoints whose score is ≤ 0 are -1.
    """
    x = np.argmax(simcc_x, axis=2)
    y = np.argmax(simcc_y, axis=2)
    keypoints = np.stack([x, y], axis=-1).astype(np.float32) / split_ratio
    scores = np.minimum(simcc_x.max(axis=2), simcc_y.max(axis=2)).astype(np.float32)
    keypoints[scores <= 0] = -1
    return keypoints, scores.clip(0, 1)


class RTMPose:
    """RTMPose body model exported by MMDeploy (``input`` [B,3,256,192] → ``simcc_x``, ``simcc_y``).

    Each box is padded by 1.25, grown to the input's 3:4 aspect ratio, warped affinely onto the
    input (mmpose ``TopdownAffine``), converted to RGB and normalised with ImageNet mean/std
    ×255; SimCC outputs are decoded with split ratio 2.0 and mapped back with the inverse warp.

    Raises:
        ModelSignatureError: the model lacks ``input`` [B,3,H,W] or ``simcc_x``/``simcc_y``.
    """

    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    padding = 1.25
    split_ratio = 2.0

    def __init__(self, backend: InferenceBackend):
        require_signature(backend, {"input": (None, 3, None, None)}, ["simcc_x", "simcc_y"])
        self.backend = backend
        shape = backend.inputs[0].shape
        self.input_size = (shape[3] or 192, shape[2] or 256)  # (width, height)
        self.fixed_batch = shape[0]

    def preprocess(self, image: np.ndarray, bboxes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Crops of every box: (N, 3, h, w) float32 tensor and the N (2, 3) warp matrices."""
        centers, scales = bbox_to_center_scale(bboxes, self.padding, self.input_size[0] / self.input_size[1])
        matrices = [crop_warp_matrix(c, s, 0.0, self.input_size) for c, s in zip(centers, scales)]
        crops = np.stack([cv2.warpAffine(image, m, self.input_size, flags=cv2.INTER_LINEAR) for m in matrices])
        tensor = crops[..., ::-1].astype(np.float32)  # BGR -> RGB and float in one copy
        tensor -= self.mean
        tensor /= self.std
        return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2)), matrices

    def __call__(self, image: np.ndarray, bboxes: np.ndarray) -> PoseEstimates:
        """Estimate COCO-17 keypoints for each (N, 4) x1y1x2y2 pixel box of a BGR uint8 image."""
        bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4)
        if len(bboxes) == 0:
            return _empty(17)
        tensor, matrices = self.preprocess(image, bboxes)
        if self.fixed_batch is not None and self.fixed_batch != len(bboxes):  # static-batch export
            parts = [self.backend.run({"input": t[None]}, ["simcc_x", "simcc_y"]) for t in tensor]
            simcc_x, simcc_y = (np.concatenate(p) for p in zip(*parts))
        else:
            simcc_x, simcc_y = self.backend.run({"input": tensor}, ["simcc_x", "simcc_y"])
        keypoints, scores = simcc_decode(simcc_x, simcc_y, self.split_ratio)
        keypoints = np.stack([apply_affine(k, cv2.invertAffineTransform(m)) for k, m in zip(keypoints, matrices)])
        return PoseEstimates(keypoints, scores, np.ones(len(scores), np.float32))


def _empty(k: int) -> PoseEstimates:
    return PoseEstimates(np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32), np.zeros((0,), np.float32))


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

    Crops (MediaPipe ``pose_landmark`` ROI logic): the first pass crops a square of
    ``padding`` × the box's longer side around the box centre, upright. With ``refine=True`` a
    second pass re-crops as MediaPipe's tracking does: centred on the predicted hip centre,
    side 2 × |alignment vector| × 1.25, rotated so the body axis is vertical, and its
    landmarks are returned.

    Keypoint scores are sigmoid(visibility) × sigmoid(presence).

    Args:
        backend: a backend for :func:`batched_blazepose_graph`'s output or the raw file.
        refine: run the aligned second pass.
        padding: first-pass square side as a multiple of the box's longer side.

    Raises:
        ModelSignatureError: the model lacks ``input_1`` [B,256,256,3] or ``Identity``/``Identity_1``.
    """

    padding = 1.25
    alignment_scale = 1.25  # MediaPipe RectTransformationCalculator scale_x/scale_y for pose ROIs

    def __init__(self, backend: InferenceBackend, refine: bool = True, padding: float = 1.25):
        require_signature(backend, {"input_1": (None, 256, 256, 3)}, ["Identity", "Identity_1"])
        self.backend = backend
        self.refine, self.padding = refine, padding
        self.fixed_batch = backend.inputs[0].shape[0]
        self.input_size = (256, 256)

    def _run(self, image: np.ndarray, centers: np.ndarray, sides: np.ndarray,
             rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Crop, run and map back: (N, 39, 2) image-pixel points and (N, 34) scores (33 keypoints + pose flag)."""
        matrices = [crop_warp_matrix(c, (s, s), r, self.input_size) for c, s, r in zip(centers, sides, rotations)]
        crops = np.stack([cv2.warpAffine(image, m, self.input_size, flags=cv2.INTER_LINEAR) for m in matrices])
        tensor = np.ascontiguousarray(crops[..., ::-1], dtype=np.float32)  # BGR -> RGB, NHWC
        tensor *= 1.0 / 255.0
        if self.fixed_batch is not None and self.fixed_batch != len(tensor):
            parts = [self.backend.run({"input_1": t[None]}, ["Identity", "Identity_1"]) for t in tensor]
            landmarks, flags = (np.concatenate(p) for p in zip(*parts))
        else:
            landmarks, flags = self.backend.run({"input_1": tensor}, ["Identity", "Identity_1"])
        landmarks = landmarks.reshape(len(tensor), 39, 5)
        points = np.stack([apply_affine(l[:, :2], cv2.invertAffineTransform(m)) for l, m in zip(landmarks, matrices)])
        scores = _sigmoid(landmarks[:, :33, 3]) * _sigmoid(landmarks[:, :33, 4])
        return points, np.concatenate([scores, flags.reshape(-1, 1).astype(np.float32)], axis=1)

    def __call__(self, image: np.ndarray, bboxes: np.ndarray) -> PoseEstimates:
        """Estimate keypoints for each (N, 4) x1y1x2y2 pixel box of a BGR uint8 image."""
        bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4)
        if len(bboxes) == 0:
            return _empty(17)
        centers = (bboxes[:, :2] + bboxes[:, 2:]) / 2
        sides = (bboxes[:, 2:] - bboxes[:, :2]).max(axis=1) * self.padding
        points, scores = self._run(image, centers, sides, np.zeros(len(bboxes)))
        if self.refine:
            hips, scale_points = points[:, 33], points[:, 34]
            sides = 2 * np.linalg.norm(scale_points - hips, axis=1) * self.alignment_scale
            rotations = np.array([rotation_from_points(h, s) for h, s in zip(hips, scale_points)])
            points, scores = self._run(image, hips, np.maximum(sides, 1.0), rotations)
        coco, extra = list(BLAZEPOSE33_TO_COCO17), list(BLAZEPOSE33_TO_FOOT_EXTRA)
        return PoseEstimates(points[:, coco], scores[:, coco], scores[:, 33],
                             points[:, extra], scores[:, extra])
