"""Scoring posture and gesture labels against hand-made labels of a video.

Labels file (CSV, ``#`` comments allowed): ``person,start,end,posture,gesture`` — ``person`` is
the 1-based left-to-right rank of the person in the frame (by box centre) or ``track:N``;
``start``/``end`` are 1-based inclusive frame numbers; ``posture`` ∈ {standing, sitting,
unknown, ignore}, ``gesture`` ∈ {none, hello, stop, ignore}. ``ignore`` leaves that field of
those frames out of the scores (transitions, invisible body parts). ``unknown`` means the
posture cannot be seen and the right answer is to abstain. A labelled person the pipeline did
not report counts as ``unknown`` / ``none``.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.stream.classify.rules import (GESTURES, POSTURES, ClassifierConfig, PoseClassifier, arm_readings,
                                              forearm_rise, knee_reprojection)
from posestream.stream.results import FrameResult

KINDS = ("posture", "gesture")

#: the labelled shared clips: labels file in tests/data → video under $POSESTREAM_SHARED/media
LABELLED_CLIPS = {
    "har-wave.csv": "har-wave/wave.mp4",
    "har-stand.csv": "har-stand/stand.mp4",
    "falldet-sit.csv": "falldet-sit/sit.mp4",
    "falldet-walk.csv": "falldet-walk/walk.mp4",
    "tfjs-pose_squats.csv": "tfjs-pose-testdata/pose_squats.mp4",
    "tfjs-pose_1.csv": "tfjs-pose-testdata/pose_1.mp4",
    "mediapipe-hand-reach.csv": "mediapipe-hand-reach/test_video.mp4",
}

#: shared clips where nobody sits and nobody gestures (every frame looked at), under
#: $POSESTREAM_SHARED/media: any *sitting*, *hello* or *stop* read there is wrong. They found the
#: faults ``knee_error_3d`` and ``forearm_rise_3d`` fix (whose values were chosen on the sweeps
#: and the labelled clips): a regression check, not a held-out result.
NEGATIVE_CLIPS = {
    "opencv-vtest/vtest.avi": "pedestrians walking or standing, a camera 30-40 deg above them",
    "intel-one-by-one-person/one-by-one-person-detection.mp4":
        "one person at a time walks to a high table, stands there with their back to a camera about 40 deg "
        "above, hands on the table, and leaves",
}


@dataclass(frozen=True)
class LabelSpan:
    """One row of a labels file: ``person`` (rank, 1-based) or ``track_id``, frames, labels."""

    person: int | None
    track_id: int | None
    start: int
    end: int
    posture: str
    gesture: str


def load_labels(path: str | Path) -> list[LabelSpan]:
    """Read a labels CSV.

    Raises:
        ValueError: a missing column, an unknown label, or ``end < start`` (with the line number).
    """
    path = Path(path)
    rows = [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(rows)
    need = {"person", "start", "end", "posture", "gesture"}
    if reader.fieldnames is None or not need <= set(reader.fieldnames):
        raise ValueError(f"{path}: the header must name {', '.join(sorted(need))}")
    spans = []
    for number, row in enumerate(reader, start=2):
        person = row["person"].strip()
        track_id = int(person.split(":", 1)[1]) if person.startswith("track:") else None
        rank = None if track_id is not None else int(person)
        posture, gesture = row["posture"].strip(), row["gesture"].strip()
        if posture not in POSTURES + ("ignore",) or gesture not in GESTURES + ("ignore",):
            raise ValueError(f"{path}: row {number}: unknown label {posture!r} / {gesture!r}")
        start, end = int(row["start"]), int(row["end"])
        if end < start:
            raise ValueError(f"{path}: row {number}: end {end} before start {start}")
        spans.append(LabelSpan(rank, track_id, start, end, posture, gesture))
    return spans


def classify_frames(results: list[FrameResult], config: ClassifierConfig) -> list[tuple[list[str], list[str]]]:
    """Run a fresh :class:`PoseClassifier` over a stream's results (in frame order).

    Returns:
        Per frame, ``(postures, gestures)`` of its instances.
    """
    classifier = PoseClassifier(config)
    out = []
    for result in results:
        postures, gestures, _ = classifier(result.keypoints, result.keypoint_scores, result.track_ids,
                                           result.keypoints_3d, result.frame_id, result.pts,
                                           (result.width, result.height), hand_keypoints=result.hand_keypoints,
                                           hand_status=result.hand_status)
        out.append((postures, gestures))
    return out


def pairs(spans: list[LabelSpan], results: list[FrameResult], labels: list[tuple[list[str], list[str]]],
          kind: str) -> tuple[list[str], list[str]]:
    """(truth, prediction) of every labelled person-frame for ``kind`` (posture or gesture)."""
    by_frame = {r.frame_id: (r, lab) for r, lab in zip(results, labels)}
    column = KINDS.index(kind)
    absent = "unknown" if kind == "posture" else "none"
    truth, predicted = [], []
    for span in spans:
        wanted = getattr(span, kind)
        if wanted == "ignore":
            continue
        for frame_id in range(span.start, span.end + 1):
            result, frame_labels = by_frame.get(frame_id, (None, None))
            guess = absent
            if result is not None and len(result):
                if span.track_id is not None:
                    hits = [] if result.track_ids is None else np.flatnonzero(result.track_ids == span.track_id)
                    index = int(hits[0]) if len(hits) else None
                else:
                    order = np.argsort((result.bboxes[:, 0] + result.bboxes[:, 2]) / 2, kind="stable")
                    index = int(order[span.person - 1]) if span.person <= len(order) else None
                if index is not None:
                    guess = frame_labels[column][index]
            truth.append(wanted)
            predicted.append(guess)
    return truth, predicted


def label_rates(labels: list[tuple[list[str], list[str]]]) -> tuple[int, dict[str, float]]:
    """Share of the reported person-frames given each label, over :func:`classify_frames`'
    output: ``(person-frames, {label: share})`` for every posture and gesture label (shares
    NaN with no person-frame). On a :data:`NEGATIVE_CLIPS` clip the *sitting*, *hello* and *stop*
    shares are errors."""
    counts = Counter(label for postures, gestures in labels for label in (*postures, *gestures))
    n = sum(len(postures) for postures, _ in labels)
    return n, {label: counts[label] / n if n else float("nan") for label in POSTURES + GESTURES}


def lift_checks(results: list[FrameResult], config: ClassifierConfig) -> tuple[np.ndarray, np.ndarray]:
    """What the default rules' two checks on the lifter's 3D pose measure, over a stream's
    results: the knee error of every lifted person-frame whose knees and torso are seen
    (:func:`~posestream.stream.classify.rules.knee_reprojection`, torso lengths; compared with
    ``knee_error_3d``), and the 3D rise of every arm the 2D rules alone read raised
    (:func:`~posestream.stream.classify.rules.forearm_rise`, degrees; compared with
    ``forearm_rise_3d``). Keypoints score from ``config.keypoint_threshold``.

    Returns:
        ``(knee_errors, rises)``: float64 1-D arrays.
    """
    flat = ClassifierConfig(**{**config.__dict__, "gesture_source": "2d"})
    errors, rises = [], []
    for result in results:
        if result.keypoints_3d is None:
            continue
        for keypoints, scores, lifted in zip(result.keypoints, result.keypoint_scores, result.keypoints_3d):
            if not np.all(np.isfinite(lifted)):
                continue
            error = knee_reprojection(keypoints, scores >= config.keypoint_threshold, lifted)
            if error is not None:
                errors.append(error)
            rise = forearm_rise(lifted)
            rises += [rise[a] for a, raised in enumerate(arm_readings(keypoints, scores, flat)) if raised]
    return np.asarray(errors, np.float64), np.asarray(rises, np.float64)


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 of one class and its support (labelled person-frames)."""

    precision: float
    recall: float
    f1: float
    support: int


