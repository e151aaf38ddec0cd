"""The one result type that travels with every frame.

Conventions: pixel coordinates of the full frame, x right, y down; COCO-17 keypoint order
(:data:`posestream.engines.layouts.COCO17_NAMES`); frame ids start at 1 (as mmpose's ``frame_id``);
``pts`` is the presentation time in seconds from the start of the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import math

import numpy as np


#: decimals of pixel values and of scores in the JSON lines (1/100 px; 1e-4). The annotated
#: video draws these rounded values, so that it shows what the file says whatever the float
#: noise between two runs (posestream batch against posestream run).
PIXEL_DECIMALS, SCORE_DECIMALS = 2, 4


def _round(array: np.ndarray, decimals: int) -> list:
    return np.round(array.astype(np.float64), decimals).tolist()


@dataclass
class FrameResult:
    """Everything known about one frame.

    Attributes:
        frame_id: 1-based index of the frame in its source.
        pts: presentation time, seconds.
        width, height: frame size, pixels.
        bboxes: (N, 4) float32 x1, y1, x2, y2 pixels.
        bbox_scores: (N,) float32 detector confidences in [0, 1].
        keypoints: (N, 17, 2) float32 pixels, COCO-17.
        keypoint_scores: (N, 17) float32 in [0, 1].
        extra_keypoints: (N, E, 2) float32 pixels (e.g. heels, foot tips) or None.
        extra_keypoint_scores: (N, E) float32 or None.
        track_ids: (N,) int64 persistent ids, or None until a tracker runs.
        keypoints_3d: (N, 17, 3) float32 metres, root-relative, H36M-17, or None until lifted.
        postures, gestures: N labels each, or None until classified.
        events: label changes of this frame (:meth:`posestream.stream.classify.rules.LabelEvent.to_json` dicts).
        image: source image file name (image inputs only).
        timings: stage name → milliseconds spent on this frame.
        hand_keypoints: (N, 2, 21, 2) float32 pixels of each person's left and right hand
            (:data:`posestream.engines.layouts.HAND_SIDES`, ``HAND21_NAMES`` order), NaN where
            the hand's status is not ``ok``; None when hands are not estimated (the default).
        hand_keypoint_scores: (N, 2, 21) float32 in [0, 1] (the hand's presence score for
            points inside the frame, 0 outside it and for hands not ``ok``), or None.
        hand_presence: (N, 2) float32 in [0, 1], the hand model's presence score (0 where it did not run), or None.
        hand_right: (N, 2) float32 in [0, 1], the model's probability that the crop holds a
            right hand (handedness; 0.5 where it did not run), or None.
        hand_status: (N, 2) str: ``ok`` (landmarks reported), ``absent`` (presence under the
            threshold), ``other`` (the crop holds the person's other hand: handedness against
            its side, or both crops on one hand), ``small`` (hand under ``pipeline.min_hand_size`` px: not cropped),
            ``unseen`` (its wrist not seen in the body pose: not cropped); or None.
        wholebody_keypoints: (N, 133, 2) float32 pixels of a whole-body model (RTMW, DWPose;
            COCO-WholeBody order), or None; not part of the JSON lines (its body is ``keypoints``,
            its hands ``hands``; ``results_<name>.json`` with ``--keypoints wholebody`` has it all).
        wholebody_scores: (N, 133) float32, or None.
    """

    frame_id: int
    pts: float
    width: int
    height: int
    bboxes: np.ndarray
    bbox_scores: np.ndarray
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    extra_keypoints: np.ndarray | None = None
    extra_keypoint_scores: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    keypoints_3d: np.ndarray | None = None
    postures: list[str] | None = None
    gestures: list[str] | None = None
    events: list[dict] = field(default_factory=list)
    image: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    hand_keypoints: np.ndarray | None = None
    hand_keypoint_scores: np.ndarray | None = None
    hand_presence: np.ndarray | None = None
    hand_right: np.ndarray | None = None
    hand_status: np.ndarray | None = None
    wholebody_keypoints: np.ndarray | None = None
    wholebody_scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.bboxes)

    def instances(self, decimals: int = PIXEL_DECIMALS) -> list[dict]:
        """Per-person dicts with every instance field of the JSON-lines schema (null where not computed).

        Pixel values are rounded to ``decimals``; ``bbox`` is one x1y1x2y2 list (JSON lines form).
        ``hands`` (:meth:`hands_json`) is there only when hands were estimated.
        """
        out = []
        for i in range(len(self)):
            out.append({
                "bbox": _round(self.bboxes[i], decimals),
                "bbox_score": round(float(self.bbox_scores[i]), SCORE_DECIMALS),
                "keypoints": _round(self.keypoints[i], decimals),
                "keypoint_scores": _round(self.keypoint_scores[i], SCORE_DECIMALS),
                "extra_keypoints": None if self.extra_keypoints is None else _round(self.extra_keypoints[i], decimals),
                "extra_keypoint_scores": None if self.extra_keypoint_scores is None
                else _round(self.extra_keypoint_scores[i], SCORE_DECIMALS),
                "track_id": None if self.track_ids is None else int(self.track_ids[i]),
                "keypoints_3d": None if self.keypoints_3d is None else _round(self.keypoints_3d[i], 4),
                "posture": None if self.postures is None else self.postures[i],
                "gesture": None if self.gestures is None else self.gestures[i],
            })
            if self.hand_keypoints is not None:
                out[-1]["hands"] = self.hands_json(i, decimals)
        return out

    def hands_json(self, i: int, decimals: int = 2) -> dict:
        """Person ``i``'s hands as the JSON-lines ``hands`` field: ``{"left": H, "right": H}``,
        H = ``{"status", "presence", "handedness", "keypoints": [[x, y]×21] | null,
        "keypoint_scores": [21] | null}``, keypoints given only where ``status`` is ``ok``;
        ``handedness`` is the probability of a right hand."""
        from posestream.engines.layouts import HAND_SIDES

        hands = {}
        for s, side in enumerate(HAND_SIDES):
            ok = self.hand_status[i, s] == "ok"
            hands[side] = {
                "status": str(self.hand_status[i, s]),
                "presence": round(float(self.hand_presence[i, s]), 4),
                "handedness": round(float(self.hand_right[i, s]), 4),
                "keypoints": _round(self.hand_keypoints[i, s], decimals) if ok else None,
                "keypoint_scores": _round(self.hand_keypoint_scores[i, s], SCORE_DECIMALS) if ok else None,
            }
        return hands

    def to_json(self) -> dict:
        """The JSON-lines record: ``frame_id``, ``pts``, ``width``, ``height``, [``image``], ``instances``,
        ``events`` (label changes: track_id, kind, label, previous, frame_id, pts)."""
        record = {"frame_id": self.frame_id, "pts": round(self.pts, 6), "width": self.width, "height": self.height}
        if self.image is not None:
            record["image"] = self.image
        record["instances"] = self.instances()
        record["events"] = self.events
        return record

    @classmethod
    def from_json(cls, record: dict) -> "FrameResult":
        """Rebuild a result from its JSON-lines record (:meth:`to_json`), e.g. received by a sink
        of the live graph or read back from a file. Values keep the record's rounding.

        Raises:
            KeyError, ValueError, TypeError: not such a record.
        """
        instances = record["instances"]
        n = len(instances)

        def stack(key: str, shape: tuple, optional: bool = False):
            values = [inst.get(key) for inst in instances]
            if optional and (not n or any(v is None for v in values)):
                return None
            return np.asarray(values, np.float32).reshape((n, *shape))

        def labels(key: str):
            values = [inst.get(key) for inst in instances]
            return None if not n or any(v is None for v in values) else values

        track_ids = [inst.get("track_id") for inst in instances]
        hands = _hands_from_json(instances)
        return cls(
            frame_id=int(record["frame_id"]), pts=float(record["pts"]), width=int(record["width"]),
            height=int(record["height"]), bboxes=stack("bbox", (4,)), bbox_scores=stack("bbox_score", ()),
            keypoints=stack("keypoints", (17, 2)), keypoint_scores=stack("keypoint_scores", (17,)),
            extra_keypoints=stack("extra_keypoints", (-1, 2), True),
            extra_keypoint_scores=stack("extra_keypoint_scores", (-1,), True),
            track_ids=None if not n or any(t is None for t in track_ids) else np.asarray(track_ids, np.int64),
            keypoints_3d=stack("keypoints_3d", (17, 3), True), postures=labels("posture"), gestures=labels("gesture"),
            events=list(record.get("events", [])), image=record.get("image"), **hands)


def _hands_from_json(instances: list[dict]) -> dict:
    """FrameResult hand fields of records' instances (empty where any instance lacks ``hands``)."""
    from posestream.engines.layouts import HAND_SIDES

    n = len(instances)
    if not n or any(inst.get("hands") is None for inst in instances):
        return {}
    keypoints = np.full((n, 2, 21, 2), np.nan, np.float32)
    scores = np.zeros((n, 2, 21), np.float32)
    presence, right = np.zeros((n, 2), np.float32), np.full((n, 2), 0.5, np.float32)
    status = np.full((n, 2), "unseen", dtype="<U6")
    for i, inst in enumerate(instances):
        for s, side in enumerate(HAND_SIDES):
            hand = inst["hands"][side]
            status[i, s], presence[i, s], right[i, s] = hand["status"], hand["presence"], hand["handedness"]
            if hand.get("keypoints") is not None:
                keypoints[i, s] = np.asarray(hand["keypoints"], np.float32).reshape(21, 2)
                scores[i, s] = np.asarray(hand["keypoint_scores"], np.float32).reshape(21)
    return {"hand_keypoints": keypoints, "hand_keypoint_scores": scores, "hand_presence": presence,
            "hand_right": right, "hand_status": status}


