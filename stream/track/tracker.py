"""Multi-person tracking: stable ``track_id``s, boxes between detections, One-Euro smoothing.

The scheme of MMDeploy's PoseTracker (DESIGN.md §3): the detector runs every N frames; in
between, each person's box is the box of their last keypoints (×1.25), carried forward by a
constant-velocity Kalman filter (OpenCV's ``cv2.KalmanFilter``) over the real time between
frames. New poses are matched to tracks by the Hungarian algorithm (SciPy's
``linear_sum_assignment``) on box IoU and keypoint OKS (for a track missed in the last frame,
the better of the whole body's and the trunk's, ``COCO17_TRUNK``), born tracks before tentative
ones, boxes cut to the frame; a track is born after ``min_hits`` matched frames (and, where the
caller gives one, a second look of the detector at its box, ``verify_zoom``) and dropped
after ``max_missing`` frames and ``max_missing_seconds`` without a match, counted from its last
pose or, for up to ``hold_seconds``, from the last detector box on it. Poses the pose model flags
as no person continue a born track only where the person is cut by the frame's edge
(:func:`edge_poses`). A track due to be born takes the id of a born track lost meanwhile that
was near, of a like size and, where the caller gives descriptors, alike in colour
(``reid_distance``, ``reid_scale``, ``reid_appearance``; :mod:`.appearance`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from posestream.engines.layouts import COCO17_SIGMAS, COCO17_TRUNK
from posestream.stream.track.appearance import appearance_distance
from posestream.stream.track.matching import box_containment, box_iou, keypoint_bboxes, oks, pose_nms
from posestream.stream.track.smoothing import OneEuroFilter


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking and smoothing settings (``tracking:`` in the YAML configs).

    Attributes:
        detect_interval: run the detector every this many frames (1 = every frame); between
            detections boxes come from the tracks.
        iou_threshold: a pose may join a track when the IoU of their boxes is at least this
            (0.4, MMDeploy PoseTracker) ...
        oks_threshold: ... or when the OKS of their keypoints is at least this.
        merge_containment: on detection frames, a detected box is the same person as a track's
            box when the two are paired one-to-one (Hungarian) and their intersection covers at
            least this fraction of the smaller box, with areas within ``merge_area_ratio`` of
            each other; the track's crop is kept (one crop per person). IoU is the wrong measure
            here: a keypoint box ×1.25 and a detector box of the same person overlap by IoU
            0.26–0.44 only.
        merge_area_ratio: smallest ratio of the smaller to the larger area for such a pair.
        pose_nms_threshold: poses whose OKS with a better-scored pose of the same frame exceeds
            this are duplicates and dropped (OKS-NMS; 0.5 as MMDeploy's PoseTracker).
        pose_nms_iou: ... as are poses whose keypoints' box overlaps a better-scored one's by
            more than this IoU: two skeletons fitted to one body (on a close-up, BlazePose fits
            whole bodies to the arms), whose keypoints differ too much for OKS. Measured on
            reported people: distinct people in the vtest and openpose crowds overlap by at most
            0.70 and 0.63 (13332 pairs); the hand-reach close-up's duplicates by 0.60 / 0.74 (10th
            percentile / median).
        birth_score: only poses in boxes scoring at least this start a track; weaker detections
            can only continue one (ByteTrack starts tracks above its track threshold + 0.1 = 0.6;
            this keeps an armchair that YOLOX-Nano scores 0.3-0.5 from becoming a person).
        min_hits: matched frames before a track is born and reported (the first frames of a
            stream report at once, as SORT does).
        max_missing: frames a track survives without a match (10, MMDeploy PoseTracker) ...
        max_missing_seconds: ... or seconds since its last match, whichever lasts longer (the
            same gap at 10 and 60 fps: a person hidden for half a second keeps the id).
        hold_seconds: a born track whose pose is lost while the detector still finds a box on
            it (the ``merge_containment`` test against the track's box, both cut to the image)
            counts that frame as seen for ``max_missing_seconds`` (a box across the frame's edge
            stops there), for up to this many seconds after its last pose taken for a person
            (edge poses, ``edge_poses``, do not extend it): a person half out of
            the frame, whom BlazePose's pose flag drops while YOLOX still boxes them, keeps the id
            when they come back in.
        verify_zoom: before a track is born, the detector looks again at its box on a crop
            enlarged up to this many times (:func:`~posestream.stream.detect.second_look.second_look`),
            and the track is born only if a person is found there: a sofa armrest that YOLOX-Nano
            boxes as a person at frame scale is no person at 2.5× (``tools/second_look_eval.py``:
            the armrest found in 0 of 11 looks, the shared clips' people in 1428 of 1438). 0: no
            second look.
        verify_seconds: a track refused by the second look is looked at again after this long
            (seconds), and born as soon as a look finds a person (0.5 s, set by hand, not tuned:
            a person refused once is reported half a second late, and a refused object costs a
            detector run every half second while its tentative track lasts).
        reid_distance: a track due to be born takes over the id of a born track lost meanwhile
            (unmatched in every frame the new track has lived, not yet dropped: ``max_missing`` /
            ``max_missing_seconds``, or ``hold_seconds`` while the detector boxes it) when its box
            centre is within this many of the lost track's box heights of that track's last
            matched box, the heights within ``reid_scale`` of each other (the nearest, one to
            one: Hungarian), and, where the caller gives appearances, the two look alike
            (``reid_appearance``). A person the detector misses for a few frames while they move
            or the camera pans comes back too far for IoU and OKS, whose tolerance shrinks with
            the person's size, and was a new person (mmaction2-basketball: two players, 8 ids).
            1.0 box height (about 1.1 body heights: eyes to ankles x 1.25): a walk at 1.4 m/s
            over a lost track's usual 1 s life covers 0.8 body heights; set by that, not tuned.
            0: no re-identification.
        reid_scale: ... largest ratio of the two boxes' heights (a person's box grows by a
            quarter with arms raised) ...
        reid_appearance: ... and largest Bhattacharyya distance between the colour histograms
            of their trunk and thighs (:mod:`~posestream.stream.track.appearance`; 1: any). In a
            crowd the nearest lost track is often someone else (opencv-vtest: a man in a dark
            jacket took the id of a woman in a white hooded one, by position alone). Chosen on
            opencv-vtest: the same person's histograms 1 s apart are within 0.6 in 89 % of
            pairs, two people seen in one frame farther apart in 91 % (``tools/eval_tracking.py
            --appearance``; held out, openpose-video: 93 % / 88 %; mmaction2-basketball's
            players, blurred and 70-120 px tall: 68 % / 100 %).
        edge_poses: a pose the pose model flags as no person (under the pipeline's
            ``pose_score_threshold``) may still continue a born track, never start or feed a
            tentative one, when its crop is cut by the frame's edge (reaches within 1 % of the
            frame's width of it), a shoulder and a hip are seen inside the picture and a detector
            box of this frame covers its crop (the ``merge_containment`` test), for up to
            ``hold_seconds`` after the track's last pose taken for a person, and unless it
            duplicates such a pose of this frame (``pose_nms_threshold``, ``pose_nms_iou``):
            BlazePose's flag falls to 0.00–0.46 for a person half out of the frame whose trunk it
            still places (har-wave seen half outside, ``tools/edge_coverage.py``), and the person
            was reported with ~1 s gaps. The detector's box and the time limit keep a track from
            living on as a ghost on the background beside the edge; the detector runs on every
            frame after an edge pose (:meth:`Tracker.needs_detection`).
        keypoint_threshold: keypoints with a lower score are not used for boxes or OKS.
        bbox_padding: scale of the keypoints' box about its centre (1.25).
        smoothing: One-Euro filter on each track's keypoints.
        min_cutoff, beta, d_cutoff: One-Euro parameters, Hz / (1/pixel) / Hz (1.0, 0.007, 1.0 as
            MMDeploy's PoseTracker).
    """

    detect_interval: int = 1
    iou_threshold: float = 0.4
    oks_threshold: float = 0.5
    merge_containment: float = 0.7
    merge_area_ratio: float = 0.3
    pose_nms_threshold: float = 0.5
    pose_nms_iou: float = 0.7
    birth_score: float = 0.6
    min_hits: int = 3
    max_missing: int = 10
    max_missing_seconds: float = 1.0
    hold_seconds: float = 3.0
    verify_zoom: float = 2.5
    verify_seconds: float = 0.5
    reid_distance: float = 1.0
    reid_scale: float = 1.5
    reid_appearance: float = 0.6
    edge_poses: bool = True
    keypoint_threshold: float = 0.3
    bbox_padding: float = 1.25
    smoothing: bool = True
    min_cutoff: float = 1.0
    beta: float = 0.007
    d_cutoff: float = 1.0

    def __post_init__(self):
        if (self.detect_interval < 1 or self.min_hits < 1 or self.max_missing < 0 or not self.max_missing_seconds >= 0
                or not self.hold_seconds >= 0 or not self.verify_zoom >= 0 or not self.verify_seconds >= 0
                or not self.reid_distance >= 0 or not self.reid_scale >= 1 or not 0 <= self.reid_appearance <= 1):
            raise ValueError("tracking: detect_interval and min_hits must be ≥ 1, max_missing, "
                             "max_missing_seconds, hold_seconds, verify_zoom, verify_seconds and reid_distance "
                             "≥ 0, reid_scale ≥ 1, reid_appearance from 0 to 1")