def score(truth: list[str], predicted: list[str], classes: tuple[str, ...]) -> tuple[dict[str, ClassScores], float]:
    """Per-class precision/recall/F1 (NaN where undefined) and frame accuracy.

    Returns:
        ``(per_class, accuracy)``; accuracy is the fraction of person-frames labelled right
        (NaN with no labelled frames).
    """
    truth_a, pred_a = np.asarray(truth), np.asarray(predicted)
    per_class = {}
    for cls in classes:
        tp = int(np.sum((truth_a == cls) & (pred_a == cls)))
        fp = int(np.sum((truth_a != cls) & (pred_a == cls)))
        fn = int(np.sum((truth_a == cls) & (pred_a != cls)))
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        per_class[cls] = ClassScores(precision, recall, f1, tp + fn)
    accuracy = float(np.mean(truth_a == pred_a)) if len(truth_a) else float("nan")
    return per_class, accuracy


def load_coco_postures(labels: str | Path, media: str | Path) -> list[dict]:
    """The people of a COCO posture labels file (``tests/data/coco-mini-postures.csv``: ``split,
    annotation_id,posture,what``; ``#`` comments; ``ignore`` rows left out) with COCO's marks for
    them, from ``media/coco-mini/annotations/person_keypoints_<split>.json``.

    Returns:
        one dict per person: ``split``, ``file`` (image name), ``size`` (width, height), ``bbox``
        (4,) float32 x, y, w, h pixels, ``keypoints`` (17, 2) float32 pixels, ``keypoint_scores``
        (17,) float32 (1 where COCO marks the keypoint, visible or not), ``posture``.

    Raises:
        FileNotFoundError: the labels or COCO's annotation files are missing. KeyError: a
            labelled annotation id is not in them.
    """
    media = Path(media)
    rows = [r for r in csv.DictReader(line for line in Path(labels).read_text().splitlines() if not line.startswith("#"))
            if r["posture"] != "ignore"]
    people = []
    for split in sorted({r["split"] for r in rows}):
        coco = json.loads((media / "coco-mini" / "annotations" / f"person_keypoints_{split}.json").read_text())
        images = {im["id"]: im for im in coco["images"]}
        annotations = {a["id"]: a for a in coco["annotations"]}
        for r in (r for r in rows if r["split"] == split):
            a = annotations[int(r["annotation_id"])]
            image = images[a["image_id"]]
            marks = np.asarray(a["keypoints"], np.float32).reshape(17, 3)
            people.append({"split": split, "file": image["file_name"], "size": (image["width"], image["height"]),
                           "bbox": np.asarray(a["bbox"], np.float32), "keypoints": marks[:, :2],
                           "keypoint_scores": (marks[:, 2] > 0).astype(np.float32), "posture": r["posture"]})
    return people
