"""Tracking quality without full ground truth: visits, fragments, and agreement between runs.

* On clips where one person at a time visits (``person,start,end`` CSV of visits): each visit
  should be one track — ``fragments`` counts the extra track ids inside visit cores, ``coverage``
  the core frames where someone is reported, ``false_frames`` the frames of the empty room
  (gap cores) where someone is reported.
* On multi-person clips: ``interior_births`` — tracks that start after the first frame away from
  the frame border (a person cannot appear in the middle of the picture, so each is a fragment
  or a late find) — and the agreement of a run (e.g. detection every N frames) with a reference
  run (every frame): per frame, poses matched one-to-one by OKS (Hungarian, SciPy).
* Appearance: how far apart the descriptors the tracker finds lost people by are for one
  person over time and for two people at once (``appearance_separation``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from posestream.stream.track.appearance import appearance_distance
from posestream.stream.track.matching import keypoint_bboxes, oks
from posestream.stream.results import FrameResult


def load_visits(path: str | Path) -> list[tuple[int, int]]:
    """(start, end) 1-based inclusive frame ranges of a visits CSV (``person,start,end``)."""
    rows = [line for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [(int(r["start"]), int(r["end"])) for r in csv.DictReader(rows)]


@dataclass(frozen=True)
class VisitScores:
    """Per-clip scores against visits (see module docstring)."""

    visits: int
    fragments: int
    coverage: float
    false_frames: int


def score_visits(results: list[FrameResult], visits: list[tuple[int, int]], trim: int = 15) -> VisitScores:
    """Score one-person-at-a-time tracking against visit ranges (frames beyond the results are ignored)."""
    by_frame = {r.frame_id: r for r in results}
    last = max(by_frame) if by_frame else 0
    fragments, covered, core_frames = 0, 0, 0
    scored = 0
    for start, end in visits:
        frames = [f for f in range(start + trim, end - trim + 1) if f <= last]
        if not frames:
            continue
        scored += 1
        ids = set()
        for f in frames:
            r = by_frame[f]
            core_frames += 1
            covered += len(r) > 0
            ids.update([] if r.track_ids is None else r.track_ids.tolist())
        fragments += max(len(ids) - 1, 0)
    gaps = [(1, visits[0][0] - 1)] + [(a[1] + 1, b[0] - 1) for a, b in zip(visits, visits[1:])] + [(visits[-1][1] + 1, last)]
    false_frames = sum(len(by_frame[f]) > 0 for s, e in gaps for f in range(s + trim, e - trim + 1) if f in by_frame)
    return VisitScores(scored, fragments, covered / core_frames if core_frames else float("nan"), false_frames)


def interior_births(results: list[FrameResult], margin: float = 0.05) -> tuple[int, int]:
    """``(tracks, interior_births)``: distinct track ids, and those whose first box lies wholly
    inside the frame shrunk by ``margin`` (fraction of each side) and whose first frame is not
    the first frame of the clip."""
    first: dict[int, tuple[int, np.ndarray, int, int]] = {}
    start = results[0].frame_id if results else 1
    for r in results:
        for tid, box in zip([] if r.track_ids is None else r.track_ids.tolist(), r.bboxes):
            first.setdefault(tid, (r.frame_id, box, r.width, r.height))
    births = 0
    for frame_id, box, w, h in first.values():
        inside = box[0] > margin * w and box[1] > margin * h and box[2] < (1 - margin) * w and box[3] < (1 - margin) * h
        births += bool(inside and frame_id > start)
    return len(first), births


def agreement(results: list[FrameResult], reference: list[FrameResult], threshold: float = 0.5) -> dict[str, float]:
    """How well ``results`` reproduce ``reference`` (same frames): poses matched one-to-one per
    frame by OKS (reference keypoints' box area, keypoints scored ≥ 0.3 on the reference side).

    Returns:
        ``recall`` (reference poses matched with OKS ≥ threshold), ``precision`` (result poses
        matched), ``mean_oks`` (over matched pairs).
    """
    matched, total_ref, total_res, oks_sum = 0, 0, 0, 0.0
    for r, ref in zip(results, reference):
        total_ref += len(ref)
        total_res += len(r)
        if not len(ref) or not len(r):
            continue
        visible = ref.keypoint_scores >= 0.3
        boxes = keypoint_bboxes(ref.keypoints, visible, 1.0, ref.bboxes)
        areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 1, None), axis=1)
        similarity = oks(ref.keypoints, r.keypoints, areas, visible)
        rows, cols = linear_sum_assignment(-similarity)
        good = similarity[rows, cols] >= threshold
        matched += int(good.sum())
        oks_sum += float(similarity[rows, cols][good].sum())
    return {"recall": matched / total_ref if total_ref else float("nan"),
            "precision": matched / total_res if total_res else float("nan"),
            "mean_oks": oks_sum / matched if matched else float("nan")}


def appearance_separation(descriptors: list[tuple[float, int, np.ndarray]], gap: float = 1.0
                          ) -> tuple[np.ndarray, np.ndarray]:
    """How well appearance descriptors (:func:`~posestream.stream.track.appearance.appearance_histograms`)
    tell people apart: Bhattacharyya distances between the same track's descriptors ``gap``
    seconds apart (each descriptor against the first of that track at least ``gap`` later), and
    between every two tracks' descriptors of one frame.

    Args:
        descriptors: ``(pts seconds, track_id, (D,) descriptor)`` per reported person-frame,
            NaN descriptors allowed (left out).

    Returns:
        ``(same, different)``: float64 1-D arrays of distances.
    """
    rows = [(t, tid, d) for t, tid, d in descriptors if np.isfinite(d).all()]
    by_track: dict[int, list[tuple[float, np.ndarray]]] = {}
    by_time: dict[float, list[tuple[int, np.ndarray]]] = {}
    for t, tid, d in rows:
        by_track.setdefault(tid, []).append((t, d))
        by_time.setdefault(t, []).append((tid, d))
    same = []
    for seq in by_track.values():
        times = np.array([t for t, _ in seq])
        for t, d in seq:
            later = np.flatnonzero(times >= t + gap)
            if len(later):
                same.append(appearance_distance(d, seq[later[0]][1]))
    different = [appearance_distance(a, b) for people in by_time.values()
                 for i, (ta, a) in enumerate(people) for tb, b in people[i + 1:] if ta != tb]
    return np.asarray(same, np.float64), np.asarray(different, np.float64)
