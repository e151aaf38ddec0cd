"""The detect stage: the person detector, N workers sharing the frames (stateless)."""

from __future__ import annotations

import logging
import time

import numpy as np
import zmq

from posestream.stream.graph.wire import Timer
from posestream.stream.graph.endpoints import secure

from .base import Stage

log = logging.getLogger("posestream.graph")


def run_detect(spec: dict) -> int:
    """Detect people in the frames of every capture marked ``detect`` (all of them with
    ``tracking.detect_interval`` 1) and forward frame + boxes; forward the others as they are."""
    from posestream.stream.config import PipelineConfig
    from posestream.stream.pipeline import PosePipeline

    stage = Stage(spec)
    try:
        pipeline = PosePipeline.from_config(
            PipelineConfig(**{**spec["config"]["pipeline"], "threads": spec.get("threads", 0)}), pose=False)
        pipeline.detect(np.zeros((480, 640, 3), np.uint8))  # warm up before frames come (first runs are slow)
        inp = stage.context.socket(zmq.PULL)
        inp.rcvhwm = stage.graph["queue"]
        for endpoint in spec["endpoints"]["frames"].values():
            secure(inp, endpoint, False, stage.keys)
        out = stage.socket(zmq.PUSH, spec["endpoints"]["detections"], bind=False, hwm=stage.graph["queue"])
        stage.state = "running"
        while True:
            message = stage.receive(inp)
            if message is None:
                continue
            stage.busy_since = time.monotonic()
            if message.kind == "frame":
                if message.header.get("detect", True) is False:  # between the tracker's detection frames
                    stage.send(out, message.header, message.image)
                    stage.counters["passed"] += 1
                else:
                    timer = Timer(message.header, "detect")
                    bboxes, scores = pipeline.detect(message.image)
                    timer.stop()
                    message.header.update(bboxes=bboxes.tolist(), bbox_scores=scores.tolist())
                    stage.send(out, message.header, message.image)
                    stage.counters["frames"] += 1
            elif message.kind == "eos":
                stage.send(out, message.header)
            stage.busy_since = None
    finally:
        stage.close()
