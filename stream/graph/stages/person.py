"""The person stage: per stream, frames put back in the order their capture sent them, then
MMDeploy PoseTracker's loop (pose on the detected and tracked boxes, tracking, smoothing), lifting and
labels (:class:`~posestream.stream.pipeline.PoseStream`). Pose and tracking form one feedback loop
(tracked boxes are the next frame's crops), so they share a process."""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import zmq

from posestream.stream.graph.wire import header

from .base import Stage

log = logging.getLogger("posestream.graph")



class _StreamState:
    """One stream in the person stage: frames put back in the order their capture sent them.

    Frames carry ``seq``, consecutive over the frames a capture process sent (dropped camera
    frames leave no gap), and ``epoch``, the capture process's start (``time.time_ns()``): a
    larger epoch is a restarted capture, a smaller one a straggler of a replaced one.
    """

    def __init__(self, name: str, first_track_id: int):
        self.name = name
        self.stream = None  # PoseStream, made at the first frame, freed at the end or when idle
        self.next_track_id = first_track_id
        self.epoch: int | None = None
        self.pending: dict[int, tuple] = {}  # seq → (message, arrival time)
        self.headers: dict[int, dict] = {}  # frame_id → header, until its result leaves
        self.next_seq = 1
        self.last_frame_id = 0  # of the last frame processed
        self.last_seq: int | None = None
        self.final_frame_id = 0
        self.eos_at = 0.0
        self.last_message = time.monotonic()
        self.lossless = False
        self.done = False

    def hole_seconds(self, now: float) -> float:
        """How long the next frame has been missing while later ones (or the end) wait; 0 if none."""
        if self.done or self.next_seq in self.pending:
            return 0.0
        if self.pending:
            return now - min(t for _, t in self.pending.values())
        if self.last_seq is not None and self.next_seq <= self.last_seq:
            return now - self.eos_at
        return 0.0


def reorder_limit(graph: dict) -> int:
    """Most frames the person stage holds per stream while one is missing: about what the
    detector workers and queues can hold ahead of it (a stalled worker holds the missing frame)."""
    return 4 * int(graph["queue"]) * int(graph["detect_workers"]) + 8


