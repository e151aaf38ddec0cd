"""The capture stage: one per source; reads frames and sends them (files: lossless, as fast as the
graph takes them or paced with ``realtime``; cameras: only the newest frame, drops counted).

A file capture started with ``start_frame`` (the supervisor's replay after a fault) reads and
skips the frames before it, so that the stream goes on from the first frame not yet written; a
restarted camera numbers its frames from ``start_frame`` and times them from ``start_pts``
(seconds), so that its stream's frame ids and times go on rather than start again."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time

import zmq

from posestream.stream.graph.wire import header

from .base import EXIT_BAD_SOURCE, EXIT_SOURCE_FAILED, Stage, end_if_orphaned

log = logging.getLogger("posestream.graph")


def run_capture(spec: dict) -> int:
    """Read one source and send its frames; EOS at the end (or on SIGTERM)."""
    from posestream.stream.capture.cameras import RtspOptions, open_any_source, redact
    from posestream.stream.capture.files import SourceError

    stage = Stage(spec)
    stream, live_source = spec["stream"], None
    try:
        try:
            source = open_any_source(spec["source"], RtspOptions())
        except SourceError as exc:
            print(f"posestream: error: {redact(exc)}", file=sys.stderr)
            return EXIT_BAD_SOURCE
        live = getattr(source, "live", False)
        live_source = source if live else None
        stopping = threading.Event()

        def on_term(*_):
            end_if_orphaned()
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
        start_frame = int(spec.get("start_frame") or 1)
        interval = int(spec["config"]["tracking"]["detect_interval"])
        stage.state = "running"
        start, last_id, last_pts = time.monotonic(), 0, 0.0
        epoch = time.time_ns()  # this capture process's run: a restarted capture starts a new sequence
        id_offset, pts_offset = 0, 0.0
        if live:  # a camera taken up again: its ids and times go on from the stream's
            id_offset, pts_offset, start_frame = start_frame - 1, float(spec.get("start_pts") or 0.0), 1
        paced = False
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
                if frame.frame_id < start_frame:  # written before the fault: not sent again
                    last_id, last_pts = frame.frame_id, frame.pts
                    continue
                if realtime:
                    if not paced:  # the first frame sent sets the clock (a replay starts part-way)
                        start, paced = time.monotonic() - frame.pts, True
                    delay = start + frame.pts - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                seq = stage.counters["sent"] + 1  # consecutive over the frames sent
                head = header("frame", stream, frame.frame_id, pts=frame.pts, capture_ns=time.time_ns(), fps=fps,
                              dropped=stage.counters["dropped"], timings={}, epoch=epoch, seq=seq,
                              detect=(seq - 1) % interval == 0,  # the tracker's detection frames only
                              lossless=not newest_wins)
                stage.counters["read"] += 1
                stage.counters["reconnects"] = getattr(source, "reconnects", 0)
                if newest_wins:
                    try:  # a frame the graph cannot take now is dropped: the next one is newer
                        stage.send(out, head, frame.image, flags=zmq.NOBLOCK)
                    except zmq.Again:
                        stage.counters["dropped"] += 1
                        continue
                else:
                    while not stopping.is_set():
                        if out.poll(200, zmq.POLLOUT):
                            stage.send(out, head, frame.image)
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
            # bounded: with no detector left (the graph is going down) nobody takes it
            if not out.poll(int(stage.graph["heartbeat_timeout"] * 1000), zmq.POLLOUT):
                log.warning("%s: no detector took the end of stream", stage.name)
                break
            stage.send(out, header("eos", stream, last_frame_id=last_id, epoch=epoch, last_seq=stage.counters["sent"],
                                   lossless=not newest_wins))
        stage.state = "done"
        if failed is not None:
            print(f"posestream: error: {stream}: {redact(failed)} (after frame {last_id}; its results so far are kept)",
                  file=sys.stderr)
            return EXIT_SOURCE_FAILED
        return 0
    finally:
        stage.close()
