"""MediaPipe hand landmark model (full), top-down on hand crops built from the body pose.

Crops follow MediaPipe Holistic's idea (DESIGN.md §2): a hand seen for the first time is cropped
from its body pose's wrist, index and pinky points (BlazePose) or, for COCO-17 models, along the
elbow → wrist direction; that first pass's landmarks give an aligned crop for a second pass
(``refine``), and a tracked hand is cropped from its previous frame's landmarks alone, as the
body is. All hand crops of a frame go to the model in one call.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posestream.engines.backend import InferenceBackend, require_signature
from posestream.engines.transforms import apply_affine, crop_warp_matrix, rotation_from_points, warp_crops


def dynamic_batch_hand_graph(path: str | Path) -> bytes:
    """The tf2onnx hand landmark graph with a dynamic batch dimension.

    The converted graph has batch 1 only in its input and output shapes: it holds no Reshape
    (its one Squeeze names axes 2 and 3, its heads are Gemm), so marking dimension 0 of the
    input and of every output as ``batch`` is enough (``tests/test_hands.py`` checks that a
    batch of 3 equals three batch-1 runs).

    Returns:
        The serialized ONNX model.

    Raises:
        ValueError: the graph holds a Reshape, which might bake the batch in (a different export).
    """
    import onnx

    model = onnx.load(str(path))
    if any(node.op_type == "Reshape" for node in model.graph.node):
        raise ValueError(f"{path}: the hand graph has Reshape nodes; its batch cannot be freed safely")
    for value in [model.graph.input[0], *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    buffer = io.BytesIO()
    onnx.save(model, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class HandCrops:
    """One model pass over M hand crops.

    Attributes:
        keypoints: (M, 21, 2) float32 image pixels (:data:`posestream.engines.layouts.HAND21_NAMES`).
        presence: (M,) float32 in [0, 1], the model's hand-presence score (``Identity_1``, a sigmoid).
        right: (M,) float32 in [0, 1], the probability that the crop holds a *right* hand, in
            the sense of the body model (which calls the arm on the image's left the right one of
            a person facing the camera): MediaPipe's ``Identity_2`` as it is. (MediaPipe describes
            its handedness for mirrored, selfie images; measured on the shared squats clip, 103
            hands seen well, the raw score averages 0.13 on the hands the body pose calls left
            and 0.88 on those it calls right; ``tests/test_hands.py`` checks it.)
        rois: (M, 4) float32 crops used (cx, cy, side px, rotation rad).
    """

    keypoints: np.ndarray
    presence: np.ndarray
    right: np.ndarray
    rois: np.ndarray


class HandLandmark:
    """MediaPipe hand landmark model (full): ``input_1`` [B,224,224,3] RGB in [0, 1] →
    ``Identity`` [B,63] 21 × (x, y, z) crop pixels, ``Identity_1`` [B,1] presence,
    ``Identity_2`` [B,1] handedness (both sigmoid outputs of the graph).

    A file with batch 1 baked in is rewritten on load (:func:`dynamic_batch_hand_graph`); a
    LiteRT ``.tflite`` keeps batch 1 and is run once per crop.

    Args:
        backend: the opened model.
        refine: for hands cropped from the body (no previous landmarks), a second pass on the
            crop aligned with the first pass's landmarks.

    Raises:
        ModelSignatureError: the model lacks ``input_1`` [B,224,224,3] or ``Identity``/``Identity_1``/``Identity_2``.
    """

    input_size = (224, 224)
    #: A landmark crop (MediaPipe's hand tracking ROI): the landmarks' box, in the hand's own
    #: rotation, × 2.0 and shifted 0.1 of its side towards the fingers.
    landmark_scale, landmark_shift = 2.0, -0.1

    @staticmethod
    def matches(backend: InferenceBackend) -> bool:
        """Whether a model of unknown family has the hand model's signature."""
        ins, outs = {s.name for s in backend.inputs}, {s.name for s in backend.outputs}
        return "input_1" in ins and {"Identity", "Identity_1", "Identity_2"} <= outs and \
            tuple(backend.inputs[0].shape[1:]) == (224, 224, 3)

    @staticmethod
    def prepare_model(backend: InferenceBackend, path: Path) -> bytes | None:
        """:func:`dynamic_batch_hand_graph` of a batch-1 file, else None."""
        return dynamic_batch_hand_graph(path) if backend.inputs[0].shape[0] == 1 else None

    def __init__(self, backend: InferenceBackend, refine: bool = True):
        require_signature(backend, {"input_1": (None, 224, 224, 3)}, ["Identity", "Identity_1", "Identity_2"])
        self.backend, self.refine = backend, refine
        self.fixed_batch = backend.inputs[0].shape[0]

    def run(self, image: np.ndarray, rois: np.ndarray) -> HandCrops:
        """One pass over the (M, 4) crops (cx, cy, side px, rotation rad) of a BGR uint8 image."""
        rois = np.asarray(rois, np.float32).reshape(-1, 4)
        if not len(rois):
            return HandCrops(np.zeros((0, 21, 2), np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32), rois)
        matrices = [crop_warp_matrix(r[:2], (r[2], r[2]), float(r[3]), self.input_size) for r in rois]
        tensor = warp_crops(image, matrices, self.input_size).astype(np.float32)
        tensor *= np.float32(1.0 / 255.0)
        names = ["Identity", "Identity_1", "Identity_2"]
        if self.fixed_batch is not None and self.fixed_batch != len(tensor):
            parts = [self.backend.run({"input_1": t[None]}, names) for t in tensor]
            landmarks, presence, handedness = (np.concatenate(p) for p in zip(*parts))
        else:
            landmarks, presence, handedness = self.backend.run({"input_1": tensor}, names)
        landmarks = landmarks.reshape(len(rois), 21, 3)[:, :, :2]
        points = np.stack([apply_affine(l, cv2.invertAffineTransform(m)) for l, m in zip(landmarks, matrices)])
        return HandCrops(points, presence.reshape(-1).astype(np.float32),
                         handedness.reshape(-1).astype(np.float32), rois)

    def __call__(self, image: np.ndarray, rois: np.ndarray, tracked: np.ndarray | None = None) -> HandCrops:
        """Landmarks of M hands of a BGR uint8 image.

        Args:
            image: (H, W, 3) uint8 BGR.
            rois: (M, 4) float32 crops (cx, cy, side px, rotation rad): from the body
                (:func:`hand_rois_from_body`, :func:`hand_rois_from_forearm`) or from the hand's
                previous landmarks (:func:`hand_rois_from_landmarks`).
            tracked: (M,) bool, the crops that come from previous landmarks (no second pass);
                None: none.

        Returns:
            :class:`HandCrops`; its ``rois`` are those of the pass that gave the landmarks.
        """
        first = self.run(image, rois)
        if not self.refine or not len(first.rois):
            return first
        again = np.ones(len(first.rois), bool) if tracked is None else ~np.asarray(tracked, bool)
        if not again.any():
            return first
        second = self.run(image, hand_rois_from_landmarks(first.keypoints[again]))
        keypoints, presence, right, used = (a.copy() for a in (first.keypoints, first.presence, first.right, first.rois))
        keypoints[again], presence[again], right[again], used[again] = (
            second.keypoints, second.presence, second.right, second.rois)
        return HandCrops(keypoints, presence, right, used)


