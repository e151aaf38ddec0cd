"""The sink stage: JSON lines, mmpose JSON, annotated video, an optional window and a ZeroMQ PUB of
the results; prints metrics and writes ``metrics.json``."""

from __future__ import annotations

import logging
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


def run_sink(spec: dict) -> int:
    """Write every stream's results; publish them; print and save metrics; exit after every EOS."""
    from posestream.stream.sinks.annotate import SkeletonAnnotator
    from posestream.stream.results import FrameResult
    from posestream.stream.sinks.outputs import OutputFiles
    from posestream.stream.sinks.files import JsonLinesSink, PredictionsJsonSink, VideoSink, write_json_atomic

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
                            names = OutputFiles(out_dir, stream)
                            if sinks_config["jsonl"]:
                                records[stream] = JsonLinesSink(names.jsonl)
                                files[stream].append(PredictionsJsonSink(names.predictions))
                            if sinks_config["video"] and message.image is not None:
                                fps = Fraction(h.get("fps") or 25).limit_denominator(1001)
                                files[stream].append(VideoSink(names.video, fps, annotator))
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
                print(metrics_line(sum(frames.values()), m["fps"], c2r, sum(dropped.values()), spec["streams"]),
                      flush=True)
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