def _xyxy_to_cxcywh(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]], np.float32)


def _cxcywh_to_xyxy(state: np.ndarray) -> np.ndarray:
    cx, cy, w, h = (float(v) for v in state[:4])
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


class BoxKalman:
    """Kalman filter over a box: constant velocity for the centre, a random walk for width and
    height (a size trend carried through missing frames would shrink or blow up the box).

    Noise scales with the box height as in DeepSORT (position σ = h/20, velocity σ = h/160 per
    frame at 10 fps, here per 0.1 s), so the filter behaves the same for near and far people.

    Args:
        box: (4,) x1, y1, x2, y2 pixels, the first measurement.
    """

    position_std = 1 / 20
    velocity_std = 1 / 16  # per second (1/160 per 0.1 s step)

    def __init__(self, box: np.ndarray):
        self.kf = cv2.KalmanFilter(8, 4, 0, cv2.CV_32F)
        self.kf.measurementMatrix = np.eye(4, 8, dtype=np.float32)
        z = _xyxy_to_cxcywh(box)
        self.kf.statePost = np.concatenate([z, np.zeros(4, np.float32)]).reshape(8, 1)
        # width/height rates are never used (see predict); keep them at 0
        h = max(float(z[3]), 1.0)
        std = np.array([2 * self.position_std * h] * 4 + [10 * self.velocity_std * h] * 4, np.float32)
        self.kf.errorCovPost = np.diag(std ** 2).astype(np.float32)

    @property
    def box(self) -> np.ndarray:
        """(4,) float32 x1, y1, x2, y2 of the current state estimate."""
        return _cxcywh_to_xyxy(self.kf.statePost.ravel())

    def predict(self, dt: float) -> np.ndarray:
        """Advance ``dt`` seconds; returns the predicted (4,) box."""
        dt = max(float(dt), 1e-3)
        transition = np.eye(8, dtype=np.float32)
        transition[0, 4] = transition[1, 5] = dt  # centre moves with its velocity; size rates stay 0
        self.kf.transitionMatrix = transition
        h = max(float(self.kf.statePost[3, 0]), 1.0)
        q = np.array([self.position_std * h * dt * 10] * 4 + [self.velocity_std * h * dt] * 4, np.float32)
        self.kf.processNoiseCov = np.diag(q ** 2).astype(np.float32)
        state = self.kf.predict()
        self.kf.statePost = state.copy()
        self.kf.errorCovPost = self.kf.errorCovPre.copy()
        return _cxcywh_to_xyxy(state.ravel())

    def stop(self) -> None:
        """Set the centre's velocity to zero (the box stays where it is until measured again)."""
        state = self.kf.statePost.copy()
        state[4:6] = 0
        self.kf.statePost = state

    def correct(self, box: np.ndarray) -> None:
        """Fold in a measured (4,) box."""
        z = _xyxy_to_cxcywh(box)
        r = np.array([self.position_std * max(float(z[3]), 1.0)] * 4, np.float32)
        self.kf.measurementNoiseCov = np.diag(r ** 2).astype(np.float32)
        self.kf.correct(z.reshape(4, 1))