def _square_rois(centres: np.ndarray, sides: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    return np.column_stack([centres, np.maximum(sides, 1.0), rotations]).astype(np.float32).reshape(-1, 4)


def hand_rois_from_body(wrist: np.ndarray, index: np.ndarray, pinky: np.ndarray, scale: float = 2.2) -> np.ndarray:
    """Crops of hands from BlazePose's wrist, index and pinky points (MediaPipe Holistic's
    first hand ROI, without its recrop model).

    The middle knuckle is estimated as (2 × index + pinky) / 3 (as Holistic does); the crop is
    centred on it, rotated so that wrist → knuckle points up, and its side is ``scale`` × twice
    the wrist–knuckle distance (a whole hand is about twice that distance long).

    Args:
        wrist, index, pinky: (M, 2) float pixels.
        scale: side of the crop over the hand's estimated length.

    Returns:
        (M, 4) float32 crops: centre x, y (px), side (px, ≥ 1), rotation (rad, clockwise on screen).
    """
    wrist, index, pinky = (np.asarray(a, np.float64).reshape(-1, 2) for a in (wrist, index, pinky))
    middle = (2 * index + pinky) / 3
    length = 2 * np.linalg.norm(middle - wrist, axis=1)
    rotations = np.array([rotation_from_points(w, m) for w, m in zip(wrist, middle)])
    return _square_rois(middle, scale * length, rotations)


def hand_rois_from_forearm(elbow: np.ndarray, wrist: np.ndarray, scale: float = 1.6) -> np.ndarray:
    """Crops of hands from a COCO-17 pose, which has no finger points: the hand is taken to
    continue the forearm, ``0.7`` × as long as it (adult proportions), the crop centred half a
    hand beyond the wrist along elbow → wrist, ``scale`` × the hand's length on a side, rotated
    so that the forearm points up.

    Args:
        elbow, wrist: (M, 2) float pixels.

    Returns:
        (M, 4) float32 crops as :func:`hand_rois_from_body`.
    """
    elbow, wrist = (np.asarray(a, np.float64).reshape(-1, 2) for a in (elbow, wrist))
    forearm = wrist - elbow
    hand = 0.7 * np.linalg.norm(forearm, axis=1)
    unit = forearm / np.maximum(np.linalg.norm(forearm, axis=1, keepdims=True), 1e-6)
    centres = wrist + unit * (hand / 2)[:, None]
    rotations = np.array([rotation_from_points(e, w) for e, w in zip(elbow, wrist)])
    return _square_rois(centres, scale * hand, rotations)


def hand_rois_from_landmarks(keypoints: np.ndarray, scale: float = HandLandmark.landmark_scale,
                             shift: float = HandLandmark.landmark_shift) -> np.ndarray:
    """Crops aligned with hand landmarks (MediaPipe's hand tracking ROI): rotated so that the
    wrist → middle-knuckle direction points up (the knuckle taken as the mean of the middle MCP
    and of the index and ring MCPs' midpoint), the landmarks' box in that rotation, squared on
    its longer side, × ``scale``, its centre moved ``shift`` × side along the hand's down axis
    (negative: towards the fingers).

    Args:
        keypoints: (M, 21, 2) float pixels (:data:`posestream.engines.layouts.HAND21_NAMES`).

    Returns:
        (M, 4) float32 crops as :func:`hand_rois_from_body`.
    """
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 21, 2)
    out = np.zeros((len(keypoints), 4), np.float32)
    for i, points in enumerate(keypoints):
        knuckle = ((points[5] + points[13]) / 2 + points[9]) / 2
        rotation = rotation_from_points(points[0], knuckle)
        cos, sin = np.cos(rotation), np.sin(rotation)
        to_hand = np.array([[cos, sin], [-sin, cos]])  # image → hand axes (as crop_warp_matrix)
        local = points @ to_hand.T
        low, high = local.min(axis=0), local.max(axis=0)
        side = float((high - low).max()) * scale
        centre_local = (low + high) / 2 + np.array([0.0, shift * side])
        out[i] = (*(to_hand.T @ centre_local), max(side, 1.0), rotation)
    return out
