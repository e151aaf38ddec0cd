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

from posestream.stream.graph.wire import WireError, encode, header, require

from .base import Stage

log = logging.getLogger("posestream.graph")


def _detections_ok(head: dict) -> bool:
    """A frame message from a detector: boxes as [x1, y1, x2, y2] lists with one score each, or
    a frame the capture marked ``detect: false`` (between the tracker's detection frames)."""
    if head.get("detect") is False and "bboxes" not in head:
        return True
    try:
        require(head, bboxes=list, bbox_scores=list)
        boxes = np.asarray(head["bboxes"], np.float32).reshape(-1, 4)
        scores = np.asarray(head["bbox_scores"], np.float32)
        return scores.ndim == 1 and len(scores) == len(boxes) and bool(np.isfinite(boxes).all())
    except (WireError, ValueError, TypeError):
        return False


class _StreamState:
    """One stream in the person stage: frames put back in the order their capture sent them.

    Frames carry ``seq``, consecutive over the frames a capture process sent (dropped camera
    frames leave no gap), and ``epoch``, which changes when the capture is restarted.
    """

    def __init__(self, name: str, stream):
        self.name, self.stream = name, stream  # stream id, PoseStream
        self.epoch: int | None = None
        self.old_epochs: set[int] = set()
        self.pending: dict[int, tuple] = {}  # seq → (message, arrival time)
        self.headers: dict[int, dict] = {}  # frame_id → header, until its result leaves
        self.next_seq = 1
        self.last_frame_id = 0  # of the last frame processed
        self.last_seq: int | None = None
        self.final_frame_id = 0
        self.eos_at = 0.0
        self.done = False


def run_person(spec: dict) -> int:
    """Per stream: reorder, pose + track + lift + classify (:class:`PoseStream`), send results."""
    from posestream.stream.config import RunConfig
    from posestream.stream.pipeline import PosePipeline, PoseStream
    from posestream.stream.capture.files import Frame

    stage = Stage(spec)
    try:
        config = RunConfig.from_dict(spec["config"])
        # with detection every N frames, the person stage detects itself where the tracker has no
        # track on a frame the workers did not detect
        pipeline = PosePipeline.from_config(dataclasses.replace(config.pipeline, threads=spec.get("threads", 0)),
                                            detector=config.tracking.detect_interval > 1)
        pipeline.estimate(np.zeros((480, 640, 3), np.uint8), np.array([[200, 100, 400, 460]], np.float32))  # warm up
        lifter = config.lift.load() if config.lift.enabled else None
        inp = stage.socket(zmq.PULL, spec["endpoints"]["detections"], bind=True, hwm=stage.graph["queue"])
        out = stage.socket(zmq.PUSH, spec["endpoints"]["results"], bind=False, hwm=stage.graph["queue"])
        streams: dict[str, _StreamState] = {}
        gap = stage.graph["gap_timeout"]
        sinks = spec["config"]["sinks"]
        draw = sinks["video"] or sinks["window"]  # the sink needs the pixels only to draw on them
        stage.state = "running"

        def emit(state: _StreamState, ready) -> None:
            for frame, result in ready:
                head = state.headers.pop(frame.frame_id)
                # a worker's detect time is in the header already; a frame detected here adds its own
                head["timings"].update({k: round(v, 3) for k, v in result.timings.items() if k not in head["timings"]})
                head.update(kind="result", result=result.to_json(), result_ns=time.time_ns())
                for key in ("bboxes", "bbox_scores", "shape", "dtype"):
                    head.pop(key, None)
                out.send_multipart(encode(head, frame.image if draw else None), copy=False)
                stage.counters["results"] += 1

        def process(state: _StreamState, message) -> None:
            h = message.header
            state.next_seq = h["seq"] + 1
            if h["frame_id"] <= state.last_frame_id:  # a restarted file capture replaying frames
                stage.counters["duplicates"] += 1
                return
            frame = Frame(h["frame_id"], h["pts"], message.image)
            detections = None if "bboxes" not in h else (np.asarray(h["bboxes"], np.float32).reshape(-1, 4),
                                                         np.asarray(h["bbox_scores"], np.float32))
            state.headers[frame.frame_id] = h
            state.last_frame_id = frame.frame_id
            stage.busy_since = time.monotonic()
            emit(state, state.stream.process(frame, detections, detect=detections is not None))
            stage.busy_since = None

        def advance(state: _StreamState) -> None:
            while True:
                if state.next_seq in state.pending:
                    process(state, state.pending.pop(state.next_seq)[0])
                elif state.pending and time.monotonic() - min(t for _, t in state.pending.values()) > gap:
                    first = min(state.pending)
                    stage.counters["lost"] += first - state.next_seq  # lost with a crashed worker
                    log.warning("%s: %d frame(s) of %s lost; going on", stage.name, first - state.next_seq, state.name)
                    state.next_seq = first
                elif state.last_seq is not None and state.next_seq > state.last_seq:
                    emit(state, state.stream.flush())
                    out.send_multipart(encode(header("eos", state.name, last_frame_id=state.final_frame_id)))
                    state.done = True
                    return
                elif state.last_seq is not None and not state.pending and time.monotonic() - state.eos_at > gap:
                    stage.counters["lost"] += state.last_seq - state.next_seq + 1  # the last frames were lost
                    state.next_seq = state.last_seq + 1
                else:
                    return

        def new_epoch(state: _StreamState, epoch: int) -> None:
            """The stream's capture was (re)started: finish what the old one sent, then follow the new one."""
            for seq in sorted(state.pending):
                process(state, state.pending[seq][0])
            if state.epoch is not None:
                state.old_epochs.add(state.epoch)
            state.epoch, state.pending, state.next_seq, state.last_seq = epoch, {}, 1, None

        def get(stream_id: str) -> _StreamState:
            if stream_id not in streams:
                streams[stream_id] = _StreamState(stream_id, PoseStream(pipeline, config.tracking, config.classify, lifter))
            return streams[stream_id]

        while True:
            if inp.poll(100):
                message = stage.receive(inp)
                if message is not None:
                    h = message.header
                    state = get(h["stream"])
                    try:
                        require(h, epoch=int, **({"seq": int} if message.kind == "frame" else {"last_seq": int}))
                    except WireError:
                        message = None
                    if message is None or (message.kind == "frame" and not _detections_ok(h)):
                        stage.counters["malformed"] += 1
                    elif state.done or h["epoch"] in state.old_epochs:
                        stage.counters["duplicates"] += 1  # from a capture that was replaced, or after the end
                    else:
                        if h["epoch"] != state.epoch:
                            new_epoch(state, h["epoch"])
                        if message.kind == "frame":
                            if h["seq"] >= state.next_seq and h["seq"] not in state.pending:
                                state.pending[h["seq"]] = (message, time.monotonic())
                            else:
                                stage.counters["duplicates"] += 1
                        elif message.kind == "eos" and state.last_seq is None:
                            state.last_seq, state.final_frame_id = h["last_seq"], h["last_frame_id"]
                            state.eos_at = time.monotonic()
            for state in list(streams.values()):
                if not state.done:
                    advance(state)
    finally:
        stage.close()
