"""Pose fidelity: does the person in a generated video follow the skeleton that drove it?

posestream's own pose pipeline (:class:`posestream.stream.pipeline.PosePipeline`) runs on every
generated frame; the detected person that best matches the driving pose (highest OKS) is compared
with it. Generated frame ``i`` was driven by skeleton frame ``stride · i``
(:func:`posestream.offline.align.stride_frames`; stride 5 in Follow-Your-Pose's sampling code),
whose keypoints are mapped into the generated frame by the resize-and-centre-crop that made the
skeleton video (:class:`posestream.offline.align.ResizeCrop`, or the ``<name>_skeleton.json``
written beside the skeleton). The same numbers for the original input video against its own
skeleton are the upper bound a generator could reach with this pose model.

Per frame (the reference = the driving pose; its joints count where their score ≥ 0.3 and they
fall inside the generated frame):

* PCK@0.1: fraction of the reference's joints whose detected position lies within 0.1 × the
  torso size (distance between the shoulder centre, joints 5–6, and the hip centre, 11–12, of
  the reference). Frames whose reference lacks a shoulder or a hip are not scored for PCK.
* OKS: COCO object keypoint similarity (:func:`posestream.stream.track.matching.oks`, COCO
  sigmas of :mod:`posestream.engines.layouts`) with area = the reference person's box area in
  generated pixels (COCO uses the segment area, roughly half the box's: our OKS reads higher).
* A frame where no person is detected scores PCK 0 and OKS 0; ``person_found`` is the fraction
  of frames where at least one person is detected.
* Joint error: per COCO-17 joint, the mean distance in generated-frame pixels between the
  detected and the reference joint, over frames where a person is found and the joint is
  counted (None for a joint never counted).

Jitter (:func:`keypoint_jitter`): mean over joints and frames of ‖p(t+1) − 2 p(t) + p(t−1)‖ —
the second difference (acceleration) of each keypoint, in pixels per frame², over triples of
consecutive frames where the joint is detected with score ≥ 0.3; steady motion scores 0, shaking
scores high.

The driving person of a skeleton frame is its instance with the highest ``bbox_score``: the
metric is for single-person clips.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from posestream.engines.layouts import COCO17_SIGMAS
from posestream.offline.align import ResizeCrop, stride_frames
from posestream.stream.capture.files import Frame
from posestream.stream.track.matching import oks

#: Minimum keypoint score of a counted joint (reference and detections).
SCORE_THRESHOLD = 0.3
#: PCK threshold as a fraction of the torso size.
PCK_ALPHA = 0.1
_SHOULDERS, _HIPS = (5, 6), (11, 12)


@dataclass(frozen=True)
class CoverCrop:
    """Resize so that the frame covers ``out_width`` × ``out_height`` (scale = the larger of the
    two ratios), then crop the centre: :class:`~posestream.offline.align.ResizeCrop` for
    non-square targets (for square ones use ResizeCrop itself, :func:`frame_mapping`).

    Raises:
        ValueError: a size that is not positive.
    """

    width: int
    height: int
    out_width: int
    out_height: int

    def __post_init__(self):
        if min(self.width, self.height, self.out_width, self.out_height) <= 0:
            raise ValueError(f"CoverCrop needs positive sizes, got {self.width}x{self.height} → "
                             f"{self.out_width}x{self.out_height}")

    @property
    def scale(self) -> float:
        """Output pixels per source pixel."""
        return max(self.out_width / self.width, self.out_height / self.height)

    @property
    def offset(self) -> np.ndarray:
        """(2,) float64: pixels cut from the left and top of the resized frame."""
        return np.array([(self.width * self.scale - self.out_width) / 2, (self.height * self.scale - self.out_height) / 2])

    def forward(self, points: np.ndarray) -> np.ndarray:
        """Source pixels → output pixels, (..., 2) float32."""
        return (np.asarray(points, np.float64) * self.scale - self.offset).astype(np.float32)

    def image(self, image: np.ndarray) -> np.ndarray:
        """(height, width, C) uint8 → (out_height, out_width, C) uint8 (area when shrinking, bicubic
        when enlarging, as ResizeCrop)."""
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"expected a {self.width}x{self.height} frame, got {image.shape[1]}x{image.shape[0]}")
        new_w = max(self.out_width, round(self.width * self.scale))
        new_h = max(self.out_height, round(self.height * self.scale))
        interpolation = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_CUBIC
        resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
        x0, y0 = (new_w - self.out_width) // 2, (new_h - self.out_height) // 2
        return np.ascontiguousarray(resized[y0:y0 + self.out_height, x0:x0 + self.out_width])


def frame_mapping(width: int, height: int, out_width: int, out_height: int) -> ResizeCrop | CoverCrop:
    """The resize-and-centre-crop from a ``width`` × ``height`` frame to the output size:
    :class:`ResizeCrop` for a square output (Follow-Your-Pose's), :class:`CoverCrop` otherwise.
    Both have ``forward(points)``, ``image(image)`` and ``scale``."""
    if out_width == out_height:
        return ResizeCrop(width, height, out_width)
    return CoverCrop(width, height, out_width, out_height)


@dataclass
class Skeleton:
    """The driving person of each frame of a skeleton JSON-lines file.

    Attributes:
        width, height: the skeleton's source frame size, pixels.
        keypoints: (T, 17, 2) float32 pixels, NaN in frames without a person (T = last frame id).
        scores: (T, 17) float32 keypoint scores, 0 in frames without a person.
        bboxes: (T, 4) float32 x1, y1, x2, y2 pixels, NaN in frames without a person.
    """

    width: int
    height: int
    keypoints: np.ndarray
    scores: np.ndarray
    bboxes: np.ndarray

    def __len__(self) -> int:
        return len(self.keypoints)


def load_skeleton(path: str | Path) -> Skeleton:
    """Read the ``.jsonl`` that ``posestream run`` (or ``posestream skeleton``) wrote.

    Frame ``frame_id`` (1-based) becomes row ``frame_id − 1``; per frame the instance with the
    highest ``bbox_score`` is the driving person.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not such a file (bad JSON, missing fields, no frames, frames of several sizes).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such skeleton file: {path}")
    people: dict[int, tuple] = {}
    size = None
    try:
        with open(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                record = json.loads(line)
                frame_size = (int(record["width"]), int(record["height"]))
                if size is not None and frame_size != size:
                    raise ValueError(f"line {number}: frame size {frame_size} differs from {size}")
                size = frame_size
                instances = record["instances"]
                if instances:
                    best = max(instances, key=lambda inst: float(inst.get("bbox_score") or 0.0))
                    bbox = np.asarray(best["bbox"], np.float32).reshape(-1)[:4]
                    people[int(record["frame_id"])] = (np.asarray(best["keypoints"], np.float32).reshape(17, 2),
                                                       np.asarray(best["keypoint_scores"], np.float32).reshape(17), bbox)
                else:
                    people.setdefault(int(record["frame_id"]), None)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a posestream JSON-lines file ({type(exc).__name__}: {exc})") from exc
    if size is None:
        raise ValueError(f"{path} holds no frames")
    count = max(people)
    keypoints = np.full((count, 17, 2), np.nan, np.float32)
    scores = np.zeros((count, 17), np.float32)
    bboxes = np.full((count, 4), np.nan, np.float32)
    for frame_id, person in people.items():
        if person is not None and frame_id >= 1:
            keypoints[frame_id - 1], scores[frame_id - 1], bboxes[frame_id - 1] = person
    return Skeleton(size[0], size[1], keypoints, scores, bboxes)


def skeleton_mapping(skeleton_path: str | Path, skeleton: Skeleton, out_width: int, out_height: int):
    """How skeleton pixels map into generated pixels: the ``<name>_skeleton.json`` ResizeCrop
    beside the skeleton file when present (it must start from the skeleton's frame size and end at
    the generated size), else :func:`frame_mapping` of the two sizes.

    Raises:
        ValueError: a sidecar transform that does not fit the skeleton or the generated frames.
    """
    sidecar = Path(skeleton_path).with_name(Path(skeleton_path).stem + "_skeleton.json")
    if sidecar.is_file():
        transform = ResizeCrop.load(sidecar)
        if (transform.width, transform.height) != (skeleton.width, skeleton.height) or \
                (transform.size, transform.size) != (out_width, out_height):
            raise ValueError(f"{sidecar} maps {transform.width}x{transform.height} → {transform.size}x{transform.size}, "
                             f"but the skeleton is {skeleton.width}x{skeleton.height} and the generated frames "
                             f"{out_width}x{out_height}")
        return transform
    return frame_mapping(skeleton.width, skeleton.height, out_width, out_height)


@dataclass
class Reference:
    """Driving poses of a clip, in generated-frame pixels.

    Attributes:
        keypoints: (F, 17, 2) float32 pixels (NaN where none).
        visible: (F, 17) bool: score ≥ 0.3 and inside the frame.
        areas: (F,) float64 pixels²: the person's box area (clipped to the frame); 0 where none.
    """

    keypoints: np.ndarray
    visible: np.ndarray
    areas: np.ndarray


def driving_reference(skeleton: Skeleton, mapping, count: int, stride: int, out_width: int, out_height: int,
                      start: int = 0) -> Reference:
    """The reference poses of ``count`` generated frames driven at ``stride``: skeleton frames
    ``start + stride · i`` mapped by ``mapping`` (``forward`` and ``scale``).

    Raises:
        ValueError: the skeleton is too short for ``count`` frames at this stride (Follow-Your-Pose
            needs ``stride · (count − 1) + 1`` skeleton frames).
    """
    index = stride_frames(count, stride, start)
    if count and index[-1] >= len(skeleton):
        raise ValueError(f"{count} generated frames at stride {stride} need skeleton frames up to "
                         f"{index[-1] + 1}, but the skeleton has {len(skeleton)}")
    keypoints = mapping.forward(skeleton.keypoints[index]).reshape(count, 17, 2)
    inside = (keypoints[..., 0] >= 0) & (keypoints[..., 0] < out_width) & (keypoints[..., 1] >= 0) & (
        keypoints[..., 1] < out_height)
    visible = (skeleton.scores[index] >= SCORE_THRESHOLD) & inside & np.isfinite(keypoints).all(axis=-1)
    corners = mapping.forward(skeleton.bboxes[index].reshape(count, 2, 2)).astype(np.float64)
    corners[..., 0] = np.clip(corners[..., 0], 0, out_width)
    corners[..., 1] = np.clip(corners[..., 1], 0, out_height)
    areas = np.nan_to_num(np.prod(corners[:, 1] - corners[:, 0], axis=-1), nan=0.0)
    for i in np.flatnonzero((areas <= 0) & visible.any(axis=1)):  # no box recorded: the visible joints' box
        points = keypoints[i][visible[i]].astype(np.float64)
        areas[i] = float(np.prod(points.max(axis=0) - points.min(axis=0)))
    return Reference(keypoints.astype(np.float32), visible, areas)


@dataclass
class Fidelity:
    """Per-frame pose fidelity of F frames against their :class:`Reference`.

    Attributes:
        found: (F,) bool, a person was detected.
        pck: (F,) float64 PCK@0.1 in [0, 1]; NaN where the reference has no torso (not scored).
        oks: (F,) float64 OKS in [0, 1]; NaN where the reference has no counted joint.
        errors: (F, 17) float64 pixels per counted joint of a found person, NaN elsewhere.
        keypoints: (F, 17, 2) float32 the matched person's keypoints (NaN where none, and where
            a joint's score is below 0.3).
        seconds: time spent in the pose pipeline.
    """

    found: np.ndarray
    pck: np.ndarray
    oks: np.ndarray
    errors: np.ndarray
    keypoints: np.ndarray
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def summary(self, prefix: str = "") -> dict:
        """Flat numbers: ``pck``, ``oks``, ``person_found``, ``joint_error_px`` (17 values or None),
        ``pose_frames``, ``pck_frames`` (frames scored for PCK), under ``prefix``."""
        def mean(values):
            values = values[np.isfinite(values)]
            return float(values.mean()) if len(values) else None

        with np.errstate(invalid="ignore"):
            counts = np.isfinite(self.errors).sum(axis=0)
            per_joint = np.nansum(self.errors, axis=0) / np.maximum(counts, 1)
        return {f"{prefix}pck": mean(self.pck), f"{prefix}oks": mean(self.oks),
                f"{prefix}person_found": float(self.found.mean()) if len(self.found) else None,
                f"{prefix}joint_error_px": [round(float(e), 3) if c else None for e, c in zip(per_joint, counts)],
                f"{prefix}pose_frames": len(self.found), f"{prefix}pck_frames": int(np.isfinite(self.pck).sum())}


def torso_size(keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Distance between the shoulder centre and the hip centre: (F, 17, 2), (F, 17) → (F,)
    float64 pixels, NaN where a shoulder or a hip is not visible."""
    keypoints = np.asarray(keypoints, np.float64)
    shoulders = keypoints[:, list(_SHOULDERS)].mean(axis=1)
    hips = keypoints[:, list(_HIPS)].mean(axis=1)
    size = np.linalg.norm(shoulders - hips, axis=-1)
    ok = np.asarray(visible)[:, list(_SHOULDERS + _HIPS)].all(axis=1)
    return np.where(ok, size, np.nan)


def score_detections(reference: Reference, detections: list[tuple[np.ndarray, np.ndarray]]) -> Fidelity:
    """Score per-frame detections against the reference (no model involved).

    Args:
        reference: F driving poses.
        detections: F pairs (keypoints (N, 17, 2) pixels, keypoint_scores (N, 17)), N ≥ 0.

    Returns:
        :class:`Fidelity` (``seconds`` 0).

    Raises:
        ValueError: F differs.
    """
    count = len(reference.keypoints)
    if len(detections) != count:
        raise ValueError(f"{len(detections)} frames of detections for {count} reference frames")
    found = np.zeros(count, bool)
    pck = np.full(count, np.nan)
    similarity = np.full(count, np.nan)
    errors = np.full((count, 17), np.nan)
    matched = np.full((count, 17, 2), np.nan, np.float32)
    torso = torso_size(reference.keypoints, reference.visible)
    for i, (keypoints, scores) in enumerate(detections):
        keypoints = np.asarray(keypoints, np.float32).reshape(-1, 17, 2)
        scores = np.asarray(scores, np.float32).reshape(-1, 17)
        visible = reference.visible[i]
        found[i] = len(keypoints) > 0
        has_reference = bool(visible.any())
        if not found[i]:
            if has_reference:
                similarity[i] = 0.0
                if np.isfinite(torso[i]):
                    pck[i] = 0.0
            continue
        ref = np.nan_to_num(reference.keypoints[i])[None]
        pair = oks(ref, keypoints, np.array([reference.areas[i]]), visible_a=visible[None], sigmas=COCO17_SIGMAS)[0]
        best = int(np.argmax(pair))
        matched[i] = np.where((scores[best] >= SCORE_THRESHOLD)[:, None], keypoints[best], np.nan)
        if not has_reference:
            continue
        similarity[i] = pair[best]
        distance = np.linalg.norm(keypoints[best].astype(np.float64) - reference.keypoints[i], axis=-1)
        errors[i] = np.where(visible, distance, np.nan)
        if np.isfinite(torso[i]):
            pck[i] = float(np.mean(distance[visible] <= PCK_ALPHA * torso[i]))
    return Fidelity(found, pck, similarity, errors, matched)


def detect_people(frames: list[np.ndarray], pipeline, mapping=None) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    """Run ``pipeline`` (:class:`~posestream.stream.pipeline.PosePipeline`) on (H, W, 3) uint8 BGR
    frames; keypoints optionally mapped by ``mapping.forward``. Returns the per-frame
    (keypoints (N, 17, 2) float32, scores (N, 17) float32) and the seconds spent."""
    start = time.perf_counter()
    out = []
    for i, image in enumerate(frames):
        result = pipeline(Frame(i + 1, float(i), image))
        keypoints = result.keypoints if mapping is None else mapping.forward(result.keypoints)
        out.append((np.asarray(keypoints, np.float32).reshape(-1, 17, 2),
                    np.asarray(result.keypoint_scores, np.float32).reshape(-1, 17)))
    return out, time.perf_counter() - start


def pose_fidelity(frames: list[np.ndarray], reference: Reference, pipeline, mapping=None) -> Fidelity:
    """:func:`detect_people` on ``frames`` then :func:`score_detections`; ``mapping`` takes the
    detections into the reference's pixels (None when the frames are already the generated size)."""
    detections, seconds = detect_people(frames, pipeline, mapping)
    result = score_detections(reference, detections)
    result.seconds = seconds
    return result


def keypoint_jitter(keypoints: np.ndarray) -> float | None:
    """Mean ‖p(t+1) − 2 p(t) + p(t−1)‖ over joints and frames (second difference, pixels per
    frame²) of (T, 17, 2) keypoints with NaN where a joint is missing; None when no joint is
    present in three consecutive frames."""
    keypoints = np.asarray(keypoints, np.float64)
    if len(keypoints) < 3:
        return None
    second = keypoints[2:] - 2 * keypoints[1:-1] + keypoints[:-2]
    norms = np.linalg.norm(second, axis=-1)
    norms = norms[np.isfinite(norms)]
    return float(norms.mean()) if len(norms) else None
