"""Real motion through room cameras, read over time: walking people must read standing.

The synthetic sweep (:mod:`posestream.offline.classify_sweep`) holds bodies still. People in
front of a camera walk, and a walker's swinging leg bends at the knee and reaches forward: the
moments a posture rule tuned on still seated bodies may take for sitting. This module plays
motion-capture clips (CMU, :mod:`posestream.offline.mocap`) through seeded virtual cameras
(:func:`posestream.offline.lifter_data.random_camera`: webcams on a desk, cameras high in a
room), adds a pose model's jitter, lifts them with the real lift stage and classifies them with
the real :class:`~posestream.stream.classify.rules.PoseClassifier` (its hysteresis in seconds
included), frame by frame as ``posestream run`` would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from posestream.offline.classify_sweep import jitter
from posestream.offline.lifter_data import Camera, CameraRange, random_camera, view
from posestream.offline.mocap import MocapClip
from posestream.stream.classify.rules import ClassifierConfig, PoseClassifier
from posestream.stream.results import FrameResult

if TYPE_CHECKING:
    from posestream.stream.lift.stage import LiftStage


@dataclass(frozen=True)
class MotionView:
    """One clip seen by one camera.

    Attributes:
        clip: the clip's name. camera: the :class:`~posestream.offline.lifter_data.Camera`.
        pitch: degrees the camera's axis points down (negative: up); it is aimed at the
            motion's centre ± 0.3 m, so this is about the angle down to a walker mid-walk.
        keypoints: (T, 17, 2) float32 COCO-17 pixels with jitter; NaN where a joint is outside
            the image.
        pts: (T,) float64 seconds.
    """

    clip: str
    camera: Camera
    pitch: float
    keypoints: np.ndarray
    pts: np.ndarray


def clips_like(clips: list[MocapClip], words: tuple[str, ...]) -> list[MocapClip]:
    """The clips whose description holds one of ``words`` (case-insensitive), e.g. ``("walk",)``."""
    return [c for c in clips if any(w.lower() in c.description.lower() for w in words)]


def motion_views(clip: MocapClip, cameras: int, seed: int, fps: float = 30.0, noise: float = 0.03,
                 camera_range: CameraRange = CameraRange()) -> list[MotionView]:
    """``clip`` resampled to about ``fps`` (every k-th frame) through ``cameras`` seeded cameras
    drawn from ``camera_range`` (:func:`~posestream.offline.lifter_data.random_camera`: aimed at
    the motion's centre ± 0.3 m, far enough to keep it inside 90 % of the view), with the
    sweep's Gaussian jitter of ``noise`` torso lengths per coordinate and frame
    (:func:`~posestream.offline.classify_sweep.jitter`). Joints that fall outside the image are NaN.

    Raises:
        ValueError: ``fps`` or ``cameras`` not positive.
    """
    if not fps > 0 or cameras < 1:
        raise ValueError(f"fps must be > 0 and cameras >= 1, not {fps!r}, {cameras!r}")
    step = max(1, int(round(clip.fps / fps)))
    joints = clip.joints[::step].astype(np.float64)
    pts = np.arange(len(joints)) * step / clip.fps
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(cameras):
        camera = random_camera(rng, joints, camera_range)
        pixels, _ = view(joints, camera)
        inside = ((pixels[..., 0] >= 0) & (pixels[..., 0] < camera.width)
                  & (pixels[..., 1] >= 0) & (pixels[..., 1] < camera.height))
        noisy = np.stack([jitter(p, noise, rng) for p in pixels])
        noisy[~inside] = np.nan
        look = camera.rotation[2]  # the camera's axis, world (y up)
        pitch = float(np.degrees(np.arcsin(np.clip(-look[1], -1.0, 1.0))))
        out.append(MotionView(clip.name, camera, pitch, noisy.astype(np.float32), pts))
    return out


def read_motion(motion: MotionView, config: ClassifierConfig, lift_stage: "LiftStage | None" = None) -> list[str | None]:
    """The postures :class:`~posestream.stream.classify.rules.PoseClassifier` reports for the one
    person of ``motion``, frame by frame (one track), lifted by ``lift_stage`` (a fresh
    :class:`~posestream.stream.lift.stage.LiftStage` per view: it keeps each track's state; None:
    no depth). Joints outside the image have score 0, the others 1. Frames where the person's
    shoulders and hips are not all seen report nothing (``None`` in the list).
    """
    classifier = PoseClassifier(config)
    results = []
    for frame_id, (keypoints, pts) in enumerate(zip(motion.keypoints, motion.pts), 1):
        seen = np.isfinite(keypoints).all(axis=1)
        if not seen[[5, 6, 11, 12]].all():
            results.append(FrameResult(frame_id, float(pts), motion.camera.width, motion.camera.height,
                                       np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                                       np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32),
                                       track_ids=np.zeros(0, np.int64)))
            continue
        points = np.where(seen[:, None], keypoints, 0.0).astype(np.float32)
        box = np.concatenate([points[seen].min(axis=0), points[seen].max(axis=0)])
        results.append(FrameResult(frame_id, float(pts), motion.camera.width, motion.camera.height,
                                   box[None].astype(np.float32), np.ones(1, np.float32), points[None],
                                   seen[None].astype(np.float32), track_ids=np.ones(1, np.int64)))
    if lift_stage is not None:
        lifted = []
        for result in results:
            lifted += [r for r, _ in lift_stage.push(result)]
        results = lifted + [r for r, _ in lift_stage.flush()]
    postures = []
    for result in results:
        labels, _, _ = classifier(result.keypoints, result.keypoint_scores, result.track_ids, result.keypoints_3d,
                                  result.frame_id, result.pts, (result.width, result.height))
        postures.append(labels[0] if labels else None)
    return postures
