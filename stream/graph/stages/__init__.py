"""The live graph's stages, each run as its own process (``python -m posestream.stream.graph SPEC``).

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
long it has been busy on one message, counts and drops malformed and forged messages, ignores
SIGINT (the supervisor decides how to stop), runs in its own session (a signal to the
supervisor's process group reaches only the supervisor) and is sent SIGTERM when the
supervisor dies.
"""

from __future__ import annotations

import json
import logging
import sys

from .base import EXIT_BAD_SOURCE, EXIT_SOURCE_FAILED, Stage, die_with_parent

__all__ = ["EXIT_BAD_SOURCE", "EXIT_SOURCE_FAILED", "STAGES", "Stage", "main"]
from .capture import run_capture
from .detect import run_detect
from .person import run_person
from .sink import run_sink

STAGES = {"capture": run_capture, "detect": run_detect, "person": run_person, "sink": run_sink}


def main(argv: list[str] | None = None) -> int:
    """``python -m posestream.stream.graph NAME`` with the stage's spec as JSON on standard input
    (the supervisor's pipe: sources and endpoints stay out of the process list), or
    ``python -m posestream.stream.graph SPEC_JSON``: run one stage."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0] if argv and argv[0].lstrip().startswith("{") else sys.stdin.read())
    die_with_parent(spec.get("parent_pid"))  # a stage never outlives its supervisor
    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s {spec['name']}: %(message)s")
    from posestream.stream.capture.cameras import RedactingFilter

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())  # no RTSP password in any log line
    import cv2

    cv2.setNumThreads(int(spec.get("threads", 1)))  # OpenCV's pool shares the cores with the other stages
    return STAGES[spec["stage"]](spec)
