"""The sink stage: JSON lines, mmpose JSON, annotated video, an optional window and a ZeroMQ PUB of
the results; prints metrics and writes ``metrics.json``."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections import defaultdict, deque
from fractions import Fraction
from pathlib import Path

import numpy as np
import zmq


from .base import Stage

log = logging.getLogger("posestream.graph")


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


class _Written:
    """What the sink has written of one stream."""

    def __init__(self, lossless: bool):
        self.lossless = lossless
        self.last_frame_id = 0  # of the last result written
        self.last_pts: float | None = None  # its pts, seconds
        self.max_track_id = 0
        self.hole_since: float | None = None  # a lossless stream waiting for a missing result
        self.finished = False


def run_sink(spec: dict) -> int:
    """Write every stream's results; publish them; print and save metrics; exit after every EOS.

    Lossless streams (``spec["lossless"]``: files) are written strictly in frame order with no
    frame missing: a result already written is dropped (a replay), one after a missing result
    is held back (counted as ``held_back``; the supervisor replays the stream from
    ``written``, see the heartbeat), and an end of stream before the last frame is written waits
    for the replay. With ``spec["resume"]`` (a restart after a crash) the streams' ``.part``
    files are taken up again (:mod:`posestream.stream.sinks.resume`), not started anew.

    Exit status: 0 every stream ended; 2 the PUB endpoint or output folder cannot be used, or an
    output cannot be written (a full disk; one error line naming the file; restarting would not help).
    """

    from posestream.stream.sinks.annotate import SkeletonAnnotator
    from posestream.stream.results import FrameResult
    from posestream.stream.sinks.outputs import OutputFiles
    from posestream.stream.sinks.files import JsonLinesSink, PredictionsJsonSink, VideoSink, write_json_atomic
    from posestream.stream.sinks.resume import take_up

    stage = Stage(spec)
    sinks_config = spec["config"]["sinks"]
    out_dir = Path(spec["out"])
    annotator = SkeletonAnnotator()
    files: dict[str, list] = {}  # stream → sinks taking a FrameResult
    records: dict[str, JsonLinesSink] = {}  # stream → JSON lines, written from the record as received
    expected = set(spec["streams"])
    lossless = set(spec.get("lossless", []))
    written = {s: _Written(s in lossless) for s in spec["streams"]}
    latency = defaultdict(_Percentiles)  # "capture_to_result" and per stage
    frames = defaultdict(int)
    dropped = defaultdict(int)
    first_last: dict[str, list[float]] = {}
    started = time.monotonic()
    window = sinks_config["window"]
    failed = False

    try:  # on SIGTERM (SystemExit) the finally below closes (renames) every file written so far
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            inp = stage.socket(zmq.PULL, spec["endpoints"]["results"], bind=True, hwm=stage.graph["queue"])
            pub = None
            if sinks_config.get("pub"):
                pub = stage.context.socket(zmq.PUB)
                pub.sndhwm, pub.linger = 100, 2000
                if sinks_config["pub"].startswith("tcp://") and stage.graph.get("curve_keys"):
                    # subscribers authenticate with their own keys (allow-list), never the graph's
                    from zmq.auth import load_certificate

                    from posestream.stream.graph.endpoints import SUBSCRIBERS_DOMAIN

                    public, secret = load_certificate(Path(stage.graph["curve_keys"]) / "server.key_secret")
                    pub.curve_secretkey, pub.curve_publickey, pub.curve_server = secret, public, True
                    pub.zap_domain = SUBSCRIBERS_DOMAIN.encode()
                    pub.setsockopt(getattr(zmq, "ZAP_ENFORCE_DOMAIN", 93), 1)  # no ZAP handler: nobody gets in
                pub.bind(sinks_config["pub"])
        except (zmq.ZMQError, OSError) as exc:
            what = sinks_config.get("pub") if isinstance(exc, zmq.ZMQError) else out_dir
            print(f"posestream: error: the sink cannot use {what}: {exc}", file=sys.stderr)
            return 2
        if spec.get("resume"):
            # a restart: streams the earlier sink finished stay finished (their files are final);
            # the others take up their .part files again
            earlier = spec.get("earlier") or {}
            for stream in spec["streams"]:
                state = written[stream]
                if stream in earlier.get("finished", []) or _finished_here(OutputFiles(out_dir, stream),
                                                                         spec.get("started_at")):
                    state.finished = True
                    state.last_frame_id = int(earlier.get("written", {}).get(stream, 0))
                    continue
                taken = take_up(OutputFiles(out_dir, stream), bool(sinks_config["video"]), annotator)
                if taken is not None:
                    kept, sinks = taken
                    records[stream], files[stream] = sinks[0], sinks[1:]
                    state.last_frame_id, state.max_track_id = kept.last_frame_id, kept.max_track_id
                    state.last_pts = kept.last_pts
                    frames[stream] = kept.frames
                    log.warning("sink: took up %s again after frame %d", stream, kept.last_frame_id)
        stage.state = "running"
        last_print = time.monotonic()

        def metrics() -> dict:
            seconds = time.monotonic() - started
            steady = {s: round((frames[s] - 1) / (t[1] - t[0]), 2) for s, t in first_last.items() if t[1] > t[0]}
            now = time.monotonic()
            return {"seconds": round(seconds, 2), "frames": dict(frames),
                    "fps": {s: round(n / seconds, 2) for s, n in frames.items()} if seconds else {},
                    "steady_fps": steady,
                    "dropped": dict(dropped), "latency_ms": {k: v.summary() for k, v in latency.items()},
                    "malformed": stage.counters["malformed"], "forged": stage.counters["forged"],
                    "written": {s: w.last_frame_id for s, w in written.items()},
                    "written_pts": {s: w.last_pts for s, w in written.items() if w.last_pts is not None},
                    "max_track_id": {s: w.max_track_id for s, w in written.items()},
                    "finished": sorted(s for s, w in written.items() if w.finished),
                    "gap_s": round(max([now - w.hole_since for w in written.values() if w.hole_since] or [0.0]), 2)}

        def open_files(stream: str, h: dict, image) -> None:
            files[stream] = []
            names = OutputFiles(out_dir, stream)
            if sinks_config["jsonl"]:
                records[stream] = JsonLinesSink(names.jsonl)
                files[stream].append(PredictionsJsonSink(names.predictions))
            if sinks_config["video"] and image is not None:
                fps = Fraction(h.get("fps") or 25).limit_denominator(1001)
                files[stream].append(VideoSink(names.video, fps, annotator, crash_safe=True))

        def finish(stream: str, message) -> None:
            error = None
            for sink in files.pop(stream, []) + [s for s in [records.pop(stream, None)] if s]:
                try:  # every file is finished, even when one of them fails
                    with _naming(sink):
                        sink.close()
                except OSError as exc:
                    error = error or exc
            if error is not None:
                raise error
            written[stream].finished, written[stream].hole_since = True, None
            if pub is not None:
                pub.send_multipart([stream.encode(), message.packed])

        def take_result(stream: str, message) -> None:
            nonlocal window
            h, state = message.header, written[stream]
            if h["frame_id"] <= state.last_frame_id:
                stage.counters["duplicates"] += 1  # written before: a replay after a fault
                return
            if state.lossless and h["frame_id"] != state.last_frame_id + 1:
                stage.counters["held_back"] += 1  # after a missing result: the replay brings both
                state.hole_since = state.hole_since or time.monotonic()
                return
            state.hole_since = None
            result = FrameResult.from_json(h["result"])  # checked at the socket (wire.decode)
            if stream not in files:
                open_files(stream, h, message.image)
            with _naming(records.get(stream)):
                if stream in records:
                    records[stream].write_record(h["result"])
            for sink in files[stream]:
                with _naming(sink):
                    sink.write(result, message.image)
            state.last_frame_id, state.last_pts = h["frame_id"], float(h["pts"])
            if result.track_ids is not None and len(result.track_ids):
                state.max_track_id = max(state.max_track_id, int(result.track_ids.max()))
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

        stage.extra = metrics
        while not all(w.finished for w in written.values()):
            if inp.poll(200):
                message = stage.receive(inp)
                if message is not None and (message.header["stream"] not in expected or message.kind == "frame"):
                    stage.counters["malformed"] += 1  # not a stream of this graph, or not for the sink
                elif message is not None and not written[message.header["stream"]].finished:
                    stream = message.header["stream"]
                    if message.kind == "eos":
                        state = written[stream]
                        if state.lossless and state.last_frame_id < message.header["last_frame_id"]:
                            stage.counters["early_eos"] += 1  # results missing: wait for the replay
                            state.hole_since = state.hole_since or time.monotonic()
                        else:
                            finish(stream, message)
                    elif message.kind == "result":
                        stage.busy_since = time.monotonic()
                        take_result(stream, message)
                        stage.busy_since = None
            if time.monotonic() - last_print > stage.graph["metrics_interval"]:
                last_print = time.monotonic()
                m = metrics()
                c2r = m["latency_ms"].get("capture_to_result", {})
                print(metrics_line(sum(frames.values()), m["fps"], c2r, sum(dropped.values()), spec["streams"]),
                      flush=True)
        write_json_atomic(out_dir / "metrics.json", metrics())
        stage.state = "done"
        return 0
    except OSError as exc:  # a full disk, a folder gone: one line, and no restart would help
        print(f"posestream: error: {exc.filename or out_dir}: {exc.strerror or exc}", file=sys.stderr)
        failed = True
        return 2
    finally:
        for stream_files in [*files.values(), list(records.values())]:  # an error or a stop: keep what was written
            for sink in stream_files:
                try:
                    sink.close()
                except OSError as exc:
                    if not failed:  # the same full disk is said once, above
                        log.error("could not finish %s: %s", getattr(sink, "path", type(sink).__name__), exc)
                except Exception:
                    log.exception("could not close %s", type(sink).__name__)
        stage.close()


def _finished_here(names, started_at: float | None) -> bool:
    """Whether this run already finished the stream: its JSON lines are final (renamed) and
    newer than the run's start, with no ``.part`` beside them."""
    from posestream.stream.sinks.files import part_path

    try:
        return (started_at is not None and names.jsonl.stat().st_mtime >= started_at
                and not part_path(names.jsonl).exists())
    except OSError:
        return False


@contextlib.contextmanager
def _naming(sink):
    """Name the output file in an OSError raised while writing it (a write to an open file names none)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and getattr(sink, "path", None) is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(sink.path)) from exc
        raise


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


def metrics_line(frames: int, fps: dict[str, float], capture_to_result: dict, dropped: int, streams: list[str]) -> str:
    """The periodic metrics line: never empty — before the first result it says what it waits for.

    Args:
        frames: results written so far. fps: stream → frames/s. capture_to_result: latency
            percentiles in ms (``p50``, ``p95``, ``p99``; empty before any result).
        dropped: frames the sources dropped. streams: the run's stream ids.
    """
    if not frames:
        return f"[posestream] waiting for the first result of {', '.join(streams)} (models warm up, sources connect)"
    c = capture_to_result
    return (f"[posestream] {frames} frames, fps " + ", ".join(f"{s} {v}" for s, v in fps.items())
            + f"; capture->result p50/p95/p99 {c.get('p50', '-')}/{c.get('p95', '-')}/{c.get('p99', '-')} ms; "
            + f"dropped {dropped}")