def run_person(spec: dict) -> int:
    """Per stream: reorder, pose + track + lift + classify (:class:`PoseStream`), send results.

    Lossless streams (files; the capture marks them) never skip a missing frame: the stage waits
    and reports how long in its heartbeat (``gap_s``), holding at most :func:`reorder_limit`
    frames (later ones are dropped and counted as ``overflow``), and the supervisor replays the
    stream from the last frame written. Live streams give a missing frame up after ``gap_timeout`` (or at once when the
    limit is reached) and count it as ``lost``. A stream's state is freed at its end, and a live
    stream's after ``6 × gap_timeout`` without frames (its next frame starts it again, with
    new track ids).
    """
    from posestream.stream.config import RunConfig
    from posestream.stream.pipeline import PosePipeline, PoseStream
    from posestream.stream.capture.files import Frame

    stage = Stage(spec)
    try:
        config = RunConfig.from_dict(spec["config"])
        # with detection every N frames, the person stage detects itself where the tracker has no
        # track on a frame the workers did not detect; the tracker's second look before a birth
        # (tracking.verify_zoom) needs the detector too
        pipeline = PosePipeline.from_config(dataclasses.replace(config.pipeline, threads=spec.get("threads", 0)),
                                            detector=config.tracking.detect_interval > 1
                                            or config.tracking.verify_zoom > 0)
        pipeline.estimate(np.zeros((480, 640, 3), np.uint8), np.array([[200, 100, 400, 460]], np.float32))  # warm up
        if pipeline.detector is not None:
            pipeline.detect(np.zeros((480, 640, 3), np.uint8))
        lifter = config.lift.load() if config.lift.enabled else None
        inp = stage.socket(zmq.PULL, spec["endpoints"]["detections"], bind=True, hwm=stage.graph["queue"])
        out = stage.socket(zmq.PUSH, spec["endpoints"]["results"], bind=False, hwm=stage.graph["queue"])
        first_ids = spec.get("first_track_ids") or {}
        streams = {name: _StreamState(name, int(first_ids.get(name, 1))) for name in spec["streams"]}
        gap, limit = stage.graph["gap_timeout"], reorder_limit(stage.graph)
        idle = 6 * gap
        sinks = spec["config"]["sinks"]
        draw = sinks["video"] or sinks["window"]  # the sink needs the pixels only to draw on them

        def extra() -> dict:
            now = time.monotonic()
            return {"gap_s": round(max([s.hole_seconds(now) for s in streams.values() if s.lossless] or [0.0]), 2),
                    "pending": sum(len(s.pending) for s in streams.values()),
                    "active_streams": sum(s.stream is not None for s in streams.values()),
                    "last_frame_id": {s.name: s.last_frame_id for s in streams.values()},
                    "next_track_id": {s.name: s.stream.tracker.next_track_id if s.stream is not None and
                                      s.stream.tracker is not None else s.next_track_id for s in streams.values()}}

        stage.extra = extra
        stage.state = "running"

        def emit(state: _StreamState, ready) -> None:
            for frame, result in ready:
                head = state.headers.pop(frame.frame_id)
                # a worker's detect time is in the header already; a frame detected here adds its own
                head["timings"].update({k: round(v, 3) for k, v in result.timings.items() if k not in head["timings"]})
                head.update(kind="result", result=result.to_json(), result_ns=time.time_ns(), lossless=state.lossless)
                for key in ("bboxes", "bbox_scores", "shape", "dtype"):
                    head.pop(key, None)
                stage.send(out, head, frame.image if draw else None)
                stage.counters["results"] += 1

        def process(state: _StreamState, message) -> None:
            h = message.header
            state.next_seq = h["seq"] + 1
            if h["frame_id"] <= state.last_frame_id:  # a restarted capture replaying frames already done
                stage.counters["duplicates"] += 1
                return
            if state.stream is None:
                state.stream = PoseStream(pipeline, config.tracking, config.classify, lifter, state.next_track_id,
                                          config.lift.min_extent)
            frame = Frame(h["frame_id"], h["pts"], message.image)
            detections = None if "bboxes" not in h else (np.asarray(h["bboxes"], np.float32).reshape(-1, 4),
                                                         np.asarray(h["bbox_scores"], np.float32))
            state.headers[frame.frame_id] = h
            state.last_frame_id = frame.frame_id
            stage.busy_since = time.monotonic()
            emit(state, state.stream.process(frame, detections, detect=detections is not None))
            stage.busy_since = None

        def retire(state: _StreamState) -> None:
            """Flush and free the stream's tracker, lifter and classifier (ids go on above)."""
            if state.stream is not None:
                emit(state, state.stream.flush())
                if state.stream.tracker is not None:
                    state.next_track_id = state.stream.tracker.next_track_id
                state.stream = None
            state.headers.clear()

        def advance(state: _StreamState) -> None:
            while True:
                now = time.monotonic()
                if state.next_seq in state.pending:
                    process(state, state.pending.pop(state.next_seq)[0])
                elif state.last_seq is not None and state.next_seq > state.last_seq:
                    retire(state)
                    stage.send(out, header("eos", state.name, last_frame_id=state.final_frame_id, lossless=state.lossless))
                    state.done, state.pending = True, {}
                    return
                elif state.lossless:
                    return  # a missing frame: wait for it or for the supervisor's replay (gap_s)
                elif state.pending and (len(state.pending) >= limit or
                                        now - min(t for _, t in state.pending.values()) > gap):
                    first = min(state.pending)
                    stage.counters["lost"] += first - state.next_seq  # lost with a crashed worker
                    log.warning("%s: %d frame(s) of %s lost; going on", stage.name, first - state.next_seq, state.name)
                    state.next_seq = first
                elif state.last_seq is not None and not state.pending and now - state.eos_at > gap:
                    stage.counters["lost"] += state.last_seq - state.next_seq + 1  # the last frames were lost
                    state.next_seq = state.last_seq + 1
                else:
                    if state.stream is not None and not state.pending and now - state.last_message > idle:
                        retire(state)  # a live source gone quiet: free its state
                    return

        def new_epoch(state: _StreamState, epoch: int, seq: int) -> None:
            """The stream's capture was (re)started: follow the new one. What the old one sent and
            is still waiting is dropped on lossless streams (the new capture sends it again) and
            processed in order on live ones. A person stage started anew on a running camera
            takes its frames from the first one it sees (``seq``)."""
            if state.lossless:
                stage.counters["discarded"] += len(state.pending)
            else:
                for pending in sorted(state.pending):
                    process(state, state.pending[pending][0])
            first = seq if state.epoch is None and not state.lossless else 1
            state.epoch, state.pending, state.next_seq, state.last_seq = epoch, {}, first, None

        def take(message) -> None:
            h = message.header
            state = streams.get(h["stream"])
            if state is None or "epoch" not in h or ("seq" if message.kind == "frame" else "last_seq") not in h or \
                    (message.kind == "frame" and h.get("detect") is not False and "bboxes" not in h):
                stage.counters["malformed"] += 1  # another stream, or not from this graph's capture and detectors
                return
            if state.done or (state.epoch is not None and h["epoch"] < state.epoch):
                stage.counters["duplicates"] += 1  # from a capture that was replaced, or after the end
                return
            state.last_message = time.monotonic()
            state.lossless = bool(h.get("lossless", False))
            if h["epoch"] != state.epoch:
                new_epoch(state, h["epoch"], h["seq"] if message.kind == "frame" else 1)
            if message.kind == "frame":
                if state.lossless and len(state.pending) >= limit and h["seq"] != state.next_seq:
                    stage.counters["overflow"] += 1  # bounded memory; the supervisor's replay sends it again
                elif h["seq"] >= state.next_seq and h["seq"] not in state.pending:
                    state.pending[h["seq"]] = (message, time.monotonic())
                else:
                    stage.counters["duplicates"] += 1
            elif message.kind == "eos" and state.last_seq is None:
                state.last_seq, state.final_frame_id = h["last_seq"], h["last_frame_id"]
                state.eos_at = time.monotonic()

        while True:
            if inp.poll(100):
                message = stage.receive(inp)
                if message is not None:
                    take(message)
            for state in streams.values():
                if not state.done:
                    advance(state)
    finally:
        stage.close()
