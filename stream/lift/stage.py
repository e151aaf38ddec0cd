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
from posestream.stream.lift.model import (Lifter, LifterArchitecture, StreamingTemporalModel, inspect_lifter,
                                          load_lifter, normalize_screen_coordinates)
from posestream.stream.results import FrameResult

#: The lifter shipped with posestream (trained by tools/train_lifter.py on the free mocap): causal,
#: 27 frames, 256 channels, COCO-17 → H36M-17. Package data of ``posestream.engines``, so it is
#: found in the source tree and in an installed wheel alike.
DEFAULT_LIFTER = Path(str(resources.files("posestream.engines") / "weights" / "lifter_coco_h36m_causal27.safetensors"))


@dataclass(frozen=True)
class LiftConfig:
    """Settings of the ``lift:`` section.

    Attributes:
        enabled: compute ``keypoints_3d``.
        checkpoint: ``default`` (the shipped causal 27-frame lifter, COCO-17 → H36M-17) or the
            path of a lifter file (``.safetensors``, format ``posestream-lifter/1``, which says
            whether the model is causal; a PyTorch ``.pt``/``.bin`` is converted first with
            ``posestream convert-lifter``).
    """

    enabled: bool = True
    checkpoint: str = "default"

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
    __slots__ = ("state", "last", "pending")

    def __init__(self, state, first: np.ndarray):
        self.state, self.last, self.pending = state, first, deque()


class LiftStage:
    """Per-stream lifting state around a trained :class:`~posestream.stream.lift.model.Lifter`
    (run by the NumPy :class:`~posestream.stream.lift.model.StreamingTemporalModel`; no torch).

    Args:
        lifter: the lifter's weights; its input must be 17 COCO keypoints and its output 17 H36M joints.

    Raises:
        ValueError: the lifter's joint counts are not 17 in and 17 out.
    """

    def __init__(self, lifter: Lifter):
        self._normalize = normalize_screen_coordinates
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
        x = self._normalize(result.keypoints, result.width, result.height) if n else np.zeros((0, 17, 2), np.float32)
        if result.track_ids is None:  # stills: nothing to wait for
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
        tracks = []
        for track_id, row in present.items():
            track = self.tracks.get(track_id)
            if track is None:
                track = self.tracks[track_id] = _Track(self.stream.start(x[row]), x[row])
            track.last = x[row]
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

    def flush(self) -> list[tuple[FrameResult, Any]]:
        """End of stream: finish every track and return every result still held."""
        for track in self.tracks.values():
            self._finish(track)
        self.tracks.clear()
        ready = list(self.queue)
        self.queue.clear()
        return ready
