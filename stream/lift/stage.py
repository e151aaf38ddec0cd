"""The lift stage: each tracked person's COCO-17 keypoints → H36M-17 3D, one frame at a time.

One :class:`~posestream.stream.lift.model.StreamState` per track (VideoPose3D's temporal network run
causally or with its delay, in NumPy without torch, see :mod:`posestream.stream.lift.model`), started
with the track's first frame repeated; a track that is not in a frame is finished (its last frame
repeated to flush a symmetric model's pending outputs) and forgotten, and starts afresh if it comes
back. Untracked results (images) lift each person as a still: the frame repeated over the receptive
field.

A symmetric model answers ``delay`` frames late, so the stage holds results back by that much;
:meth:`LiftStage.push` returns the results that are complete, oldest first, and
:meth:`LiftStage.flush` the rest at the end of the stream.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from posestream.engines.errors import ModelSignatureError
from posestream.engines.layouts import COCO17_TRUNK
from posestream.stream.lift.model import (Lifter, LifterArchitecture, StreamingTemporalModel, inspect_lifter,
                                          load_lifter, normalize_screen_coordinates)
from posestream.stream.results import FrameResult

#: The lifter shipped with posestream (trained by tools/train_lifter.py on the free mocap): causal,
#: 27 frames, 256 channels, COCO-17 → H36M-17. Package data of ``posestream.engines``, so it is
#: found in the source tree and in an installed wheel alike.
DEFAULT_LIFTER = Path(str(resources.files("posestream.engines") / "weights" / "lifter_coco_h36m_causal27.safetensors"))


#: The size (the larger side of the keypoints' box, a fraction of the frame's width) below which
#: the lift stage enlarges a person. Chosen with tools/lifter_scale.py on the held-out mocap (no
#: video clip): people 0.04–0.13 of the width lift at 85–86 mm MPJPE enlarged to 0.3 against
#: 91–182 mm as they are (0.15: 86–89 mm; 0.2: 85–86 mm, worse N-MPJPE; 0.4: 87–88 mm; the shipped
#: lifter; two before it chose the same); the default training cameras' people span 0.13 / 0.24 /
#: 0.41 of the width (5th / 50th / 95th percentiles).
MIN_EXTENT = 0.3


@dataclass(frozen=True)
class LiftConfig:
    """Settings of the ``lift:`` section.

    Attributes:
        enabled: compute ``keypoints_3d``.
        checkpoint: ``default`` (the shipped causal 27-frame lifter, COCO-17 → H36M-17) or the
            path of a lifter file (``.safetensors``, format ``posestream-lifter/1``, which says
            whether the model is causal; a PyTorch ``.pt``/``.bin`` is converted first with
            ``posestream convert-lifter``).
        min_extent: people smaller than this fraction of the frame's width (the larger side of
            their keypoints' box) are enlarged to it for the lifter (:class:`LiftStage`;
            :data:`MIN_EXTENT`, chosen for the shipped lifter's training views); 0: never.

    Raises:
        ValueError: ``min_extent`` outside [0, 1].
    """

    enabled: bool = True
    checkpoint: str = "default"
    min_extent: float = MIN_EXTENT

    def __post_init__(self):
        if not 0 <= self.min_extent <= 1:
            raise ValueError(f"lift.min_extent: a fraction of the frame's width from 0 to 1, got {self.min_extent}")

    @property
    def path(self) -> Path:
        """The lifter file this config names."""
        return DEFAULT_LIFTER if self.checkpoint == "default" else Path(self.checkpoint)

    def check(self) -> LifterArchitecture:
        """Check the lifter file without reading its weights or building the model.

        Returns:
            The file's architecture.

        Raises:
            posestream.engines.errors.ModelNotFoundError: no such file.
            posestream.engines.errors.ModelError: not a lifter file (a PyTorch checkpoint: with the
                command that converts it).
            posestream.engines.errors.ModelSignatureError: unreadable architecture, tensors that do
                not fit it, or not a COCO-17 → H36M-17 lifter.
        """
        return _coco_to_h36m(inspect_lifter(self.path), self.path)

    def load(self) -> Lifter:
        """The lifter this config names (NumPy weights, for :class:`LiftStage`).

        Raises:
            posestream.engines.errors.ModelError: as :meth:`check`.
        """
        lifter = load_lifter(self.path)
        _coco_to_h36m(lifter.architecture, self.path)
        return lifter


def _coco_to_h36m(architecture: LifterArchitecture, path: Path) -> LifterArchitecture:
    a = architecture
    if (a.joints_in, a.joints_out, a.in_features) != (17, 17, 2):
        raise ModelSignatureError(f"{path}: the lift stage needs a COCO-17 → H36M-17 lifter (x, y per keypoint), "
                                  f"got {a.joints_in} → {a.joints_out} joints, {a.in_features} values per keypoint")
    return a


class _Track:
    __slots__ = ("state", "last", "pending", "extent", "pts")

    def __init__(self, state, first: np.ndarray):
        self.state, self.last, self.pending = state, first, deque()
        self.extent = self.pts = np.nan  # smoothed extent (pixels) and time (seconds) of its last frame




def person_extent(keypoints: np.ndarray) -> np.ndarray:
    """The larger side of each person's keypoint box, pixels: (N, 17, 2) → (N,) float32."""
    k = np.asarray(keypoints, np.float32)
    return np.ptp(k, axis=1).max(axis=-1) if len(k) else np.zeros(0, np.float32)


