"""MediaPipe's palm detector (full): finds the hands the body pose does not show.

A hand is ``unseen`` when the body model does not see its wrist (close-ups of a torso, a hand
reaching towards the camera); then there is nothing to crop it from. For such a person the palm
detector runs once on the person's box (a letterboxed square crop, as MediaPipe letterboxes its
whole image); each palm found gives a hand crop built as MediaPipe's hand tracking builds it from
a palm (``hand_landmark/palm_detection_detection_to_roi.pbtxt``), and the hand landmark model
then runs on those crops (with the frame's other hand crops, in one call). The landmark model's
handedness says which of the person's unseen slots the hand fills.

Everything here is written from the published facts of MediaPipe's graphs (Apache-2.0,
google/mediapipe ``mediapipe/modules/palm_detection/palm_detection_cpu.pbtxt`` and
``palm_detection.pbtxt``, ``SsdAnchorsCalculator``, ``TensorsToDetectionsCalculator``,
``NonMaxSuppressionCalculator``, ``DetectionsToRectsCalculator``, ``RectTransformationCalculator``);
no code of theirs is copied.

Coordinates: *normalised* means a fraction of the detector's 192 × 192 input (0..1 on each
axis); image coordinates are pixels of the frame (x right, y down).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from posestream.engines.backend import InferenceBackend, require_signature
from posestream.engines.transforms import (
    apply_affine,
    crop_warp_matrix,
    rotation_from_points,
)

#: Input side of palm_detection_full (``input_1`` [1, 192, 192, 3]); also the decoder's
#: x/y/w/h scale (``TensorsToDetectionsCalculatorOptions`` x_scale … h_scale = 192).
INPUT_SIZE = 192
#: ``SsdAnchorsCalculatorOptions`` of palm_detection (full): num_layers 4, strides 8, 16, 16, 16,
#: anchor offset 0.5, aspect ratio 1.0 plus one interpolated-scale anchor per layer (2 anchors per
#: layer and location), fixed anchor size (every anchor 1 × 1, so its scales do not matter).
STRIDES = (8, 16, 16, 16)
ANCHORS_PER_LAYER = 2
ANCHOR_OFFSET = 0.5
NUM_ANCHORS = 2016
#: Palm keypoints (``num_keypoints: 7``): 0 wrist centre, 1 index MCP, 2 middle MCP, 3 ring MCP,
#: 4 pinky MCP, 5 thumb CMC, 6 thumb MCP (MediaPipe's palm detection model card).
NUM_KEYPOINTS = 7
#: ``min_score_thresh: 0.5`` (palm_detection.pbtxt); scores go through a sigmoid after clipping
#: the logits to ±100 (``sigmoid_score: true``, ``score_clipping_thresh: 100``).
MIN_SCORE = 0.5
SCORE_CLIP = 100.0
#: ``NonMaxSuppressionCalculatorOptions``: IoU over 0.3 suppresses, the WEIGHTED algorithm.
NMS_IOU = 0.3
#: ``palm_detection_detection_to_roi.pbtxt``: rotation from keypoint 0 (wrist centre) to keypoint
#: 2 (middle MCP) turned to 90° (up); the rect shifted -0.5 of its height along the hand's
#: axis (towards the fingers), squared on its long side and scaled 2.6×.
ROI_SCALE, ROI_SHIFT = 2.6, -0.5


def ssd_anchors(input_size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES,
                per_layer: int = ANCHORS_PER_LAYER, offset: float = ANCHOR_OFFSET) -> np.ndarray:
    """Anchor centres of MediaPipe's SSD scheme with fixed anchor size (every anchor 1 × 1).

    Consecutive layers of one stride share a feature map; each contributes ``per_layer``
    anchors per location, in the order: feature map, row (y), column (x), anchor. For the palm
    detector: a 24 × 24 map (stride 8) with 2 anchors per location and a 12 × 12 map (strides 16,
    16, 16) with 6: 1152 + 864 = 2016 anchors.

    Returns:
        (A, 2) float32 centres x, y, normalised (a fraction of the input side).
    """
    centres, layer = [], 0
    while layer < len(strides):
        stride, count = strides[layer], 0
        while layer < len(strides) and strides[layer] == stride:
            count += per_layer
            layer += 1
        size = int(np.ceil(input_size / stride))
        grid = (np.arange(size, dtype=np.float64) + offset) / size
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), count, axis=0))
    return np.concatenate(centres).astype(np.float32)


@dataclass(frozen=True)
class Palms:
    """Palms of one image or crop.

    Attributes:
        boxes: (K, 4) float32 x1, y1, x2, y2 (normalised to the detector's input, or image pixels).
        keypoints: (K, 7, 2) float32 x, y of the 7 palm keypoints (:data:`NUM_KEYPOINTS`), same units.
        scores: (K,) float32 in [0, 1].
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def decode_palms(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, min_score: float = MIN_SCORE,
                 iou_threshold: float = NMS_IOU) -> Palms:
    """Decode the palm detector's raw outputs (``TensorsToDetectionsCalculator`` with
    ``reverse_output_order``, fixed-size anchors, all scales 192) and merge overlaps
    (:func:`weighted_nms`).

    Per anchor with centre (ax, ay): box centre ``(raw[0] / 192 + ax, raw[1] / 192 + ay)``, size
    ``(raw[2] / 192, raw[3] / 192)``, keypoint k at ``(raw[4 + 2k] / 192 + ax, raw[5 + 2k] / 192 + ay)``,
    score ``sigmoid(clip(logit, ±100))``.

    Args:
        raw: (2016, 18) (or (1, 2016, 18)) float32, ``Identity``, in 192-pixel units relative to the anchor.
        logits: (2016, 1) (or (1, 2016, 1), or (2016,)) float32, ``Identity_1``.
        anchors: (2016, 2) float32 normalised centres (:func:`ssd_anchors`).
        min_score: palms scoring under this are dropped. iou_threshold: NMS overlap (IoU).

    Returns:
        :class:`Palms` normalised to the input, best first.
    """
    raw = np.asarray(raw, np.float32).reshape(len(anchors), 4 + 2 * NUM_KEYPOINTS)
    scores = 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, np.float32).reshape(-1), -SCORE_CLIP, SCORE_CLIP)))
    keep = np.flatnonzero(scores >= min_score)
    raw, centre_anchor = raw[keep] / INPUT_SIZE, anchors[keep]
    centres, sizes = raw[:, :2] + centre_anchor, raw[:, 2:4]
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    keypoints = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + centre_anchor[:, None]
    return weighted_nms(Palms(boxes.astype(np.float32), keypoints.astype(np.float32),
                              scores[keep].astype(np.float32)), iou_threshold)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    low, high = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(palms: Palms, iou_threshold: float = NMS_IOU) -> Palms:
    """MediaPipe's WEIGHTED non-max suppression: the best remaining palm and every palm whose
    box overlaps it by more than ``iou_threshold`` (IoU) become one palm, its box corners and
    keypoints their score-weighted mean, its score the best one's.

    Returns:
        :class:`Palms`, best first.
    """
    order = np.argsort(-palms.scores, kind="stable")
    boxes, keypoints, scores = palms.boxes[order], palms.keypoints[order], palms.scores[order]
    out_boxes, out_points, out_scores = [], [], []
    remaining = np.arange(len(scores))
    while len(remaining):
        overlap = _iou(boxes[remaining[0]], boxes[remaining]) > iou_threshold
        overlap[0] = True
        group, remaining = remaining[overlap], remaining[~overlap]
        weights = scores[group] / scores[group].sum()
        out_boxes.append(weights @ boxes[group])
        out_points.append(np.tensordot(weights, keypoints[group], axes=1))
        out_scores.append(scores[group[0]])
    if not out_scores:
        return Palms(np.zeros((0, 4), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros(0, np.float32))
    return Palms(np.asarray(out_boxes, np.float32), np.asarray(out_points, np.float32), np.asarray(out_scores, np.float32))


def hand_rois_from_palms(boxes: np.ndarray, keypoints: np.ndarray, scale: float = ROI_SCALE,
                         shift: float = ROI_SHIFT) -> np.ndarray:
    """Hand crops from palms, as MediaPipe's ``palm_detection_detection_to_roi``: the palm box
    (width w, height h) rotated so that keypoint 0 (wrist centre) → keypoint 2 (middle MCP)
    points up, its centre moved ``shift`` × h along the hand's down axis (negative: towards the
    fingers), squared on its longer side and scaled by ``scale``.

    Args:
        boxes: (K, 4) float x1, y1, x2, y2 image pixels (axis-aligned palm boxes).
        keypoints: (K, 7, 2) float image pixels.

    Returns:
        (K, 4) float32 crops as :func:`posestream.stream.pose.hands.hand_rois_from_body`: centre
        x, y (px), side (px, ≥ 1), rotation (rad, clockwise on screen).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    keypoints = np.asarray(keypoints, np.float64).reshape(len(boxes), NUM_KEYPOINTS, 2)
    out = np.zeros((len(boxes), 4), np.float32)
    for i, (box, points) in enumerate(zip(boxes, keypoints)):
        width, height = box[2] - box[0], box[3] - box[1]
        rotation = rotation_from_points(points[0], points[2])
        centre = (box[:2] + box[2:]) / 2 + shift * height * np.array([-np.sin(rotation), np.cos(rotation)])
        out[i] = (*centre, max(scale * max(width, height), 1.0), rotation)
    return out


class PalmDetector:
    """MediaPipe palm detector (full): ``input_1`` [1,192,192,3] float32 RGB in [0, 1] →
    ``Identity`` [1,2016,18] float32 box and 7 keypoints per anchor (192-pixel units relative
    to the anchor centre), ``Identity_1`` [1,2016,1] float32 score logits.

    Run on square crops of person boxes, one call per crop (the graph's batch is 1).

    Args:
        backend: the opened model (ONNX Runtime, or LiteRT for the ``.tflite``).
        min_score: palms scoring under this are dropped (MediaPipe: 0.5).
        iou_threshold: weighted-NMS IoU (MediaPipe: 0.3).
        box_scale: the square crop's side over the person box's longer side (1.0: MediaPipe's
            letterbox of the box itself).

    Raises:
        ModelSignatureError: the model lacks ``input_1`` [1,192,192,3] or ``Identity``/``Identity_1``.
    """

    input_size = (INPUT_SIZE, INPUT_SIZE)

    @staticmethod
    def matches(backend: InferenceBackend) -> bool:
        """Whether a model of unknown family has the palm detector's signature."""
        ins, outs = {s.name for s in backend.inputs}, {s.name for s in backend.outputs}
        return "input_1" in ins and {"Identity", "Identity_1"} <= outs and "Identity_2" not in outs and \
            tuple(backend.inputs[0].shape[1:]) == (INPUT_SIZE, INPUT_SIZE, 3)

    def __init__(self, backend: InferenceBackend, min_score: float = MIN_SCORE, iou_threshold: float = NMS_IOU,
                 box_scale: float = 1.0):
        require_signature(backend, {"input_1": (None, INPUT_SIZE, INPUT_SIZE, 3)}, ["Identity", "Identity_1"])
        self.backend, self.min_score, self.iou_threshold, self.box_scale = backend, min_score, iou_threshold, box_scale
        self.anchors = ssd_anchors()

    def __call__(self, image: np.ndarray, box: np.ndarray) -> Palms:
        """Palms in one person box.

        Args:
            image: (H, W, 3) uint8 BGR.
            box: (4,) x1, y1, x2, y2 pixels; the crop is the square of side ``box_scale`` × its
                longer side centred on it, outside the image black (MediaPipe's zero letterbox).

        Returns:
            :class:`Palms` in image pixels, best first.
        """
        box = np.asarray(box, np.float64).reshape(4)
        side = max(float(np.max(box[2:] - box[:2])) * self.box_scale, 1.0)
        matrix = crop_warp_matrix((box[:2] + box[2:]) / 2, (side, side), 0.0, self.input_size)
        crop = cv2.warpAffine(image, matrix, self.input_size, flags=cv2.INTER_LINEAR)
        tensor = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None] * np.float32(1.0 / 255.0)
        raw, logits = self.backend.run({"input_1": tensor}, ["Identity", "Identity_1"])
        palms = decode_palms(raw, logits, self.anchors, self.min_score, self.iou_threshold)
        back = cv2.invertAffineTransform(matrix)
        corners = apply_affine(palms.boxes.reshape(-1, 2, 2) * INPUT_SIZE, back).reshape(-1, 4)
        return Palms(corners, apply_affine(palms.keypoints * INPUT_SIZE, back), palms.scores)

    def hand_rois(self, image: np.ndarray, bboxes: np.ndarray, status: np.ndarray, busy: np.ndarray,
                  min_hand_size: float, max_people: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Hand crops from palms for the people that have an ``unseen`` hand.

        The detector runs once per person with an ``unseen`` slot whose box's shorter side is at
        least ``min_hand_size`` px, for at most ``max_people`` of them per frame (the largest
        boxes first; None: all), which bounds its cost (about 25 ms a person on 2 cores) in a
        crowd or while a hand stays hidden. A palm is kept when its centre lies in the person's box,
        its hand is long enough (hand length taken as twice the palm box's longer side, at
        least ``min_hand_size``), and its centre lies in none of that person's crops already
        going to the hand model (``busy``: the hand the body shows).

        Args:
            image: (H, W, 3) uint8 BGR. bboxes: (N, 4) person boxes x1, y1, x2, y2 px.
            status: (N, 2) str hand status (left, right) before the hand model runs; ``ok``
                slots are being cropped. busy: (N, 2, 4) float crops (cx, cy, side px, rotation) of the slots.
            min_hand_size: px (``pipeline.min_hand_size``).

        Returns:
            ``(rois, people)``: (K, 4) float32 hand crops (:func:`hand_rois_from_palms`) and
            (K,) int the person (row of ``bboxes``) each palm belongs to.
        """
        rois, people = [], []
        bboxes = np.asarray(bboxes, np.float64).reshape(-1, 4)
        sides = np.clip(bboxes[:, 2:] - bboxes[:, :2], 0, None) if len(bboxes) else np.zeros((0, 2))
        wanted = np.flatnonzero((status == "unseen").any(axis=1) & (sides.min(axis=1) >= min_hand_size))
        wanted = wanted[np.argsort(-sides[wanted].prod(axis=1), kind="stable")][:max_people]
        for person in wanted:
            box = bboxes[person]
            palms = self(image, box)
            if not len(palms):
                continue
            centres = (palms.boxes[:, :2] + palms.boxes[:, 2:]) / 2
            inside = ((centres >= box[:2]) & (centres <= box[2:])).all(axis=1)
            long_enough = 2 * np.max(palms.boxes[:, 2:] - palms.boxes[:, :2], axis=1) >= min_hand_size
            free = np.ones(len(palms), bool)
            for slot in np.flatnonzero(status[person] == "ok"):
                crop = busy[person, slot]
                free &= np.linalg.norm(centres - crop[:2], axis=1) > crop[2] / 2
            keep = inside & long_enough & free
            if keep.any():
                rois.append(hand_rois_from_palms(palms.boxes[keep], palms.keypoints[keep]))
                people.append(np.full(int(keep.sum()), person))
        if not rois:
            return np.zeros((0, 4), np.float32), np.zeros(0, int)
        return np.concatenate(rois), np.concatenate(people)


def _on_one_another(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two (21, 2) hands are one: mean point distance under a quarter of the larger one's extent."""
    side = max(float(np.ptp(a, axis=0).max()), float(np.ptp(b, axis=0).max()))
    return float(np.linalg.norm(a - b, axis=1).mean()) < 0.25 * side


def assign_palm_hands(status: np.ndarray, keypoints: np.ndarray, presence: np.ndarray, right: np.ndarray,
                      found: tuple[np.ndarray, np.ndarray, np.ndarray], people: np.ndarray, threshold: float,
                      bboxes: np.ndarray | None = None) -> None:
    """Put the hands found from palms into their person's ``unseen`` (or ``small``) slots (in place).

    A hand goes to the slot of its handedness (``right`` ≥ 0.5: the right slot, in the body
    model's sense, see :class:`~posestream.stream.pose.hands.HandCrops`) when its presence
    reaches ``threshold``, that slot is ``unseen`` or ``small`` (the body's estimate of a hand
    held towards the camera is foreshortened; the palm, at least ``min_hand_size`` / 2 px, is
    the better evidence) and the hand does not lie on a hand already
    ``ok`` in the frame (any person's: people whose boxes overlap find the same palm). Hands are
    placed in order of the share of their 21 points inside their person's box (``bboxes``; the
    person whose box holds the hand wins), then of presence. The slot becomes ``ok``.

    Args:
        status: (2N,) str, left and right of each person in turn. keypoints: (2N, 21, 2) float32
            pixels. presence, right: (2N,) float32.
        found: the palm crops' (K, 21, 2) keypoints, (K,) presence, (K,) right.
        people: (K,) int person of each. threshold: presence needed (``pipeline.palm_presence_threshold``,
            stricter than for hands the body shows: a palm-shaped thing with no wrist behind it is a
            likelier false hit).
        bboxes: (N, 4) person boxes x1, y1, x2, y2 px; None: presence order alone.
    """
    points, scores, sides = found
    held = np.zeros(len(scores))
    if bboxes is not None and len(scores):
        boxes = np.asarray(bboxes, np.float64).reshape(-1, 4)[people]
        held = ((points >= boxes[:, None, :2]) & (points <= boxes[:, None, 2:])).all(axis=2).mean(axis=1)
    for k in np.lexsort((-scores, -held)):
        slot = 2 * int(people[k]) + int(sides[k] >= 0.5)
        if scores[k] < threshold or status[slot] not in ("unseen", "small"):
            continue
        if any(_on_one_another(points[k], keypoints[j]) for j in np.flatnonzero(status == "ok")):
            continue
        status[slot], keypoints[slot], presence[slot], right[slot] = "ok", points[k], scores[k], sides[k]