def _numbers(value, shape: tuple, what: str) -> np.ndarray:
    """``value`` as a float64 array of ``shape`` (-1: any length), finite.

    Raises:
        ValueError: nested wrongly, not numbers, another shape, NaN or infinity.
    """
    if isinstance(value, (str, bytes, dict)):
        raise ValueError(f"{what}: expected numbers, got {type(value).__name__}")
    try:
        array = np.asarray(value, np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: not an array of numbers ({exc})") from None
    if array.ndim != len(shape) or any(s not in (-1, n) for s, n in zip(shape, array.shape)):
        raise ValueError(f"{what}: shape {array.shape}, expected {tuple(shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: NaN or infinity")
    return array


#: Values of a hand's ``status`` (:attr:`FrameResult.hand_status`).
HAND_STATUSES = ("ok", "absent", "other", "small", "unseen")


def _check_hands(hands, what: str) -> None:
    """Check one instance's ``hands`` field (:meth:`FrameResult.hands_json`).

    Raises:
        ValueError: naming the wrong part.
    """
    if not isinstance(hands, dict) or set(hands) != {"left", "right"}:
        raise ValueError(f"{what}: expected a map with the keys left and right")
    for side, hand in hands.items():
        where = f"{what}.{side}"
        if not isinstance(hand, dict):
            raise ValueError(f"{where}: expected a map")
        status = hand.get("status")
        if status not in HAND_STATUSES:
            raise ValueError(f"{where}.status: expected one of {', '.join(HAND_STATUSES)}, got {status!r}")
        for key in ("presence", "handedness"):
            value = _numbers(hand.get(key), (), f"{where}.{key}")
            if not 0 <= value <= 1:
                raise ValueError(f"{where}.{key}: expected a number from 0 to 1, got {float(value)!r}")
        if status == "ok":
            _numbers(hand.get("keypoints"), (21, 2), f"{where}.keypoints")
            _numbers(hand.get("keypoint_scores"), (21,), f"{where}.keypoint_scores")
        elif hand.get("keypoints") is not None or hand.get("keypoint_scores") is not None:
            raise ValueError(f"{where}: keypoints given for a hand whose status is {status!r}")


def validate_record(record) -> None:
    """Check that ``record`` is a JSON-lines frame record (:meth:`FrameResult.to_json`) in every
    field's type and shape, so that no consumer of it (files, video, PUB) can fail on it later.

    Checked: ``frame_id`` int >= 1, ``pts`` finite number, ``width``/``height`` int >= 1,
    ``image`` str (optional); ``instances`` a list of maps with ``bbox`` [4], ``bbox_score``,
    ``keypoints`` [17, 2], ``keypoint_scores`` [17] (finite numbers), ``extra_keypoints`` [E, 2]
    and ``extra_keypoint_scores`` [E] or null, ``track_id`` int or null, ``keypoints_3d``
    [17, 3] or null, ``posture``/``gesture`` str or null, ``hands`` (optional, null or
    ``{"left": H, "right": H}``, :meth:`FrameResult.hands_json`: ``status`` one of
    :data:`HAND_STATUSES`, ``presence`` and ``handedness`` numbers in [0, 1], ``keypoints``
    [21, 2] and ``keypoint_scores`` [21] when the status is ``ok``, else null); ``events`` a list of maps.

    Raises:
        ValueError: the first field that is wrong, named.
    """
    if not isinstance(record, dict):
        raise ValueError(f"a frame record is a map, got {type(record).__name__}")

    def integer(value, what: str, low: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{what}: expected an integer >= {low}, got {value!r}")

    integer(record.get("frame_id"), "frame_id", 1)
    integer(record.get("width"), "width", 1)
    integer(record.get("height"), "height", 1)
    pts = record.get("pts")
    if not isinstance(pts, (int, float)) or isinstance(pts, bool) or not math.isfinite(pts):
        raise ValueError(f"pts: expected a finite number, got {pts!r}")
    if "image" in record and not isinstance(record["image"], str):
        raise ValueError("image: expected a file name")
    instances, events = record.get("instances"), record.get("events", [])
    if not isinstance(instances, list) or not isinstance(events, list):
        raise ValueError("instances and events: expected lists")
    if not all(isinstance(event, dict) for event in events):
        raise ValueError("events: expected a list of maps")
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise ValueError(f"instances[{i}]: expected a map")
        _numbers(inst.get("bbox"), (4,), f"instances[{i}].bbox")
        _numbers(inst.get("bbox_score"), (), f"instances[{i}].bbox_score")
        _numbers(inst.get("keypoints"), (17, 2), f"instances[{i}].keypoints")
        _numbers(inst.get("keypoint_scores"), (17,), f"instances[{i}].keypoint_scores")
        if inst.get("extra_keypoints") is not None or inst.get("extra_keypoint_scores") is not None:
            extra = _numbers(inst.get("extra_keypoints"), (-1, 2), f"instances[{i}].extra_keypoints")
            _numbers(inst.get("extra_keypoint_scores"), (len(extra),), f"instances[{i}].extra_keypoint_scores")
        if inst.get("keypoints_3d") is not None:
            _numbers(inst["keypoints_3d"], (17, 3), f"instances[{i}].keypoints_3d")
        track_id = inst.get("track_id")
        if track_id is not None and (not isinstance(track_id, int) or isinstance(track_id, bool)):
            raise ValueError(f"instances[{i}].track_id: expected an integer or null, got {track_id!r}")
        for key in ("posture", "gesture"):
            if inst.get(key) is not None and not isinstance(inst[key], str):
                raise ValueError(f"instances[{i}].{key}: expected a label or null, got {inst[key]!r}")
        if inst.get("hands") is not None:
            _check_hands(inst["hands"], f"instances[{i}].hands")
    if instances:
        lengths = {len(inst.get("extra_keypoints") or []) for inst in instances}
        if len(lengths) > 1:
            raise ValueError(f"instances: extra_keypoints of different lengths {sorted(lengths)}")