def cut_to_frame(boxes: np.ndarray, image_size: tuple[int, int] | None) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 pixel boxes cut to a (width, height) frame (unchanged when None):
    the part of a person's box outside the picture is guessed, not seen, so boxes are compared
    on the part inside it."""
    if image_size is None:
        return boxes
    return np.clip(boxes, 0, np.tile(np.asarray(image_size, np.float32), 2)).astype(np.float32)


#: How near the frame's edge (fraction of its width) a crop must reach to count as cut by it.
EDGE_MARGIN = 0.01


def edge_poses(keypoints: np.ndarray, visible: np.ndarray, crop_bboxes: np.ndarray, detected: np.ndarray | None,
               image_size: tuple[int, int] | None, containment: float, area_ratio: float) -> np.ndarray:
    """Which poses of people cut by the frame's edge are kept although the pose model flags
    them as no person (:attr:`TrackerConfig.edge_poses`).

    Args:
        keypoints: (N, 17, 2) float32 COCO-17 pixels. visible: (N, 17) bool, scores reaching
            ``keypoint_threshold``.
        crop_bboxes: (N, 4) float32 x1, y1, x2, y2 pixels, the crops the poses came from.
        detected: (D, 4) float32 pixels, this frame's detector boxes; None or empty: no pose kept.
        image_size: (width, height) pixels; None: no pose kept (no edge known).
        containment, area_ratio: the detector box must cover this fraction of the crop cut to
            the frame, with areas within this ratio (:func:`~posestream.stream.track.matching.box_containment`).

    Returns:
        (N,) bool: crop within :data:`EDGE_MARGIN` of an edge (or across it), a shoulder and a
        hip (COCO 5/6 and 11/12) visible inside the picture, and covered by a detector box.
    """
    n = len(keypoints)
    if image_size is None or detected is None or not len(detected) or not n or keypoints.shape[1] != 17:
        return np.zeros(n, bool)
    width, height = image_size
    margin = EDGE_MARGIN * width
    boxes = np.asarray(crop_bboxes, np.float32).reshape(n, 4)
    cut = ((boxes[:, 0] <= margin) | (boxes[:, 1] <= margin)
           | (boxes[:, 2] >= width - margin) | (boxes[:, 3] >= height - margin))
    inside = visible & (keypoints[..., 0] >= 0) & (keypoints[..., 0] < width) & \
        (keypoints[..., 1] >= 0) & (keypoints[..., 1] < height)
    shoulders, hips = list(COCO17_TRUNK[:2]), list(COCO17_TRUNK[2:])
    trunk = inside[:, shoulders].any(axis=1) & inside[:, hips].any(axis=1)  # a shoulder, a hip
    covered = box_containment(np.asarray(detected, np.float32).reshape(-1, 4), cut_to_frame(boxes, image_size),
                              area_ratio).max(axis=0) >= containment
    return cut & trunk & covered


class Track:
    """One person followed over time (internal to :class:`Tracker`)."""

    def __init__(self, track_id: int, box: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 bbox_score: float, t: float, config: TrackerConfig):
        self.track_id = track_id
        self.kalman = BoxKalman(box)
        self.box = np.asarray(box, np.float32)  # last matched box (x1, y1, x2, y2)
        self.appearance: np.ndarray | None = None  # last descriptor (appearance.py) of a pose taken for a person
        self.keypoints, self.keypoint_scores = keypoints, scores
        self.bbox_score = bbox_score
        self.t = t
        self.person_t = t  # last pose the pose model took for a person (not an edge pose)
        self.seen = t  # last pose, or last detector box on it within hold_seconds of one
        self.hits, self.missing, self.confirmed = 1, 0, False
        self.refused_at = -np.inf  # seconds: the second look's last refusal (none: -inf)
        self.smoother = OneEuroFilter(config.min_cutoff, config.beta, config.d_cutoff) if config.smoothing else None
        self.roi: np.ndarray | None = None  # the pose model's crop for the next frame, if it gives one
        self.smoothed = self._smooth(keypoints, t)

    @property
    def edge(self) -> bool:
        """Last matched by an edge pose (its last match is later than its last person pose):
        its next crops are detector boxes, not its keypoints' box."""
        return self.t > self.person_t

    def held(self, t: float, hold_seconds: float) -> bool:
        """Whether ``t`` (seconds) is at most ``hold_seconds`` after its last pose taken for a
        person: the detector's boxes and edge poses may still keep it."""
        return 0 <= t - self.person_t <= hold_seconds

    def _smooth(self, keypoints: np.ndarray, t: float) -> np.ndarray:
        return keypoints if self.smoother is None else self.smoother(keypoints, t).astype(np.float32)

    def update(self, box: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, bbox_score: float, t: float) -> None:
        self.kalman.correct(box)
        self.box = np.asarray(box, np.float32)
        self.keypoints, self.keypoint_scores, self.bbox_score, self.t = keypoints, scores, bbox_score, t
        self.seen = t
        self.hits += 1
        self.missing = 0
        self.smoothed = self._smooth(keypoints, t)