def lifter_zoom(extent: np.ndarray, min_extent: float) -> np.ndarray:
    """How many times to enlarge each person for the lifter: ``min_extent / extent`` where a
    person's ``extent`` (the larger side of their keypoints' box, a fraction of the frame's
    width) is smaller, else 1. (N,) → (N,) float32; ``min_extent`` 0: all 1.

    Large people are not shrunk: on the held-out mocap that was worse (a person half the
    frame wide shrunk to 0.3: MPJPE 108.5 → 113.9 mm).
    """
    extent = np.maximum(np.asarray(extent, np.float32), np.float32(1e-6))
    return np.maximum(np.float32(1), np.float32(min_extent) / extent).astype(np.float32)


def enlarge(keypoints: np.ndarray, zoom: np.ndarray) -> np.ndarray:
    """Each person's keypoints scaled ``zoom`` times about the middle of their shoulders and
    hips: (N, 17, 2) pixels, (N,) → (N, 17, 2) float32 pixels (the trunk's centre stays put)."""
    k = np.asarray(keypoints, np.float32)
    centre = k[:, list(COCO17_TRUNK)].mean(axis=1, keepdims=True)  # enlarged about the trunk
    return (k - centre) * np.asarray(zoom, np.float32)[:, None, None] + centre


def lifter_inputs(keypoints: np.ndarray, width: float, height: float, extent: np.ndarray,
                  min_extent: float = MIN_EXTENT) -> np.ndarray:
    """The lifter's inputs for N people: those whose ``extent`` is under ``min_extent`` of the
    frame's width enlarged to it (:func:`lifter_zoom`, :func:`enlarge`), then normalised as
    VideoPose3D does (:func:`~posestream.stream.lift.model.normalize_screen_coordinates`).

    Args:
        keypoints: (N, 17, 2) COCO-17 pixels. width, height: the frame's size, pixels.
        extent: (N,) each person's size, pixels (:func:`person_extent`, or a smoothed one).
        min_extent: fraction of the frame's width; 0: nobody is enlarged.

    Returns:
        (N, 17, 2) float32 normalised coordinates.
    """
    if not len(keypoints):
        return np.zeros((0, 17, 2), np.float32)
    zoom = lifter_zoom(np.asarray(extent, np.float32) / np.float32(width), min_extent)
    keypoints = enlarge(keypoints, zoom) if np.any(zoom > 1) else keypoints
    return normalize_screen_coordinates(keypoints, width, height)


