#!/usr/bin/env python3
"""Speed of ``posestream run`` on a recorded video: per-stage ms, end-to-end fps, and the model-only floor;
and of the 3D lifter: streaming vs recomputing the window, and the shipped lifter's MPJPE table.

    python tools/benchmark.py ../shared/media/opencv-vtest/vtest.avi --frames 200
    python tools/benchmark.py ../shared/media/har-wave/wave.mp4 --frames 100 --hands --min-hand-size 0
    python tools/benchmark.py --lifter
    python tools/benchmark.py --graph ../shared/media/opencv-vtest/vtest.avi --frames 300 --soak 600

Stages: decode (PyAV), detect, pose (pre- and post-processing included), write (JSON lines,
mmpose JSON, annotation and H.264 encode). The floor runs only the two ONNX models on tensors
prepared beforehand from the same frames (same crops, same batch sizes): no decode,
no pre/post-processing, no encode — the speed no pipeline around these models can beat.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from posestream.stream.run import run_source  # noqa: E402
from posestream.stream.config import RunConfig  # noqa: E402
from posestream.stream.pipeline import PosePipeline  # noqa: E402
from posestream.stream.capture.files import VideoFileSource  # noqa: E402


def model_floor(pipeline: PosePipeline, video: Path, frames: int, people: list[int]) -> dict[str, float]:
    """Milliseconds per frame of the bare models, one crop per person present: the detector on
    every frame, and the keypoint model at batch 1 once per person reported in that frame
    (``people``, from the end-to-end run) — on tensors prepared beforehand: no decode, no
    pre/post-processing, no encode, no second pass, no duplicate crop. No pipeline around these
    models can beat it (detecting every N frames can). With ``detect_tile``, the detector runs
    on the whole frame and on each tile (:func:`~posestream.stream.detect.tiles.tile_grid`)."""
    from posestream.stream.detect.tiles import tile_grid

    detector, estimator, tile = pipeline.detector, pipeline.estimator, pipeline.config.detect_tile
    det_inputs, frames_read = [], 0
    for frame in VideoFileSource(video):
        if frame.frame_id > frames:
            break
        det_inputs.append(detector.preprocess(frame.image)[0])
        for x1, y1, x2, y2 in tile_grid(frame.image.shape[1], frame.image.shape[0], tile) if tile else ():
            det_inputs.append(detector.preprocess(np.ascontiguousarray(frame.image[y1:y2, x1:x2]))[0])
        frames_read = frame.frame_id
    name = estimator.backend.inputs[0].name
    if name == "input_1":  # BlazePose NHWC
        crop, outputs = np.random.default_rng(0).random((1, 256, 256, 3), np.float32), ["Identity", "Identity_1"]
    else:  # RTMPose NCHW
        w, h = estimator.input_size
        crop, outputs = np.random.default_rng(0).random((1, 3, h, w), np.float32), ["simcc_x", "simcc_y"]
    det_name = detector.backend.inputs[0].name
    detector.backend.run({det_name: det_inputs[0]})
    estimator.backend.run({name: crop}, outputs)
    t0 = time.perf_counter()
    for tensor in det_inputs:
        detector.backend.run({det_name: tensor})
    t1 = time.perf_counter()
    for count in people[:frames_read]:
        for _ in range(count):
            estimator.backend.run({name: crop}, outputs)
    t2 = time.perf_counter()
    n = max(frames_read, 1)
    return {"detect": (t1 - t0) * 1e3 / n, "pose": (t2 - t1) * 1e3 / n}


def end_to_end(video: Path, frames: int, config: RunConfig):
    """``posestream run`` on the first ``frames`` frames, as the command does it but timed without
    startup (models loaded and warmed up first), no annotated video (``--no-video``), lifting and
    labels on. Returns the RunSummary, the people reported in each frame and the pipeline."""
    pipeline = PosePipeline.from_config(config.pipeline)
    lifter = config.lift.load() if config.lift.enabled else None
    with tempfile.TemporaryDirectory() as out:
        run_source(video, out, pipeline, config.tracking, config.classify, lifter, write_video=False,
                   max_frames=5, progress=False)  # warm-up
        summary = run_source(video, out, pipeline, config.tracking, config.classify, lifter, write_video=False,
                             max_frames=frames, progress=False)
        with open(Path(out) / f"{video.stem}.jsonl") as handle:
            people = [len(json.loads(line)["instances"]) for line in handle]
    return summary, people, pipeline


def mediapipe_fps(video: Path, frames: int) -> float | None:
    """MediaPipe Pose (legacy ``solutions.pose``, ``model_complexity=1`` = BlazePose GHUM full, the
    same landmark weights) in frames per second on the first ``frames`` frames, startup
    excluded; None when MediaPipe (with ``solutions.pose``) is not installed."""
    try:
        import mediapipe as mp
        pose_module = mp.solutions.pose
    except (ImportError, AttributeError):
        return None
    import cv2

    images = []
    for frame in VideoFileSource(video):
        if frame.frame_id > frames:
            break
        images.append(frame.image)
    with pose_module.Pose(static_image_mode=False, model_complexity=1, enable_segmentation=False) as pose:
        pose.process(cv2.cvtColor(images[0], cv2.COLOR_BGR2RGB))
        t0 = time.perf_counter()
        for image in images:
            pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return len(images) / (time.perf_counter() - t0)


def blazepose_graph_ms(model: Path, repeats: int = 30) -> dict[str, float]:
    """Per-crop ms of the BlazePose graph as converted (batch 1, all heads) and as posestream
    rewrites it (dynamic batch, landmark heads only), at batch 1 and 6."""
    from posestream.engines.backend import OnnxRuntimeBackend
    from posestream.stream.pose import batched_blazepose_graph

    rng = np.random.default_rng(0)
    timings = {}
    for label, backend, batch in (("as converted, batch 1", OnnxRuntimeBackend(model, "cpu"), 1),
                                  ("rewritten, batch 1", OnnxRuntimeBackend(batched_blazepose_graph(model), "cpu"), 1),
                                  ("rewritten, batch 6", OnnxRuntimeBackend(batched_blazepose_graph(model), "cpu"), 6)):
        tensor = rng.random((batch, 256, 256, 3), dtype=np.float32)
        backend.run({"input_1": tensor}, ["Identity"])
        t0 = time.perf_counter()
        for _ in range(repeats):
            backend.run({"input_1": tensor}, ["Identity"])
        timings[label] = (time.perf_counter() - t0) * 1e3 / repeats / batch
    return timings


def graph_report(video: Path, frames: int, soak: float, queue: int = 2, detect_interval: int = 1,
                 detect_tile: int | None = None) -> None:
    """The live graph vs the single-process main job on the same file and frames (throughput
    ratio), the graph paced at the file's frame rate like a camera (latency, drops), and a soak
    run of ``soak`` seconds looping the file (peak memory of every process)."""
    import signal
    import threading

    from posestream.stream.config import RunConfig
    from posestream.stream.graph.supervisor import Supervisor

    tracking = {"detect_interval": detect_interval}
    pipeline_settings = {} if detect_tile is None else {"detect_tile": detect_tile}
    config = RunConfig.from_dict({"tracking": tracking, "pipeline": pipeline_settings})
    pipeline = PosePipeline.from_config(config.pipeline)
    lifter = config.lift.load()
    run_source(video, tempfile.mkdtemp(), pipeline, config.tracking, max_frames=5, progress=False, lifter=lifter)
    with tempfile.TemporaryDirectory() as out:
        single = run_source(video, out, pipeline, config.tracking, max_frames=frames, progress=False, lifter=lifter)
    del pipeline

    def graph_run(seconds: float | None = None, **graph) -> dict:
        cfg = RunConfig.from_dict({"graph": graph, "tracking": tracking, "pipeline": pipeline_settings})
        with tempfile.TemporaryDirectory() as out:
            supervisor = Supervisor([str(video)], cfg, out, max_frames=None if seconds else frames)
            if seconds:
                timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
                timer.start()
            supervisor.run()
            return json.loads((Path(out) / "metrics.json").read_text())

    stream = video.stem
    lossless = graph_run()
    print(f"{video.name}, {frames} frames, {single.people / max(single.frames, 1):.2f} people/frame, {os.cpu_count()} cores, "
          f"default models, detector every {detect_interval} frame(s), tracking, lifting, labels, JSON lines + annotated video")
    print(f"  single process: {single.fps:.1f} fps;  graph (2 detector workers): {lossless['steady_fps'][stream]:.1f} fps "
          f"(first to last result) -> ratio {lossless['steady_fps'][stream] / single.fps:.2f}")
    paced = graph_run(realtime=True, drop_late=True, queue=queue)
    c2r = paced["latency_ms"]["capture_to_result"]
    print(f"  paced at the file's rate, newest frame wins, queue {queue}: {paced['frames'][stream]} results, dropped {paced['dropped'][stream]}; "
          f"capture->result ms p50 {c2r['p50']} p95 {c2r['p95']} p99 {c2r['p99']}")
    print("  per stage ms p50/p95/p99: " + "; ".join(f"{k} {v['p50']}/{v['p95']}/{v['p99']}"
                                                     for k, v in paced["latency_ms"].items() if k != "capture_to_result"))
    if soak:
        long = graph_run(seconds=soak, realtime=True, drop_late=True, loop=True, queue=queue)
        c2r = long["latency_ms"]["capture_to_result"]
        print(f"  soak {soak:.0f} s (file looped, paced, newest wins, queue {queue}): {long['frames'][stream]} results, "
              f"dropped {long['dropped'][stream]}, capture->result ms p50 {c2r['p50']} p95 {c2r['p95']} p99 {c2r['p99']} "
              f"(last {c2r['n']} results)")
        print(f"  peak memory: {long['peak_rss_mb_total']:.0f} MiB in all; "
              + ", ".join(f"{k} {v['peak_rss_mb']:.0f}" for k, v in long["stages"].items()))
        print(f"  resident memory of all stages, MiB, minute by minute: {long['rss_mb_per_minute']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path, nargs="?")
    parser.add_argument("--lifter", action="store_true", help="benchmark the 3D lifter instead (no video needed)")
    parser.add_argument("--graph", action="store_true", help="benchmark the live graph against the single process")
    parser.add_argument("--soak", type=float, default=0, help="--graph: also a looping run of this many seconds")
    parser.add_argument("--queue", type=int, default=2, help="--graph: frames per ZeroMQ connection in the paced runs")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--det", default="yolox-nano")
    parser.add_argument("--pose", default="blazepose-full")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--detect-interval", type=int, default=1, help="run the detector every N frames")
    parser.add_argument("--detect-tile", type=int, default=None,
                        help="pipeline.detect_tile, px (default 1080; 0: no tiles)")
    parser.add_argument("--peer", choices=["mediapipe"], help="also time a peer on the same frames")
    parser.add_argument("--hands", action="store_true",
                        help="also run with hand keypoints (pipeline.hands) and print that cost beside the body-only one")
    parser.add_argument("--min-hand-size", type=float,
                        help="--hands: pipeline.min_hand_size, px (0: every seen hand is cropped, however small)")
    args = parser.parse_args()
    if args.lifter:
        from lifter_bench import lifter_report  # tools/lifter_bench.py: NumPy streaming vs torch recompute

        lifter_report()
        return 0
    if args.video is None:
        parser.error("a video is needed (or --lifter)")
    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "models"))
    if args.graph:
        graph_report(args.video, args.frames, args.soak, args.queue, args.detect_interval, args.detect_tile)
        return 0
    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "models"))

    overrides = {"pipeline": {"detector": args.det, "pose": args.pose, "device": args.device,
                              "detect_tile": args.detect_tile},
                 "tracking": {"detect_interval": args.detect_interval}}
    config = RunConfig.from_dict({}, overrides)
    summary, people, pipeline = end_to_end(args.video, args.frames, config)
    floor = model_floor(pipeline, args.video, args.frames, people)
    floor_ms = sum(floor.values())
    print(f"{args.video.name}: {summary.frames} frames, {summary.people / max(summary.frames, 1):.2f} people/frame, "
          f"{args.det} + {args.pose}, detect every {args.detect_interval} frame(s), "
          f"provider {pipeline.detector.backend.provider}, {os.cpu_count()} cores, no video, startup excluded")
    print("  stage ms/frame (decode and write overlap inference): "
          + ", ".join(f"{k} {v:.1f}" for k, v in summary.stage_ms.items()) + f"  -> end to end {summary.fps:.1f} fps")
    print(f"  one-crop-per-person floor: detect {floor['detect']:.1f} ms + pose {floor['pose']:.1f} ms "
          f"({sum(people) / max(len(people), 1):.2f} crops at batch 1) -> {1e3 / floor_ms:.1f} fps; "
          f"pipeline / floor = {summary.fps * floor_ms / 1e3:.2f}")
    if args.hands:
        hands = RunConfig.from_dict({}, {**overrides, "pipeline": {**overrides["pipeline"], "hands": True,
                                                                   "min_hand_size": args.min_hand_size}})
        with_hands, _, _ = end_to_end(args.video, args.frames, hands)
        body_ms = sum(summary.stage_ms.get(k, 0.0) for k in ("detect", "pose", "track"))
        hand_ms = sum(with_hands.stage_ms.get(k, 0.0) for k in ("detect", "pose", "track", "hands"))
        print(f"  with hands (min_hand_size {hands.pipeline.min_hand_size:g} px): "
              + ", ".join(f"{k} {v:.1f}" for k, v in with_hands.stage_ms.items())
              + f"  -> end to end {with_hands.fps:.1f} fps; detect+pose+track(+hands) ms/frame: "
              f"body only {body_ms:.1f}, with hands {hand_ms:.1f}")
    if args.peer == "mediapipe":
        peer = mediapipe_fps(args.video, args.frames)
        if peer is None:
            print("  peer mediapipe: skipped (pip install mediapipe, a version with mp.solutions.pose)")
        else:
            print(f"  peer MediaPipe Pose (model_complexity=1, same BlazePose-full weights): {peer:.1f} fps; "
                  f"posestream / MediaPipe = {summary.fps / peer:.2f}")
    if args.pose == "blazepose-full":
        from posestream.engines.zoo import resolve_model

        resolved = resolve_model(args.pose)
        if resolved.runtime == "onnxruntime":
            timings = blazepose_graph_ms(resolved.path)
            print("  BlazePose ms per crop: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