@dataclass
class TrackedPeople:
    """People reported for one frame by :meth:`Tracker.update` (only born tracks matched this frame).

    Attributes:
        index: (n,) int64 rows of the poses passed to ``update``.
        track_ids: (n,) int64.
        keypoints: (n, K, 2) float32 pixels, smoothed when smoothing is on.
        bboxes: (n, 4) float32 pixels, the tracks' corrected boxes.
    """

    index: np.ndarray
    track_ids: np.ndarray
    keypoints: np.ndarray
    bboxes: np.ndarray


class Tracker:
    """Assigns persistent ``track_id``s to the poses of successive frames of one stream.

    Per frame: :meth:`predict` (boxes where the tracks should be now, to crop the pose model
    on frames without detection), then :meth:`update` with that frame's poses.

    Args:
        config: :class:`TrackerConfig`.
        first_track_id: id of the first new track (a stream taken up again after a fault goes
            on above the ids it already used).
    """

    def __init__(self, config: TrackerConfig = TrackerConfig(), first_track_id: int = 1):
        self.config = config
        self.tracks: list[Track] = []
        self.frames = 0
        self._next_id = int(first_track_id)
        self._t: float | None = None

    @property
    def next_track_id(self) -> int:
        """The id the next new track will get."""
        return self._next_id

    def is_detection_frame(self) -> bool:
        """Whether the frame about to be processed should run the detector."""
        return self.frames % self.config.detect_interval == 0 or self.needs_detection()

    def needs_detection(self) -> bool:
        """Whether the frame being processed (the one given to the last :meth:`predict`) needs
        the detector whatever ``detect_interval`` says: no track, or one last seen by an edge
        pose that may still take one (it has no crop of its own)."""
        return not self.tracks or any(self._edge_open(tr) for tr in self.tracks)

    def _edge_open(self, track: Track) -> bool:
        """A track last seen by an edge pose whose last pose taken for a person is at most
        ``hold_seconds`` old: edge poses may still continue it."""
        return track.edge and self._t is not None and track.held(self._t, self.config.hold_seconds)

    def predict(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance every track to time ``t`` (seconds).

        Returns:
            ``(bboxes, scores, rois)`` of the tracks seen in the last frame by a pose the pose
            model takes for a person (an edge pose's keypoints make a poor crop: the detector's
            box is that track's crop) — the crops for this frame: (T, 4) float32 predicted
            boxes (pixels), (T,) float32 their last box scores, and (T, 4) float32 the pose
            model's crop regions (cx, cy, side, rotation; NaN where
            the model gives none), moved with the box's predicted shift.
        """
        dt = 0.0 if self._t is None else t - self._t
        boxes, scores, rois = [], [], []
        for track in self.tracks:
            before = track.kalman.box
            box = track.kalman.predict(dt) if dt > 0 else before
            if track.missing == 0 and not track.edge:
                boxes.append(box)
                scores.append(track.bbox_score)
                roi = np.full(4, np.nan, np.float32) if track.roi is None else track.roi.copy()
                roi[:2] += (box[:2] + box[2:]) / 2 - (before[:2] + before[2:]) / 2
                rois.append(roi)
        self._t = t
        return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                np.asarray(rois, np.float32).reshape(-1, 4))

    def merge(self, detected: np.ndarray, detected_scores: np.ndarray, tracked: np.ndarray,
              tracked_scores: np.ndarray, tracked_rois: np.ndarray | None = None,
              image_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Join detected and tracked boxes so that each person gets one crop: detections paired
        one-to-one with tracked boxes they overlap (see ``merge_containment``) are those tracks,
        already covered; the others are new people, except detections scoring under
        ``birth_score`` (which cannot start a track) away from every lost track (IoU under
        ``iou_threshold``).

        Args:
            detected: (D, 4) float32 pixels. detected_scores: (D,).
            tracked: (T, 4) float32 pixels. tracked_scores: (T,).
            tracked_rois: (T, 4) float32 crop regions of the tracks (:meth:`predict`), or None.
            image_size: (width, height) pixels: boxes are compared cut to the frame
                (:func:`cut_to_frame`); None: uncut.

        Returns:
            ``(bboxes, scores, rois)``: (n, 4), (n,), (n, 4) float32 — tracked boxes first; new
            people's rois are NaN.
        """
        if tracked_rois is None:
            tracked_rois = np.full((len(tracked), 4), np.nan, np.float32)
        if len(tracked) and len(detected):
            cover = box_containment(detected, cut_to_frame(tracked, image_size), self.config.merge_area_ratio)
            rows, cols = linear_sum_assignment(-cover)
            same = rows[cover[rows, cols] >= self.config.merge_containment]
            new = np.ones(len(detected), bool)
            new[same] = False
            detected, detected_scores = detected[new], detected_scores[new]
        # a weak detection can only continue a track (birth_score): crop it only where a track
        # was lost, so that the background's weak boxes cost no pose pass on every frame
        # (a track last seen by an edge pose has no crop of its own: a detection covering it is its crop)
        lost = [tr for tr in self.tracks if tr.missing > 0 or self._edge_open(tr)]
        weak = detected_scores < self.config.birth_score
        if weak.any():
            near_lost = np.zeros(int(weak.sum()), bool)
            if lost:
                boxes = cut_to_frame(np.stack([tr.kalman.box for tr in lost]), image_size)
                near_lost = box_iou(detected[weak], boxes).max(axis=1) >= self.config.iou_threshold
                edge = np.array([self._edge_open(tr) for tr in lost])
                if edge.any():
                    cover = box_containment(detected[weak], boxes[edge], self.config.merge_area_ratio)
                    near_lost |= cover.max(axis=1) >= self.config.merge_containment
            keep = ~weak
            keep[np.flatnonzero(weak)[near_lost]] = True
            detected, detected_scores = detected[keep], detected_scores[keep]
        return (np.concatenate([tracked, detected]).astype(np.float32),
                np.concatenate([tracked_scores, detected_scores]).astype(np.float32),
                np.concatenate([tracked_rois, np.full((len(detected), 4), np.nan, np.float32)]).astype(np.float32))

    def update(self, keypoints: np.ndarray, keypoint_scores: np.ndarray, bbox_scores: np.ndarray, t: float,
               crop_bboxes: np.ndarray | None = None, rois: np.ndarray | None = None,
               detected: np.ndarray | None = None, image_size: tuple[int, int] | None = None,
               verify: Callable[[np.ndarray], np.ndarray] | None = None,
               weak: np.ndarray | None = None, appearances: np.ndarray | None = None) -> TrackedPeople:
        """Match this frame's poses to the tracks and return the people to report.

        Args:
            keypoints: (N, K, 2) pixels. keypoint_scores: (N, K) in [0, 1].
            bbox_scores: (N,) scores of the boxes the poses were estimated in.
            t: frame time, seconds (the same as passed to :meth:`predict`).
            crop_bboxes: (N, 4) the boxes the poses came from (used when a pose has fewer
                than two confident keypoints).
            rois: (N, 4) the pose model's crop regions for each person's next frame
                (:attr:`posestream.stream.pose.PoseEstimates.rois`), or None.
            detected: (D, 4) pixels, this frame's detector boxes (all of them, posed or not),
                or None on frames without detection: a born track they cover keeps being seen
                (``hold_seconds``).
            image_size: (width, height) pixels of the frame; boxes are cut to it
                (:func:`cut_to_frame`) for IoU and that test (a person entering at the edge grows
                a box whose outside part jumps). None: not cut.
            verify: the second look (``verify_zoom``): (M, 4) float32 boxes, pixels, of the
                tracks due to be born → (M,) bool, whether each is a person; a refused track
                stays tentative (unreported) and is looked at again once ``verify_seconds`` have
                passed (or the clock went back); a lost person found again
                (``reid_distance``) is not looked at. None: no look. An exception it raises
                leaves this frame's matches applied and no track born or found again.
            weak: (N,) bool, poses the pose model flags as no person: with ``edge_poses`` those
                :func:`edge_poses` keeps may continue born tracks left unmatched by the others;
                the rest are ignored. None: all poses are people.
            appearances: (N, D) float32 descriptors of the poses
                (:func:`~posestream.stream.track.appearance.appearance_histograms`, NaN rows where
                not seen), kept per track for finding a lost person again (``reid_appearance``);
                None: position and size alone.

        Returns:
            :class:`TrackedPeople` — born tracks matched in this frame, in the order of the poses.
        """
        cfg = self.config
        self.frames += 1
        if self._t is None or t != self._t:
            self.predict(t)
        keypoints = np.asarray(keypoints, np.float32)
        visible = np.asarray(keypoint_scores) >= cfg.keypoint_threshold
        boxes = keypoint_bboxes(keypoints, visible, cfg.bbox_padding, crop_bboxes)
        weak = np.zeros(len(keypoints), bool) if weak is None else np.asarray(weak, bool)
        edge = np.zeros(len(keypoints), bool)
        if weak.any() and cfg.edge_poses and crop_bboxes is not None:
            crops = np.asarray(crop_bboxes, np.float32).reshape(-1, 4)
            edge[weak] = edge_poses(keypoints[weak], visible[weak], crops[weak], detected, image_size,
                                    cfg.merge_containment, cfg.merge_area_ratio)
            if edge.any() and not weak.all():  # a second crop of someone posed as a person is no one else
                rows = np.flatnonzero(~weak | edge)
                order = (~weak[rows]) + 0.5 * np.asarray(keypoint_scores, np.float32)[rows].mean(axis=1)
                kept = rows[pose_nms(keypoints[rows], visible[rows], crops[rows], order, cfg.pose_nms_threshold,
                                     cfg.pose_nms_iou)]
                edge &= np.isin(np.arange(len(keypoints)), kept)
        matches = self._associate(keypoints, visible, boxes, image_size, ~weak, edge, t)
        matched = set()
        for pose_index, track in matches:
            track.update(boxes[pose_index], keypoints[pose_index], keypoint_scores[pose_index],
                         float(bbox_scores[pose_index]), t)
            track.roi = None if rois is None else np.asarray(rois[pose_index], np.float32)
            if not weak[pose_index]:
                track.person_t = t
                if appearances is not None and np.isfinite(appearances[pose_index]).all():
                    track.appearance = np.asarray(appearances[pose_index], np.float32)
            matched.add(pose_index)
        missed = [tr for tr in self.tracks if all(tr is not m for _, m in matches)]
        for track in missed:
            track.missing += 1  # (an edge track stays one: a weak detection covering it is still kept as its crop)
        held = [tr for tr in missed if tr.confirmed and tr.held(t, cfg.hold_seconds)]
        if held and detected is not None and len(detected):
            cover = box_containment(np.asarray(detected, np.float32).reshape(-1, 4),
                                    cut_to_frame(np.stack([tr.kalman.box for tr in held]), image_size),
                                    cfg.merge_area_ratio)
            for track, covered in zip(held, cover.max(axis=0) >= cfg.merge_containment):
                if covered:
                    track.seen = t
                    box = track.kalman.box[None]
                    if np.any(cut_to_frame(box, image_size) != box):  # across the edge: seen inside the
                        track.kalman.stop()  # picture, not coasting out of it
        self.tracks = [tr for tr in self.tracks
                       if tr.missing == 0 or (tr.confirmed and (tr.missing <= cfg.max_missing
                                                                 or 0 <= t - tr.seen <= cfg.max_missing_seconds))]
        for i in range(len(keypoints)):
            if i not in matched and not weak[i] and bbox_scores[i] >= cfg.birth_score:
                track = Track(0, boxes[i], keypoints[i], keypoint_scores[i], float(bbox_scores[i]), t, cfg)
                track.roi = None if rois is None else np.asarray(rois[i], np.float32)
                if appearances is not None and np.isfinite(appearances[i]).all():
                    track.appearance = np.asarray(appearances[i], np.float32)
                self.tracks.append(track)
                matches.append((i, track))
        due = [tr for _, tr in matches if not tr.confirmed and (tr.hits >= cfg.min_hits or self.frames <= cfg.min_hits)
               and not 0 <= t - tr.refused_at < cfg.verify_seconds]
        lost = [tr for tr in self.tracks if tr.confirmed and tr.missing > 0]
        returning = self._returning(due, lost)  # a lost person found again too far for IoU / OKS
        due = [tr for tr in due if all(tr is not new for new, _ in returning)]  # a return needs no second look
        if due and verify is not None and cfg.verify_zoom > 0:
            people = np.asarray(verify(np.stack([tr.kalman.box for tr in due])), bool)
            for track in (tr for tr, person in zip(due, people) if not person):
                track.refused_at = t
            due = [tr for tr, person in zip(due, people) if person]
        for track, old in returning:
            track.confirmed, track.track_id = True, old.track_id
            self.tracks.remove(old)
        for track in due:
            track.confirmed = True
            track.track_id = self._next_id
            self._next_id += 1
        reported = []
        for pose_index, track in matches:
            if track.confirmed:
                reported.append((pose_index, track))
        reported.sort(key=lambda item: item[0])
        return TrackedPeople(
            index=np.asarray([i for i, _ in reported], np.int64),
            track_ids=np.asarray([tr.track_id for _, tr in reported], np.int64),
            keypoints=np.asarray([tr.smoothed for _, tr in reported], np.float32).reshape(-1, *keypoints.shape[1:]),
            bboxes=np.asarray([tr.kalman.box for _, tr in reported], np.float32).reshape(-1, 4),
        )

    def _associate(self, keypoints: np.ndarray, visible: np.ndarray, boxes: np.ndarray,
                   image_size: tuple[int, int] | None, people: np.ndarray, edge: np.ndarray, t: float
                   ) -> list[tuple[int, Track]]:
        """Hungarian matching on the mean of IoU (of the boxes cut to the frame) and OKS; pairs
        below both thresholds never match. Born tracks are matched to the ``people`` poses
        ((N,) bool) first, the born tracks left that saw a person's pose within ``hold_seconds``
        of ``t`` to the ``edge`` poses ((N,) bool, see :func:`edge_poses`) next, then the
        tentative tracks to the people's poses left (DeepSORT's order: a person briefly lost is
        not taken over by the tentative track a stray crop of them started). Other poses match
        nothing."""
        if not self.tracks or not len(keypoints):
            return []
        cfg = self.config
        track_boxes = np.stack([tr.kalman.box for tr in self.tracks])
        iou = box_iou(cut_to_frame(boxes, image_size), cut_to_frame(track_boxes, image_size))  # (N, T)
        # compare with each track's last keypoints moved by the Kalman-predicted box shift
        shift = np.stack([(tr.kalman.box[:2] + tr.kalman.box[2:]) / 2 - self._keypoint_centre(tr) for tr in self.tracks])
        track_points = np.stack([tr.keypoints for tr in self.tracks]) + shift[:, None, :]
        track_visible = np.stack([tr.keypoint_scores >= cfg.keypoint_threshold for tr in self.tracks])
        areas = np.prod(np.clip(track_boxes[:, 2:] - track_boxes[:, :2], 1, None), axis=1) / cfg.bbox_padding ** 2
        similarity_oks = oks(track_points, keypoints, areas, track_visible, visible).T  # (N, T)
        lost = np.array([tr.missing > 0 for tr in self.tracks])
        if keypoints.shape[1] == 17 and lost.any():
            # a lost track is found again by its trunk (shoulders, hips) alone too: arms and legs
            # swung out while it was missed (exercise, a jump) change the box's shape and most
            # keypoints, not the trunk
            trunk = list(COCO17_TRUNK)
            trunk_oks = oks(track_points[lost][:, trunk], keypoints[:, trunk], areas[lost],
                            track_visible[lost][:, trunk], visible[:, trunk], COCO17_SIGMAS[trunk]).T
            similarity_oks[:, lost] = np.maximum(similarity_oks[:, lost], trunk_oks)
        allowed = (iou >= cfg.iou_threshold) | (similarity_oks >= cfg.oks_threshold)
        cost = np.where(allowed, 1.0 - (iou + similarity_oks) / 2, 10.0)
        matches = []
        taken = np.zeros(len(self.tracks), bool)
        born = np.array([tr.confirmed for tr in self.tracks])
        recent = born & np.array([tr.held(t, cfg.hold_seconds) for tr in self.tracks]) if edge.any() else born
        for rows_of, columns_of in ((people, born), (edge, recent), (people, ~born)):
            free = np.setdiff1d(np.flatnonzero(rows_of), [r for r, _ in matches])
            columns = np.flatnonzero(columns_of & ~taken)
            if not len(columns) or not len(free):
                continue
            rows, cols = linear_sum_assignment(cost[np.ix_(free, columns)])
            pairs = [(int(free[r]), int(columns[c])) for r, c in zip(rows, cols) if allowed[free[r], columns[c]]]
            matches += [(r, self.tracks[c]) for r, c in pairs]
            taken[[c for _, c in pairs]] = True
        return matches

    def _returning(self, due: list[Track], lost: list[Track]) -> list[tuple[Track, Track]]:
        """Pairs (new track, lost track) of :attr:`TrackerConfig.reid_distance`: the lost track
        unmatched in every frame the new one has lived (someone seen beside the newcomer is not
        their return), the new box's centre within that many of the lost track's box heights of
        its last matched box, the heights within ``reid_scale``, their descriptors (where either
        has one) within ``reid_appearance``; the nearest pairs first (Hungarian on the distance)."""
        cfg = self.config
        if not due or not lost or cfg.reid_distance <= 0:
            return []
        new, old = np.stack([tr.box for tr in due]), np.stack([tr.box for tr in lost])
        heights = np.clip(old[:, 3] - old[:, 1], 1e-6, None)  # (L,)
        centres = lambda b: (b[:, :2] + b[:, 2:]) / 2  # noqa: E731
        distance = np.linalg.norm(centres(new)[:, None] - centres(old)[None], axis=2) / heights  # (D, L)
        ratio = np.clip(new[:, 3] - new[:, 1], 1e-6, None)[:, None] / heights
        allowed = (distance <= cfg.reid_distance) & (ratio <= cfg.reid_scale) & (ratio >= 1 / cfg.reid_scale)
        # a tentative track's hits are consecutive frames (it dies on its first miss)
        allowed &= np.array([[o.missing >= n.hits for o in lost] for n in due])
        if cfg.reid_appearance < 1:  # where one of them has a descriptor, both must, and alike
            for r, c in zip(*np.nonzero(allowed)):
                a, b = due[r].appearance, lost[c].appearance
                if a is not None or b is not None:
                    alike = a is not None and b is not None and appearance_distance(a, b) <= cfg.reid_appearance
                    allowed[r, c] = alike
        rows, cols = linear_sum_assignment(np.where(allowed, distance, 1e6))
        return [(due[r], lost[c]) for r, c in zip(rows, cols) if allowed[r, c]]

    def _keypoint_centre(self, track: Track) -> np.ndarray:
        visible = track.keypoint_scores >= self.config.keypoint_threshold
        box = keypoint_bboxes(track.keypoints[None], visible[None], 1.0, track.kalman.box[None])[0]
        return (box[:2] + box[2:]) / 2
