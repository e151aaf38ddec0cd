"""The pose pipeline: detect people, estimate their keypoints, follow, lift and classify them.

:class:`PosePipeline` is immutable apart from the models it holds (as MMDeploy's PoseTracker):
one instance serves any number of frames and sources. :class:`PoseStream` holds one stream's
state (tracks, smoothing, 3D lifting buffers, label hysteresis) around a shared pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from posestream.stream.detect import load_detector
from posestream.stream.detect.second_look import second_look
from posestream.stream.detect.tiles import detect_tiled
from posestream.stream.pose import BlazePoseLandmark, PoseEstimates, load_pose_estimator
from posestream.stream.pose.hands import (HandLandmark, hand_rois_from_body, hand_rois_from_forearm,
                                          hand_rois_from_landmarks)
from posestream.stream.pose.palms import PalmDetector, assign_palm_hands

from posestream.stream.classify.rules import ClassifierConfig, PoseClassifier
from posestream.stream.config import PipelineConfig
from posestream.stream.lift.stage import MIN_EXTENT, LiftStage
from posestream.stream.track.appearance import appearance_histograms
from posestream.stream.track.matching import pose_nms
from posestream.stream.results import FrameResult
from posestream.stream.capture.files import Frame
from posestream.stream.track.tracker import Tracker, TrackerConfig

if TYPE_CHECKING:
    from posestream.stream.lift.model import Lifter  # the NumPy lifter (no torch)


class PosePipeline:
    """Detector + top-down keypoint estimator.

    Args:
        detector: callable ``image -> Detections``.
        estimator: callable ``(image, bboxes) -> PoseEstimates``.
        config: thresholds (:class:`PipelineConfig`); its model fields are not used here.
        hands: a :class:`~posestream.stream.pose.hands.HandLandmark` model, or None for no hand
            keypoints (the default).
        palms: a :class:`~posestream.stream.pose.palms.PalmDetector` that finds the hands the body
            pose does not show (``unseen``), or None (only with ``hands``).
    """

    #: A wrist (and, for BlazePose, its index and pinky points) scoring under this is unseen:
    #: its hand is not cropped.
    wrist_threshold = 0.3

    def __init__(self, detector, estimator, config: PipelineConfig = PipelineConfig(), hands: HandLandmark | None = None,
                 palms: PalmDetector | None = None):
        self.detector, self.estimator, self.config, self.hands, self.palms = detector, estimator, config, hands, palms

    @classmethod
    def from_config(cls, config: PipelineConfig, detector: bool = True, pose: bool = True) -> "PosePipeline":
        """Load the models named by ``config`` (a live graph's stages load only the one they run).

        Raises:
            posestream.engines.errors.ModelError: a model cannot be found, verified or loaded.
        """
        detect = load_detector(config.detector, config.device, config.threads,
                               score_threshold=config.det_score_threshold, iou_threshold=config.det_iou_threshold,
                               max_detections=config.max_people) if detector else None
        estimator = load_pose_estimator(config.pose, config.device, config.threads) if pose else None
        if isinstance(estimator, BlazePoseLandmark):
            estimator.refine = config.refine_crop
        hands = None
        if pose and config.hands:
            from posestream.engines.build import load_model

            hands = load_model(config.hand_model, {"hand": HandLandmark}, "hand landmark model", config.device,
                               config.threads)
        palms = None
        if pose and config.hands and config.palm_detection:
            from posestream.engines.build import load_model

            palms = load_model(config.palm_model, {"palm": PalmDetector}, "palm detector", config.device,
                               config.threads, min_score=config.palm_score_threshold)
        return cls(detect, estimator, config, hands, palms)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes of one (H, W, 3) uint8 BGR image: ``(bboxes, scores)``, (N, 4) float32
        x1, y1, x2, y2 pixels and (N,) float32, boxes smaller than ``min_bbox_size`` dropped;
        with ``detect_tile``, found in the whole image and in its tiles
        (:func:`~posestream.stream.detect.tiles.detect_tiled`)."""
        tile = self.config.detect_tile
        detections = detect_tiled(self.detector, image, tile) if tile else self.detector(image)
        sizes = detections.bboxes[:, 2:] - detections.bboxes[:, :2]
        keep = (sizes >= self.config.min_bbox_size).all(axis=1)
        return detections.bboxes[keep], detections.scores[keep]

    def estimate(self, image: np.ndarray, bboxes: np.ndarray, rois: np.ndarray | None = None
                 ) -> tuple[PoseEstimates, np.ndarray]:
        """Keypoints in each (N, 4) box (or (N, 4) crop region from the person's previous frame,
        NaN rows where none, see :class:`~posestream.stream.pose.BlazePoseLandmark`); returns the
        estimates and the (N,) bool mask of those whose pose score reaches ``pose_score_threshold``."""
        poses = self.estimator(image, bboxes, rois)
        return poses, poses.pose_scores >= self.config.pose_score_threshold

    def __call__(self, frame: Frame) -> FrameResult:
        """Process one frame; ``timings`` gets ``detect`` and ``pose`` milliseconds."""
        image = frame.image
        t0 = time.perf_counter()
        bboxes, bbox_scores = self.detect(image)
        t1 = time.perf_counter()
        poses, keep = self.estimate(image, bboxes)
        t2 = time.perf_counter()
        result = _frame_result(frame, bboxes[keep], bbox_scores[keep], poses, keep,
                               {"detect": (t1 - t0) * 1e3, "pose": (t2 - t1) * 1e3})
        if self.hands is not None:
            self.add_hands(image, result, poses, np.flatnonzero(keep))
        elif result.wholebody_keypoints is not None:
            self.hands_from_wholebody(result)
        return result

    def hands_from_wholebody(self, result: FrameResult) -> None:
        """Fill ``result``'s ``hand_*`` fields from its whole-body model's hands (COCO-WholeBody
        91–111 left, 112–132 right): a hand's presence is the mean score of its 21 points, ``ok``
        from ``config.hand_presence_threshold`` on (else ``absent``); handedness is the side's
        (0 left, 1 right): the model's output order says which hand it is.

        Raises:
            ValueError: ``result`` has no whole-body keypoints.
        """
        if result.wholebody_keypoints is None:
            raise ValueError("this result has no whole-body keypoints")
        n = len(result)
        hands = result.wholebody_keypoints[:, 91:133].reshape(n, 2, 21, 2).copy()
        scores = result.wholebody_scores[:, 91:133].reshape(n, 2, 21).astype(np.float32)
        presence = scores.mean(axis=2) if n else np.zeros((0, 2), np.float32)
        ok = presence >= self.config.hand_presence_threshold
        hands[~ok] = np.nan
        result.hand_keypoints, result.hand_keypoint_scores = hands, np.where(ok[..., None], scores, 0.0).astype(np.float32)
        result.hand_presence = presence.astype(np.float32)
        result.hand_right = np.tile(np.array([0.0, 1.0], np.float32), (n, 1))
        result.hand_status = np.where(ok, "ok", "absent").astype("<U6")

    def add_hands(self, image: np.ndarray, result: FrameResult, poses: PoseEstimates, rows: np.ndarray,
                  previous: np.ndarray | None = None) -> np.ndarray:
        """Estimate both hands of every person of ``result`` and fill its ``hand_*`` fields
        (and ``timings["hands"]``, ms); all hand crops of the frame go in one model call.

        A hand is cropped from its previous landmarks where ``previous`` gives a crop and the
        body's wrist lies inside it (tracking, one pass), else from the body pose
        (:func:`~posestream.stream.pose.hands.hand_rois_from_body` with BlazePose's wrist, index
        and pinky, :func:`~posestream.stream.pose.hands.hand_rois_from_forearm` for COCO-17
        models; two passes). Hands whose wrist scores under :attr:`wrist_threshold` are
        ``unseen``, those shorter than ``config.min_hand_size`` px ``small``; neither is cropped.
        With a palm detector (``palms``, ``config.palm_detection``), a person with an ``unseen``
        hand is searched for palms (:meth:`~posestream.stream.pose.palms.PalmDetector.hand_rois`,
        ``timings["palms"]``); their crops join the same model call (two passes), and a hand
        found there fills the unseen slot of its handedness
        (:func:`~posestream.stream.pose.palms.assign_palm_hands`); an ``ok`` hand the body stops
        showing follows its previous landmarks. Hands without a body wrist need a presence of
        ``config.palm_presence_threshold`` (else they are ``unseen``).
        Presence gates each hand (``absent``), and handedness too (``other``, :func:`_other_hands`):
        a crop that holds the person's other hand (hands crossed or together) is not reported twice.

        Args:
            image: (H, W, 3) uint8 BGR.
            result: the frame's result, its people being the rows ``rows`` of ``poses``.
            poses: the pose model's estimates. rows: (N,) int indices into ``poses``.
            previous: (N, 2, 4) float32 crops (cx, cy, side px, rotation rad) of each person's
                left and right hand from their previous frame, NaN rows where none; None: none.

        Returns:
            (N, 2, 4) float32 crops for the next frame (from the landmarks of ``ok`` hands, NaN elsewhere).

        Raises:
            ValueError: no hand model (``hands`` is None).
        """
        if self.hands is None:
            raise ValueError("this pipeline has no hand model (pipeline.hands is off)")
        t0 = time.perf_counter()
        n = len(rows)
        if poses.hand_points is not None:
            points, scores = poses.hand_points[rows], poses.hand_point_scores[rows]  # (N, 2, 3, 2), (N, 2, 3)
            flat = points.reshape(-1, 3, 2)
            rois = hand_rois_from_body(flat[:, 0], flat[:, 1], flat[:, 2])
            seen = (scores.reshape(-1, 3) >= self.wrist_threshold).all(axis=1)
            middle = (2 * flat[:, 1] + flat[:, 2]) / 3
            lengths = 2 * np.linalg.norm(middle - flat[:, 0], axis=1)
            wrists = flat[:, 0]
        else:
            body, body_scores = poses.keypoints[rows], poses.keypoint_scores[rows]
            elbows, wrists = body[:, [7, 8]].reshape(-1, 2), body[:, [9, 10]].reshape(-1, 2)
            rois = hand_rois_from_forearm(elbows, wrists)
            seen = (body_scores[:, [7, 8, 9, 10]].reshape(-1, 2, 2).transpose(0, 2, 1).reshape(-1, 2)
                    >= self.wrist_threshold).all(axis=1)
            lengths = 0.7 * np.linalg.norm(wrists - elbows, axis=1)
        rois = rois.reshape(-1, 4)
        tracked = np.zeros(len(rois), bool)
        if previous is not None:
            previous = np.asarray(previous, np.float32).reshape(-1, 4)
            inside = np.linalg.norm(wrists - previous[:, :2], axis=1) <= previous[:, 2] / 2
            # with the palm detector, a hand the body no longer shows follows its own landmarks
            tracked = np.isfinite(previous).all(axis=1) & ((inside & seen) | (~seen & (self.palms is not None)))
            rois[tracked] = previous[tracked]
        status = np.where(seen | tracked, "ok", "unseen").astype("<U6")
        status[seen & (lengths < self.config.min_hand_size) & ~tracked] = "small"
        run = np.flatnonzero(status == "ok")
        keypoints = np.full((2 * n, 21, 2), np.nan, np.float32)
        presence, right = np.zeros(2 * n, np.float32), np.full(2 * n, 0.5, np.float32)
        palm_rois, palm_people = np.zeros((0, 4), np.float32), np.zeros(0, int)
        if self.palms is not None:
            t_palms = time.perf_counter()
            palm_rois, palm_people = self.palms.hand_rois(image, result.bboxes, status.reshape(n, 2),
                                                          rois.reshape(n, 2, 4), self.config.min_hand_size,
                                                          self.config.palm_max_people)
            result.timings["palms"] = (time.perf_counter() - t_palms) * 1e3
        crops = self.hands(image, np.concatenate([rois[run], palm_rois]),
                           np.concatenate([tracked[run], np.zeros(len(palm_rois), bool)]))
        m = len(run)
        keypoints[run], presence[run], right[run] = crops.keypoints[:m], crops.presence[:m], crops.right[:m]
        status[run[crops.presence[:m] < self.config.hand_presence_threshold]] = "absent"
        # a hand followed beyond the body's sight needs the palm hands' presence; once lost it is unseen again
        palm_presence = max(self.config.palm_presence_threshold, self.config.hand_presence_threshold)
        status[~seen & ((status == "absent") | ((status == "ok") & (presence < palm_presence)))] = "unseen"
        assign_palm_hands(status, keypoints, presence, right, (crops.keypoints[m:], crops.presence[m:], crops.right[m:]),
                          palm_people, palm_presence, result.bboxes)
        _other_hands(status, keypoints, right, self.config.hand_side_threshold)
        ok = status == "ok"
        keypoints[~ok] = np.nan
        height, width = image.shape[:2]
        inside = ((keypoints >= 0) & (keypoints < [width, height])).all(axis=2)
        scores = np.where(inside & ok[:, None], presence[:, None], 0.0).astype(np.float32)
        result.hand_keypoints, result.hand_keypoint_scores = keypoints.reshape(n, 2, 21, 2), scores.reshape(n, 2, 21)
        result.hand_presence, result.hand_right = presence.reshape(n, 2), right.reshape(n, 2)
        result.hand_status = status.reshape(n, 2)
        following = np.full((2 * n, 4), np.nan, np.float32)
        if ok.any():
            following[ok] = hand_rois_from_landmarks(keypoints[ok])
        result.timings["hands"] = (time.perf_counter() - t0) * 1e3
        return following.reshape(n, 2, 4)


def _other_hands(status: np.ndarray, keypoints: np.ndarray, right: np.ndarray, threshold: float) -> None:
    """Mark ``other`` (in ``status``, in place) the hands whose crop holds the person's other hand.

    A hand's *fit* is the hand model's probability that it is the side of its slot (``right``
    for the right slot, 1 − ``right`` for the left). A hand fitting under ``threshold`` is
    ``other``; and where both of a person's hands are ``ok`` but lie on one another (mean
    distance of their 21 points under a quarter of the larger one's box side: both crops caught
    the same hand), the one that fits worse is ``other``.

    Args:
        status: (2N,) str, left and right hand of each person in turn. keypoints: (2N, 21, 2)
            float pixels (NaN where not run). right: (2N,) float in [0, 1]. threshold: in [0, 1].
    """
    fit = np.where(np.arange(len(status)) % 2 == 1, right, 1.0 - right)
    status[(status == "ok") & (fit < threshold)] = "other"
    for left in range(0, len(status), 2):
        pair = (left, left + 1)
        if not all(status[i] == "ok" for i in pair):
            continue
        side = max(float(np.ptp(keypoints[i], axis=0).max()) for i in pair)
        if float(np.linalg.norm(keypoints[left] - keypoints[left + 1], axis=1).mean()) < 0.25 * side:
            status[left if fit[left] < fit[left + 1] else left + 1] = "other"


def _frame_result(frame: Frame, bboxes: np.ndarray, bbox_scores: np.ndarray, poses: PoseEstimates,
                  index: np.ndarray, timings: dict[str, float]) -> FrameResult:
    """A FrameResult with the rows ``index`` (bool mask or int indices) of ``poses``."""
    extra, whole = poses.extra_keypoints, poses.wholebody_keypoints
    return FrameResult(
        frame_id=frame.frame_id, pts=frame.pts, width=frame.image.shape[1], height=frame.image.shape[0],
        bboxes=np.asarray(bboxes, np.float32).reshape(-1, 4), bbox_scores=np.asarray(bbox_scores, np.float32),
        keypoints=poses.keypoints[index], keypoint_scores=poses.keypoint_scores[index],
        extra_keypoints=None if extra is None else extra[index],
        extra_keypoint_scores=None if extra is None else poses.extra_keypoint_scores[index],
        image=frame.name, timings=timings,
        wholebody_keypoints=None if whole is None else whole[index],
        wholebody_scores=None if whole is None else poses.wholebody_scores[index],
    )


class PoseStream:
    """Per-stream state around a shared :class:`PosePipeline`: tracking, smoothing, lifting, classifier.

    Per frame (MMDeploy PoseTracker's scheme): the tracks predict where each person is now; on
    detection frames (every ``detect_interval``) the detector's new people join those boxes;
    the pose model runs on all boxes at once; duplicate poses are removed by OKS-NMS; the
    tracker matches poses to tracks (ids, One-Euro smoothing); the lifter adds each track's 3D
    pose; the classifier labels each person with hysteresis per track. Only born tracks are
    reported.

    Args:
        pipeline: the models (shared between streams).
        tracking: :class:`~posestream.stream.track.tracker.TrackerConfig`, or None for independent frames (images):
            every frame detected, no ids, no smoothing, labels without hysteresis.
        classify: :class:`~posestream.stream.classify.rules.ClassifierConfig`, or None for no labels.
        lifter: a COCO-17 → H36M-17 :class:`~posestream.stream.lift.model.Lifter` (shared between
            streams), or None for no ``keypoints_3d``. A symmetric one delays results by its
            ``delay`` frames (see :class:`~posestream.stream.lift.stage.LiftStage`).
        first_track_id: the first ``track_id`` this stream gives (see :class:`Tracker`).
        lift_min_extent: the lift stage's ``min_extent`` (``lift.min_extent``).
    """

    def __init__(self, pipeline: PosePipeline, tracking: TrackerConfig | None = TrackerConfig(),
                 classify: ClassifierConfig | None = ClassifierConfig(), lifter: "Lifter | None" = None,
                 first_track_id: int = 1, lift_min_extent: float = MIN_EXTENT):
        self.pipeline = pipeline
        self.tracker = Tracker(tracking, first_track_id) if tracking is not None else None
        self.classifier = PoseClassifier(classify) if classify is not None else None
        self.lift = LiftStage(lifter, lift_min_extent) if lifter is not None else None
        self._hand_rois: dict[int, np.ndarray] = {}  # track id → (2, 4) hand crops for its next frame

    @property
    def delay(self) -> int:
        """Frames between a frame going in and its result coming out."""
        return self.lift.delay if self.lift is not None else 0

    def process(self, frame: Frame, detections: tuple[np.ndarray, np.ndarray] | None = None,
                detect: bool | None = None) -> list[tuple[Frame, FrameResult]]:
        """Process the next frame of the stream (frames in order; ``pts`` in seconds).

        ``detections``: this frame's ``(bboxes, scores)`` from :meth:`PosePipeline.detect` run
        elsewhere (the live graph's detector workers); used where the detector would run. None:
        the pipeline's own detector runs where the tracker needs a detection.

        ``detect``: whether this is a detection frame. None: the tracker's schedule (every
        ``detect_interval`` frames, or when it has no track or one last seen by an edge pose,
        :meth:`Tracker.needs_detection`). The live graph passes whether boxes came with the
        frame (its capture marks the detection frames), and False still detects (with the
        pipeline's own detector) where the tracker needs it, so that a lost or duplicate frame
        never shifts the schedule.

        ``timings`` gets ``detect`` (0 on frames without detection), ``pose``, ``track``
        (prediction, merging, OKS-NMS, matching, smoothing, and the detector's second look before
        a birth, ``tracking.verify_zoom``), ``lift`` and ``classify`` milliseconds.

        Returns:
            The frames whose results are complete, oldest first, each with its result: this one
            alone unless the lifter has a delay.
        """
        result = self.pipeline(frame) if self.tracker is None else self._tracked(frame, detections, detect)
        ready = [(result, frame)] if self.lift is None else self.lift.push(result, frame)
        return [(f, self._classify(r)) for r, f in ready]

    def flush(self) -> list[tuple[Frame, FrameResult]]:
        """End of stream: the results still held back by a delayed lifter, completed."""
        if self.lift is None:
            return []
        return [(f, self._classify(r)) for r, f in self.lift.flush()]

    def __call__(self, frame: Frame) -> FrameResult:
        """:meth:`process` for streams without delay: this frame's result.

        Raises:
            ValueError: the lifter delays results (use :meth:`process` and :meth:`flush`).
        """
        if self.delay:
            raise ValueError(f"this stream's lifter delays results by {self.delay} frames: use process() and flush()")
        return self.process(frame)[0][1]

    def _classify(self, result: FrameResult) -> FrameResult:
        if self.classifier is None:
            return result
        t0 = time.perf_counter()
        result.postures, result.gestures, events = self.classifier(
            result.keypoints, result.keypoint_scores, result.track_ids, result.keypoints_3d,
            result.frame_id, result.pts, (result.width, result.height),
            hand_keypoints=result.hand_keypoints, hand_status=result.hand_status)
        result.events = [event.to_json() for event in events]
        if self.tracker is not None:
            live = {track.track_id for track in self.tracker.tracks}
            if self.lift is not None:  # tracks of results still held back are live too
                live.update(int(t) for r, _ in self.lift.queue if r.track_ids is not None for t in r.track_ids)
            self.classifier.forget(live)
        result.timings["classify"] = (time.perf_counter() - t0) * 1e3
        return result

    def _second_look(self, image: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
        """The tracker's check before a birth on this frame: (M, 4) float32 boxes, pixels → (M,)
        bool; the tracker calls it only while ``tracking.verify_zoom`` > 0. None without a
        detector, or with one that has no ``input_size`` (a plain callable)."""
        detector = self.pipeline.detector
        if detector is None or getattr(detector, "input_size", None) is None:
            return None
        return lambda boxes: second_look(detector, image, boxes, self.tracker.config.verify_zoom)

    def _tracked(self, frame: Frame, detections: tuple[np.ndarray, np.ndarray] | None = None,
                 detect: bool | None = None) -> FrameResult:
        tracker, image, cfg = self.tracker, frame.image, self.tracker.config
        start = time.perf_counter()
        bboxes, bbox_scores, rois = tracker.predict(frame.pts)
        detect_ms, detected = 0.0, None
        if tracker.is_detection_frame() if detect is None else (detect or tracker.needs_detection()):
            t0 = time.perf_counter()
            detected, detected_scores = self.pipeline.detect(image) if detections is None else detections
            detect_ms = (time.perf_counter() - t0) * 1e3
            bboxes, bbox_scores, rois = tracker.merge(detected, detected_scores, bboxes, bbox_scores, rois,
                                                      image.shape[1::-1])
        t0 = time.perf_counter()
        poses, keep = self.pipeline.estimate(image, bboxes, rois)
        pose_ms = (time.perf_counter() - t0) * 1e3
        index = np.flatnonzero(keep)
        if len(index) > 1:
            visible = poses.keypoint_scores[index] >= cfg.keypoint_threshold
            scores = poses.pose_scores[index] * poses.keypoint_scores[index].mean(axis=1)
            index = np.sort(index[pose_nms(poses.keypoints[index], visible, bboxes[index], scores,
                                           cfg.pose_nms_threshold, cfg.pose_nms_iou)])
        if cfg.edge_poses and detected is not None:  # the tracker keeps those of people cut by the frame's edge
            index = np.concatenate([index, np.flatnonzero(~keep)])
        appearances = (appearance_histograms(image, poses.keypoints[index], poses.keypoint_scores[index],
                                             cfg.keypoint_threshold)
                       if cfg.reid_distance > 0 and cfg.reid_appearance < 1 else None)
        people = tracker.update(poses.keypoints[index], poses.keypoint_scores[index], bbox_scores[index],
                                frame.pts, bboxes[index], None if poses.rois is None else poses.rois[index],
                                detected, image.shape[1::-1], self._second_look(image), weak=~keep[index],
                                appearances=appearances)
        rows = index[people.index]
        result = _frame_result(frame, people.bboxes, bbox_scores[rows], poses, rows,
                               {"detect": detect_ms, "pose": pose_ms})
        result.keypoints = people.keypoints
        result.track_ids = people.track_ids
        result.timings["track"] = (time.perf_counter() - start) * 1e3 - detect_ms - pose_ms
        if self.pipeline.hands is not None:
            nan = np.full((2, 4), np.nan, np.float32)
            previous = np.array([self._hand_rois.get(int(t), nan) for t in people.track_ids], np.float32)
            following = self.pipeline.add_hands(image, result, poses, rows, previous.reshape(-1, 2, 4))
            self._hand_rois = {int(t): r for t, r in zip(people.track_ids, following)}
        elif result.wholebody_keypoints is not None:
            self.pipeline.hands_from_wholebody(result)
        return result
