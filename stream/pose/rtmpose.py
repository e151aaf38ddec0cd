"""RTMPose (SimCC) top-down keypoint models exported by MMDeploy: COCO-17 body models, and the
133-keypoint COCO-WholeBody ones (RTMW, DWPose) through the same decoder."""

from __future__ import annotations

import cv2
import numpy as np

from posestream.engines.backend import InferenceBackend, require_signature
from posestream.engines.errors import ModelSignatureError
from posestream.engines.transforms import apply_affine, bbox_to_center_scale, crop_warp_matrix, warp_crops

from .estimates import PoseEstimates, empty_estimates


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
    """RTMPose body model exported by MMDeploy (``input`` [B,3,256,192] → ``simcc_x``, ``simcc_y``),
    or a whole-body model of the same signature with 133 keypoints (RTMW, DWPose: ``input``
    [B,3,384,288] or [B,3,256,192] → ``simcc_x`` [B,133,2W], ``simcc_y`` [B,133,2H]), recognised by
    the number of keypoints its outputs carry.

    Each box is padded by 1.25, grown to the input's 3:4 aspect ratio, warped affinely onto the
    input (mmpose ``TopdownAffine``), converted to RGB and normalised with ImageNet mean/std
    ×255; SimCC outputs are decoded with split ratio 2.0 and mapped back with the inverse warp.
    A 133-keypoint model's COCO-WholeBody points (body 0–16 = COCO-17, feet, face, left and right
    hand) are returned whole in :attr:`PoseEstimates.wholebody_keypoints`, its first 17 as the
    COCO-17 ``keypoints``.

    Raises:
        ModelSignatureError: the model lacks ``input`` [B,3,H,W] or ``simcc_x``/``simcc_y``.
    """

    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    padding = 1.25
    split_ratio = 2.0

    @staticmethod
    def matches(backend: InferenceBackend) -> bool:
        """Whether a model of unknown family has SimCC outputs (``simcc_x``, ``simcc_y``)."""
        outs = {s.name for s in backend.outputs}
        return {"simcc_x", "simcc_y"} <= outs

    def __init__(self, backend: InferenceBackend):
        require_signature(backend, {"input": (None, 3, None, None)}, ["simcc_x", "simcc_y"])
        self.backend = backend
        shape = backend.inputs[0].shape
        self.input_size = (shape[3] or 192, shape[2] or 256)  # (width, height)
        self.fixed_batch = shape[0]
        dims = next(o.shape for o in backend.outputs if o.name == "simcc_x")
        self.num_keypoints = dims[1] if len(dims) == 3 else None  # None: known once it runs

    def preprocess(self, image: np.ndarray, bboxes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Crops of every box: (N, 3, h, w) float32 tensor and the N (2, 3) warp matrices."""
        centers, scales = bbox_to_center_scale(bboxes, self.padding, self.input_size[0] / self.input_size[1])
        matrices = [crop_warp_matrix(c, s, 0.0, self.input_size) for c, s in zip(centers, scales)]
        tensor = warp_crops(image, matrices, self.input_size).astype(np.float32)  # RGB
        tensor -= self.mean
        tensor /= self.std
        return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2)), matrices

    def __call__(self, image: np.ndarray, bboxes: np.ndarray, rois: np.ndarray | None = None) -> PoseEstimates:
        """Estimate COCO-17 keypoints for each (N, 4) x1y1x2y2 pixel box of a BGR uint8 image
        (``rois`` is accepted for a common signature and ignored: RTMPose crops from the box).

        Raises:
            ModelSignatureError: the model gives neither 17 nor 133 keypoints.
        """
        bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4)
        if len(bboxes) == 0:
            return empty_estimates(17)
        tensor, matrices = self.preprocess(image, bboxes)
        if self.fixed_batch is not None and self.fixed_batch != len(bboxes):  # static-batch export
            parts = [self.backend.run({"input": t[None]}, ["simcc_x", "simcc_y"]) for t in tensor]
            simcc_x, simcc_y = (np.concatenate(p) for p in zip(*parts))
        else:
            simcc_x, simcc_y = self.backend.run({"input": tensor}, ["simcc_x", "simcc_y"])
        keypoints, scores = simcc_decode(simcc_x, simcc_y, self.split_ratio)
        keypoints = np.stack([apply_affine(k, cv2.invertAffineTransform(m)) for k, m in zip(keypoints, matrices)])
        if keypoints.shape[1] == 133:  # COCO-WholeBody (RTMW, DWPose): body first
            return PoseEstimates(keypoints[:, :17], scores[:, :17], np.ones(len(scores), np.float32),
                                 wholebody_keypoints=keypoints, wholebody_scores=scores)
        if keypoints.shape[1] != 17:
            raise ModelSignatureError(f"{self.backend.name}: {keypoints.shape[1]} keypoints; expected 17 (COCO) "
                                      "or 133 (COCO-WholeBody)")
        return PoseEstimates(keypoints, scores, np.ones(len(scores), np.float32))
