"""The lift stage: each tracked person's COCO-17 keypoints → H36M-17 3D, one frame at a time.

One :class:`~engines.lifter.StreamState` per track (VideoPose3D's temporal network run causally
or with its delay, see :mod:`engines.lifter`), started with the track's first frame repeated;
a track that is not in a frame is finished (its last frame repeated to flush a symmetric model's
pending outputs) and forgotten, and starts afresh if it comes back. Untracked results (images)
lift each person as a still: the frame repeated over the receptive field.

A symmetric model answers ``delay`` frames late, so the stage holds results back by that much;
:meth:`LiftStage.push` returns the results that are complete, oldest first, and
:meth:`LiftStage.flush` the rest at the end of the stream.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .results import FrameResult

if TYPE_CHECKING:  # torch is imported only where a lifter is used (detector processes stay small)
    from engines.lifter import TemporalModel

#: The lifter shipped with posestream (trained by tools/train_lifter.py on the free mocap).
DEFAULT_LIFTER = Path(__file__).resolve().parents[1] / "engines" / "weights" / "lifter_coco_h36m_causal27.pt"


@dataclass(frozen=True)
class LiftConfig:
    """Settings of the ``lift:`` section.

    Attributes:
        enabled: compute ``keypoints_3d``.
        checkpoint: ``default`` (the shipped causal 27-frame lifter, COCO-17 → H36M-17) or the
            path of a checkpoint (ours, or VideoPose3D's ``.bin``).
        causal: for checkpoints that do not say (VideoPose3D's): whether the model is causal;
            VideoPose3D's releases are symmetric (False).
    """

    enabled: bool = True
    checkpoint: str = "default"
    causal: bool = False

    def load(self) -> "TemporalModel":
        """The model this config names.

        Raises:
            engines.errors.ModelError: missing, unreadable or mismatched checkpoint.
        """
        from engines.lifter import load_lifter

        path = DEFAULT_LIFTER if self.checkpoint == "default" else Path(self.checkpoint)
        return load_lifter(path, causal=self.causal)


class _Track:
    __slots__ = ("state", "last", "pending")

    def __init__(self, state, first: np.ndarray):
        self.state, self.last, self.pending = state, first, deque()


class LiftStage:
    """Per-stream lifting state around a trained :class:`~engines.lifter.TemporalModel`.

    Args:
        model: the lifter; its input must be 17 COCO keypoints and its output 17 H36M joints.

    Raises:
        ValueError: the model's joint counts are not 17 in and 17 out.
    """

    def __init__(self, model: "TemporalModel"):
        from engines.lifter import StreamingTemporalModel, normalize_screen_coordinates

        self._normalize = normalize_screen_coordinates
        a = model.architecture
        if (a.joints_in, a.joints_out, a.in_features) != (17, 17, 2):
            raise ValueError(f"the lift stage needs a COCO-17 → H36M-17 lifter, got {a.joints_in} → {a.joints_out} joints")
        self.stream = StreamingTemporalModel(model)
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