class LiftStage:
    """Per-stream lifting state around a trained :class:`~posestream.stream.lift.model.Lifter`
    (run by the NumPy :class:`~posestream.stream.lift.model.StreamingTemporalModel`; no torch).

    A person smaller than ``min_extent`` of the frame's width is lifted as a camera with a
    longer lens would see them: their keypoints enlarged about their trunk to that size (the
    extent smoothed over ``extent_seconds``) before VideoPose3D's normalisation (which divides
    by the frame's width, so a far person is a tiny input the lifter never saw in training).

    Args:
        lifter: the lifter's weights; its input must be 17 COCO keypoints and its output 17 H36M joints.
        min_extent: fraction of the frame's width (the larger side of the keypoints' box) below
            which a person is enlarged to it; 0: never (:data:`MIN_EXTENT`).
        extent_seconds: time constant of each track's extent (exponential smoothing), seconds.

    Raises:
        ValueError: the lifter's joint counts are not 17 in and 17 out; a negative ``min_extent``.
    """

    def __init__(self, lifter: Lifter, min_extent: float = MIN_EXTENT, extent_seconds: float = 0.5):
        if not min_extent >= 0 or not extent_seconds >= 0:
            raise ValueError(f"min_extent and extent_seconds must be >= 0, got {min_extent}, {extent_seconds}")
        self.min_extent, self.extent_seconds = float(min_extent), float(extent_seconds)
        a = lifter.architecture
        if (a.joints_in, a.joints_out, a.in_features) != (17, 17, 2):
            raise ValueError(f"the lift stage needs a COCO-17 → H36M-17 lifter, got {a.joints_in} → {a.joints_out} joints")
        self.stream = StreamingTemporalModel(lifter)
        self.delay = a.delay
        self.tracks: dict[int, _Track] = {}
        self.queue: deque[tuple[FrameResult, Any]] = deque()

    def _emit(self, track: _Track, outputs: np.ndarray) -> None:
        if track.state.frames > self.delay:
            result, row = track.pending.popleft()
            result.keypoints_3d[row] = outputs - outputs[:1]  # root-relative: root exactly 0

    def _finish(self, track: _Track) -> None:
        while track.pending:
            self._emit(track, self.stream.step([track.state], track.last[None])[0])

    def push(self, result: FrameResult, payload: Any = None) -> list[tuple[FrameResult, Any]]:
        """Lift one frame's people (``result.keypoints``, pixels); fills ``result.keypoints_3d``
        ((N, 17, 3) float32 metres, camera axes x right, y down, z away, root joint 0) and
        ``timings["lift"]`` (ms).

        Args:
            result: the frame, in stream order. payload: anything to hand back with it (the image).

        Returns:
            The ``(result, payload)`` pairs now complete, oldest first (for a causal model, just
            this one).
        """
        start = time.perf_counter()
        n = len(result)
        result.keypoints_3d = np.full((n, 17, 3), np.nan, np.float32)
        extent = person_extent(result.keypoints) if n else np.zeros(0, np.float32)
        if result.track_ids is None:  # stills: nothing to wait for
            x = self._inputs(result, extent)
            for row in range(n):
                track = _Track(self.stream.start(x[row]), x[row])
                track.pending.append((result, row))
                self._emit(track, self.stream.step([track.state], x[row:row + 1])[0])
                self._finish(track)
            result.timings["lift"] = (time.perf_counter() - start) * 1e3
            return self.flush() + [(result, payload)]
        present = {int(t): row for row, t in enumerate(result.track_ids)}
        for track_id in [t for t in self.tracks if t not in present]:
            self._finish(self.tracks.pop(track_id))
        smoothed = extent.copy()
        for track_id, row in present.items():
            track = self.tracks.get(track_id)
            if track is not None:
                dt = max(0.0, result.pts - track.pts)
                keep = np.exp(-dt / self.extent_seconds) if self.extent_seconds > 0 else 0.0
                smoothed[row] = keep * track.extent + (1 - keep) * extent[row]
        x = self._inputs(result, smoothed)
        tracks = []
        for track_id, row in present.items():
            track = self.tracks.get(track_id)
            if track is None:
                track = self.tracks[track_id] = _Track(self.stream.start(x[row]), x[row])
            track.last, track.extent, track.pts = x[row], float(smoothed[row]), result.pts
            track.pending.append((result, row))
            tracks.append(track)
        if tracks:
            outputs = self.stream.step([t.state for t in tracks], x[list(present.values())])
            for track, out in zip(tracks, outputs):
                self._emit(track, out)
        result.timings["lift"] = (time.perf_counter() - start) * 1e3
        self.queue.append((result, payload))
        ready = []
        while len(self.queue) > self.delay:
            ready.append(self.queue.popleft())
        return ready

    def _inputs(self, result: FrameResult, extent: np.ndarray) -> np.ndarray:
        """:func:`lifter_inputs` of this frame's people, ``extent`` (N,) pixels."""
        return lifter_inputs(result.keypoints, result.width, result.height, extent, self.min_extent)

    def flush(self) -> list[tuple[FrameResult, Any]]:
        """End of stream: finish every track and return every result still held."""
        for track in self.tracks.values():
            self._finish(track)
        self.tracks.clear()
        ready = list(self.queue)
        self.queue.clear()
        return ready
