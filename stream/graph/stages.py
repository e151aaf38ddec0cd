"""The live graph's stages, each run as its own process (``python -m stream.graph SPEC``).

capture ──PUSH/PULL──► detect × N ──PUSH/PULL──► person ──PUSH/PULL──► sink (files, window, PUB)

* ``capture``: one per source; reads frames and sends them (files: lossless, as fast as the
  graph takes them or paced with ``realtime``; cameras: only the newest frame, drops counted).
* ``detect``: the person detector, N workers sharing the frames (stateless).
* ``person``: per stream, frames put back in order, then MMDeploy PoseTracker's loop — pose on the
  detected and tracked boxes, tracking, smoothing — lifting and labels (:class:`PoseStream`):
  pose and tracking form one feedback loop (tracked boxes are the next frame's crops), so they
  share a process.
* ``sink``: JSON lines, mmpose JSON, annotated video, an optional window and a ZeroMQ PUB of the
  results; prints metrics and writes ``metrics.json``.

Every stage sends heartbeats (with its counters) to the supervisor from a thread, marks how
long it has been busy on one message, counts and drops malformed messages, and ignores SIGINT
(the supervisor decides how to stop).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections import defaultdict, deque
from fractions import Fraction
from pathlib import Path

import numpy as np
import zmq

from ..wire import Timer, WireError, decode, encode, header, require
from .endpoints import secure, start_authenticator

log = logging.getLogger("posestream.graph")

#: Exit status of a capture stage whose source cannot be opened (not worth restarting).
EXIT_BAD_SOURCE = 2
#: Exit status of a capture stage whose source failed part-way (its stream was ended with EOS).
EXIT_SOURCE_FAILED = 3


def _exit_on_term(*_) -> None:
    raise SystemExit(143)


class Stage:
    """What every stage shares: ZeroMQ context, heartbeat thread, counters.

    Args:
        spec: the stage's spec (see :mod:`stream.graph.supervisor`).
    """

    def __init__(self, spec: dict):
        self.spec, self.name = spec, spec["name"]
        self.graph = spec["config"]["graph"]
        self.context = zmq.Context()
        self.auth = start_authenticator(self.context, self.graph.get("curve_keys"))
        self.counters = defaultdict(int)
        self.state = "starting"
        self.busy_since: float | None = None
        self._stop = threading.Event()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _exit_on_term)  # capture replaces this; close() still sends a last heartbeat
        self._beat = threading.Thread(target=self._heartbeats, daemon=True)
        self._beat.start()

    def socket(self, kind: int, endpoint: str, bind: bool, hwm: int | None = None) -> zmq.Socket:
        """A socket of ``kind`` bound or connected to ``endpoint`` (CURVE over tcp with keys),
        its high-water mark ``hwm`` messages each way, lingering 2 s at close."""
        sock = self.context.socket(kind)
        if hwm is not None:
            sock.sndhwm = sock.rcvhwm = hwm
        sock.linger = 2000
        secure(sock, endpoint, bind, self.graph.get("curve_keys"))
        return sock

    def _heartbeats(self) -> None:
        sock = self.context.socket(zmq.PUSH)
        sock.linger = 0
        sock.sndhwm = 10
        secure(sock, self.spec["endpoints"]["control"], False, self.graph.get("curve_keys"))
        while not self._stop.is_set():
            self.send_heartbeat(sock)
            self._stop.wait(self.graph["heartbeat_interval"])
        self.send_heartbeat(sock)
        sock.close()

    def send_heartbeat(self, sock) -> None:
        """Send state, counters, busy seconds and :meth:`extra` on the control socket (never blocks)."""
        busy = None if self.busy_since is None else time.monotonic() - self.busy_since
        try:
            sock.send_multipart(encode(header("heartbeat", "", stage=self.name, pid=os.getpid(), state=self.state,
                                              busy=busy, counters=dict(self.counters), extra=self.extra())),
                                flags=zmq.NOBLOCK)
        except (zmq.Again, RuntimeError):  # queue full, or counters changed while copied: next beat
            pass

    def extra(self) -> dict:
        """Stage-specific figures sent with each heartbeat."""
        return {}

    def receive(self, sock: zmq.Socket):
        """One message from ``sock`` (decoded), or None if it was malformed (counted)."""
        parts = sock.recv_multipart(copy=False)
        try:
            return decode(parts)
        except WireError as exc:
            self.counters["malformed"] += 1
            log.warning("%s: dropped a malformed message (%s)", self.name, exc)
            return None

    def close(self) -> None:
        """Stop the heartbeats (a last one goes out) and close every socket."""
        self._stop.set()
        self._beat.join(timeout=2)
        if self.auth is not None:
            self.auth.stop()
        self.context.destroy(linger=2000)


def run_capture(spec: dict) -> int:
    """Read one source and send its frames; EOS at the end (or on SIGTERM)."""
    from ..live import RtspOptions, open_any_source
    from ..sources import SourceError

    stage = Stage(spec)
    stream, live_source = spec["stream"], None
    try:
        try:
            source = open_any_source(spec["source"], RtspOptions())
        except SourceError as exc:
            print(f"posestream: error: {exc}", file=sys.stderr)
            return EXIT_BAD_SOURCE
        live = getattr(source, "live", False)
        live_source = source if live else None
        stopping = threading.Event()

        def on_term(*_):
            stopping.set()
            if live_source is not None:
                live_source.stop()

        signal.signal(signal.SIGTERM, on_term)
        realtime = stage.graph["realtime"] and not live
        newest_wins = live or (realtime and stage.graph["drop_late"])
        out = stage.socket(zmq.PUSH, spec["endpoints"]["frames"][stream], bind=True,
                           hwm=1 if newest_wins else stage.graph["queue"])
        fps = float(getattr(source, "fps", 0) or 0)
        max_frames = spec.get("max_frames")
        stage.state = "running"
        start, last_id, last_pts = time.monotonic(), 0, 0.0
        epoch = time.time_ns()  # this capture process's run: a restarted capture starts a new sequence
        id_offset, pts_offset = 0, 0.0
        failed = None
        while not stopping.is_set():
            frames = iter(source)
            while True:
                try:
                    frame = next(frames, None)
                except SourceError as exc:  # the file or camera broke part-way: end this stream cleanly
                    failed = exc
                    frame = None
                if frame is None:
                    break
                frame.frame_id += id_offset
                frame.pts += pts_offset
                if stopping.is_set() or (max_frames and frame.frame_id > max_frames):
                    stopping.set()
                    break
                if realtime:
                    delay = start + frame.pts - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                head = header("frame", stream, frame.frame_id, pts=frame.pts, capture_ns=time.time_ns(), fps=fps,
                              dropped=stage.counters["dropped"], timings={}, epoch=epoch,
                              seq=stage.counters["sent"] + 1)  # consecutive over the frames sent
                stage.counters["read"] += 1
                stage.counters["reconnects"] = getattr(source, "reconnects", 0)
                if newest_wins:
                    try:  # a frame the graph cannot take now is dropped: the next one is newer
                        out.send_multipart(encode(head, frame.image), copy=False, flags=zmq.NOBLOCK)
                    except zmq.Again:
                        stage.counters["dropped"] += 1
                        continue
                else:
                    while not stopping.is_set():
                        if out.poll(200, zmq.POLLOUT):
                            out.send_multipart(encode(head, frame.image), copy=False)
                            break
                    if stopping.is_set():
                        break
                stage.counters["sent"] += 1
                last_id, last_pts = frame.frame_id, frame.pts
            if live or not stage.graph["loop"] or failed is not None:
                break
            id_offset, pts_offset = last_id, last_pts + 1.0 / (fps or 25.0)
            source = open_any_source(spec["source"], RtspOptions())
        for _ in range(stage.graph["detect_workers"]):  # PUSH deals round-robin: one EOS per worker
            out.send_multipart(encode(header("eos", stream, last_frame_id=last_id, epoch=epoch,
                                             last_seq=stage.counters["sent"])))
        stage.state = "done"
        if failed is not None:
            print(f"posestream: error: {stream}: {failed} (after frame {last_id}; its results so far are kept)",
                  file=sys.stderr)
            return EXIT_SOURCE_FAILED
        return 0
    finally:
        stage.close()


def run_detect(spec: dict) -> int:
    """Detect people in frames from every capture; forward frame + boxes."""
    from ..config import PipelineConfig
    from ..pipeline import PosePipeline

    stage = Stage(spec)
    try:
        pipeline = PosePipeline.from_config(PipelineConfig(**spec["config"]["pipeline"]), pose=False)
        pipeline.detect(np.zeros((480, 640, 3), np.uint8))  # warm up before frames come (first runs are slow)
        inp = stage.context.socket(zmq.PULL)
        inp.rcvhwm = stage.graph["queue"]
        for endpoint in spec["endpoints"]["frames"].values():
            secure(inp, endpoint, False, stage.graph.get("curve_keys"))
        out = stage.socket(zmq.PUSH, spec["endpoints"]["detections"], bind=False, hwm=stage.graph["queue"])
        stage.state = "running"
        while True:
            message = stage.receive(inp)
            if message is None:
                continue
            stage.busy_since = time.monotonic()
            if message.kind == "frame":
                timer = Timer(message.header, "detect")
                bboxes, scores = pipeline.detect(message.image)
                timer.stop()
                message.header.update(bboxes=bboxes.tolist(), bbox_scores=scores.tolist())
                out.send_multipart(encode(message.header, message.image), copy=False)
                stage.counters["frames"] += 1
            elif message.kind == "eos":
                out.send_multipart(encode(message.header))
            stage.busy_since = None
    finally:
        stage.close()


def _detections_ok(head: dict) -> bool:
    """A frame message from a detector: boxes as [x1, y1, x2, y2] lists with one score each."""
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
    from ..config import RunConfig
    from ..pipeline import PosePipeline, PoseStream
    from ..sources import Frame

    stage = Stage(spec)
    try:
        config = RunConfig.from_dict(spec["config"])
        pipeline = PosePipeline.from_config(config.pipeline, detector=False)
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
                head["timings"].update({k: round(v, 3) for k, v in result.timings.items() if k != "detect"})
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
            detections = (np.asarray(h["bboxes"], np.float32).reshape(-1, 4), np.asarray(h["bbox_scores"], np.float32))
            state.headers[frame.frame_id] = h
            state.last_frame_id = frame.frame_id
            stage.busy_since = time.monotonic()
            emit(state, state.stream.process(frame, detections))
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


class _Percentiles:
    """Bounded sample of recent values (ms) with p50/p95/p99."""

    def __init__(self, size: int = 10000):
        self.values = deque(maxlen=size)

    def add(self, value: float) -> None:
        self.values.append(value)

    def summary(self) -> dict:
        if not self.values:
            return {}
        p50, p95, p99 = np.percentile(np.fromiter(self.values, float), [50, 95, 99])
        return {"p50": round(p50, 2), "p95": round(p95, 2), "p99": round(p99, 2), "n": len(self.values)}


def run_sink(spec: dict) -> int:
    """Write every stream's results; publish them; print and save metrics; exit after every EOS."""
    from ..annotate import SkeletonAnnotator
    from ..results import FrameResult
    from ..sinks import JsonLinesSink, PredictionsJsonSink, VideoSink, write_json_atomic

    stage = Stage(spec)
    sinks_config = spec["config"]["sinks"]
    out_dir = Path(spec["out"])
    out_dir.mkdir(parents=True, exist_ok=True)
    annotator = SkeletonAnnotator()
    files: dict[str, list] = {}  # stream → sinks taking a FrameResult
    records: dict[str, JsonLinesSink] = {}  # stream → JSON lines, written from the record as received
    expected = set(spec["streams"])
    finished: set[str] = set()
    latency = defaultdict(_Percentiles)  # "capture_to_result" and per stage
    frames = defaultdict(int)
    dropped = defaultdict(int)
    first_last: dict[str, list[float]] = {}
    started = time.monotonic()
    window = sinks_config["window"]

    try:  # on SIGTERM (SystemExit) the finally below closes (renames) every file written so far
        inp = stage.socket(zmq.PULL, spec["endpoints"]["results"], bind=True, hwm=stage.graph["queue"])
        pub = None
        if sinks_config.get("pub"):
            pub = stage.socket(zmq.PUB, sinks_config["pub"], bind=True, hwm=100)
        stage.state = "running"
        last_print = time.monotonic()

        def metrics() -> dict:
            seconds = time.monotonic() - started
            steady = {s: round((frames[s] - 1) / (t[1] - t[0]), 2) for s, t in first_last.items() if t[1] > t[0]}
            return {"seconds": round(seconds, 2), "frames": dict(frames),
                    "fps": {s: round(n / seconds, 2) for s, n in frames.items()} if seconds else {},
                    "steady_fps": steady,
                    "dropped": dict(dropped), "latency_ms": {k: v.summary() for k, v in latency.items()},
                    "malformed": stage.counters["malformed"]}

        stage.extra = metrics
        while not expected <= finished:
            if inp.poll(200):
                message = stage.receive(inp)
                if message is not None and message.header["stream"] not in expected:
                    stage.counters["malformed"] += 1  # not a stream of this graph
                elif message is not None:
                    h, stream = message.header, message.header["stream"]
                    if message.kind == "eos":
                        for sink in files.pop(stream, []) + [s for s in [records.pop(stream, None)] if s]:
                            sink.close()
                        finished.add(stream)
                        if pub is not None:
                            pub.send_multipart([stream.encode(), message.packed])
                    elif message.kind == "result":
                        stage.busy_since = time.monotonic()
                        try:
                            result = FrameResult.from_json(h["result"])
                        except (KeyError, ValueError, TypeError) as exc:
                            stage.counters["malformed"] += 1
                            log.warning("sink: dropped a result that is not a frame record (%r)", exc)
                            stage.busy_since = None
                            continue
                        if stream not in files:
                            files[stream] = []
                            if sinks_config["jsonl"]:
                                records[stream] = JsonLinesSink(out_dir / f"{stream}.jsonl")
                                files[stream].append(PredictionsJsonSink(out_dir / f"results_{stream}.json"))
                            if sinks_config["video"] and message.image is not None:
                                fps = Fraction(h.get("fps") or 25).limit_denominator(1001)
                                files[stream].append(VideoSink(out_dir / f"{stream}.mp4", fps, annotator))
                        if stream in records:
                            records[stream].write_record(h["result"])
                        for sink in files[stream]:
                            sink.write(result, message.image)
                        if window and message.image is not None:
                            window = _show(stream, annotator.annotate(message.image, result))
                        if pub is not None:  # topic = stream id; the header as received, no image
                            pub.send_multipart([stream.encode(), message.packed])
                        frames[stream] += 1
                        now = time.monotonic()
                        first_last.setdefault(stream, [now, now])[1] = now
                        dropped[stream] = h.get("dropped", 0)
                        latency["capture_to_result"].add((time.time_ns() - h["capture_ns"]) / 1e6)
                        for name, ms in h.get("timings", {}).items():
                            latency[name].add(ms)
                        stage.busy_since = None
            if time.monotonic() - last_print > stage.graph["metrics_interval"]:
                last_print = time.monotonic()
                m = metrics()
                c2r = m["latency_ms"].get("capture_to_result", {})
                print(f"[posestream] {sum(frames.values())} frames, fps "
                      + ", ".join(f"{s} {v}" for s, v in m["fps"].items())
                      + f"; capture→result p50/p95/p99 {c2r.get('p50', '-')}/{c2r.get('p95', '-')}/{c2r.get('p99', '-')} ms; "
                      + f"dropped {sum(dropped.values())}", flush=True)
        write_json_atomic(out_dir / "metrics.json", metrics())
        stage.state = "done"
        return 0
    finally:
        for stream_files in [*files.values(), list(records.values())]:  # an error or a stop: keep what was written
            for sink in stream_files:
                try:
                    sink.close()
                except Exception:
                    log.exception("could not close %s", type(sink).__name__)
        stage.close()


def _show(stream: str, image: np.ndarray) -> bool:
    """Show a frame in a window; False (and a warning) when no display or no GUI support."""
    import cv2

    try:
        cv2.imshow(f"posestream {stream}", image)
        cv2.waitKey(1)
        return True
    except cv2.error:
        log.warning("no window: this OpenCV has no GUI support or there is no display")
        return False


STAGES = {"capture": run_capture, "detect": run_detect, "person": run_person, "sink": run_sink}


def main(argv: list[str] | None = None) -> int:
    """``python -m stream.graph SPEC_JSON``: run one stage."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s {spec['name']}: %(message)s")
    return STAGES[spec["stage"]](spec)
