#!/usr/bin/env python3
"""Speed of ``posestream run`` on a recorded video: per-stage ms, end-to-end fps, and the model-only floor;
and of the 3D lifter: streaming vs recomputing the window, and the shipped lifter's MPJPE table.

    python tools/benchmark.py ../shared/media/opencv-vtest/vtest.avi --frames 200
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from offline.run import run_source  # noqa: E402
from stream.config import PipelineConfig  # noqa: E402
from stream.pipeline import PosePipeline  # noqa: E402
from stream.sources import VideoFileSource  # noqa: E402


def model_floor(pipeline: PosePipeline, video: Path, frames: int) -> dict[str, float]:
    """Milliseconds per frame of the bare detector and pose-model calls on the first ``frames`` frames."""
    detector, estimator = pipeline.detector, pipeline.estimator
    det_inputs, pose_inputs = [], []
    for frame in VideoFileSource(video):
        if frame.frame_id > frames:
            break
        tensor, _ = detector.preprocess(frame.image)
        det_inputs.append(tensor)
        result = pipeline(frame)
        if len(result):
            if hasattr(estimator, "preprocess"):  # RTMPose
                pose_inputs.append(("input", estimator.preprocess(frame.image, result.bboxes)[0], ["simcc_x", "simcc_y"]))
            else:  # BlazePose: one batch per pass
                sides = (result.bboxes[:, 2:] - result.bboxes[:, :2]).max(axis=1)
                batch = np.random.default_rng(0).random((len(sides), 256, 256, 3), np.float32)
                for _ in range(2 if estimator.refine else 1):
                    pose_inputs.append(("input_1", batch, ["Identity", "Identity_1"]))
    det_name = pipeline.detector.backend.inputs[0].name
    t0 = time.perf_counter()
    for tensor in det_inputs:
        pipeline.detector.backend.run({det_name: tensor})
    t1 = time.perf_counter()
    for name, tensor, outputs in pose_inputs:
        estimator.backend.run({name: tensor}, outputs)
    t2 = time.perf_counter()
    n = max(len(det_inputs), 1)
    return {"detect": (t1 - t0) * 1e3 / n, "pose": (t2 - t1) * 1e3 / n}


def blazepose_graph_ms(model: Path, repeats: int = 30) -> dict[str, float]:
    """Per-crop ms of the BlazePose graph as converted (batch 1, all heads) and as posestream
    rewrites it (dynamic batch, landmark heads only), at batch 1 and 6."""
    from engines.backend import OnnxRuntimeBackend
    from engines.keypoints import batched_blazepose_graph

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


def lifter_ms(widths: tuple[int, ...], channels: int, people: int, frames: int = 100) -> dict[str, float]:
    """Milliseconds per frame to lift ``people`` tracks: streaming (one output per layer, batched
    over the tracks) vs recomputing the whole model over each track's last receptive field."""
    import torch

    from engines.lifter import LifterArchitecture, StreamingTemporalModel, TemporalModel

    model = TemporalModel(LifterArchitecture(filter_widths=widths, channels=channels, causal=True)).eval()
    rf = model.receptive_field
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.01, (people, frames + rf, 17, 2)), axis=1).astype(np.float32)
    stream = StreamingTemporalModel(model)
    states = [stream.start(x[p, 0]) for p in range(people)]
    for t in range(rf):  # warm the buffers and the allocator
        stream.step(states, x[:, t])
    t0 = time.perf_counter()
    for t in range(rf, rf + frames):
        stream.step(states, x[:, t])
    streaming = (time.perf_counter() - t0) * 1e3 / frames
    with torch.no_grad():
        windows = torch.from_numpy(x)
        model(windows[:, :rf])
        t0 = time.perf_counter()
        for t in range(rf, rf + frames):
            model(windows[:, t - rf + 1:t + 1])
        recompute = (time.perf_counter() - t0) * 1e3 / frames
    return {"streaming": streaming, "recompute": recompute}


def lifter_report() -> None:
    """Print streaming vs recompute at 27/81/243 frames and the shipped lifter's MPJPE table."""
    import torch

    from stream.lift import DEFAULT_LIFTER

    print(f"lifter ms/frame, causal, torch {torch.__version__} on {torch.get_num_threads()} threads, {os.cpu_count()} cores")
    print(f"{'frames':>6s} {'channels':>8s} {'people':>6s} {'streaming':>10s} {'recompute':>10s} {'ratio':>6s}")
    for widths in ((3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3, 3)):
        for channels in (256, 1024):
            for people in (1, 5):
                ms = lifter_ms(widths, channels, people)
                print(f"{3 ** len(widths):6d} {channels:8d} {people:6d} {ms['streaming']:10.2f} {ms['recompute']:10.2f} "
                      f"{ms['recompute'] / ms['streaming']:6.1f}")
    checkpoint = torch.load(DEFAULT_LIFTER, map_location="cpu", weights_only=True)
    print(f"\nshipped lifter {DEFAULT_LIFTER.name}: {checkpoint['architecture']}")
    print(f"made with: {checkpoint.get('command')}")
    print(f"{'evaluation':36s} {'frames':>7s} {'MPJPE':>7s} {'P-MPJPE':>8s} {'N-MPJPE':>8s}  (mm)")
    for name, m in checkpoint.get("metrics", {}).items():
        print(f"{name:36s} {m['frames']:7d} {m['mpjpe']:7.1f} {m['p_mpjpe']:8.1f} {m['n_mpjpe']:8.1f}")


def graph_report(video: Path, frames: int, soak: float, queue: int = 2) -> None:
    """The live graph vs the single-process main job on the same file and frames (throughput
    ratio), the graph paced at the file's frame rate like a camera (latency, drops), and a soak
    run of ``soak`` seconds looping the file (peak memory of every process)."""
    import signal
    import threading

    from stream.config import RunConfig
    from stream.graph.supervisor import Supervisor

    config = RunConfig.from_yaml(None)
    pipeline = PosePipeline.from_config(config.pipeline)
    lifter = config.lift.load()
    run_source(video, tempfile.mkdtemp(), pipeline, max_frames=5, progress=False, lifter=lifter)  # warm-up
    with tempfile.TemporaryDirectory() as out:
        single = run_source(video, out, pipeline, max_frames=frames, progress=False, lifter=lifter)
    del pipeline

    def graph_run(seconds: float | None = None, **graph) -> dict:
        cfg = RunConfig.from_dict({"graph": graph})
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
          f"default models, tracking, lifting, labels, JSON lines + annotated video")
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
    args = parser.parse_args()
    if args.lifter:
        lifter_report()
        return 0
    if args.video is None:
        parser.error("a video is needed (or --lifter)")
    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "models"))
    if args.graph:
        graph_report(args.video, args.frames, args.soak, args.queue)
        return 0
    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "models"))

    for refine in (False, True):
        config = PipelineConfig(detector=args.det, pose=args.pose, device=args.device, refine_crop=refine)
        pipeline = PosePipeline.from_config(config)
        run_source(args.video, tempfile.mkdtemp(), pipeline, max_frames=5, progress=False)  # warm-up
        with tempfile.TemporaryDirectory() as out:
            summary = run_source(args.video, out, pipeline, max_frames=args.frames, progress=False)
        floor = model_floor(pipeline, args.video, args.frames)
        floor_ms = sum(floor.values())
        print(f"{args.video.name}: {summary.frames} frames, {summary.people / max(summary.frames, 1):.2f} people/frame, "
              f"{args.det} + {args.pose} ({'aligned second pass' if refine else 'one pass'}), "
              f"provider {pipeline.detector.backend.provider}, {os.cpu_count()} cores")
        print("  stage ms/frame: " + ", ".join(f"{k} {v:.1f}" for k, v in summary.stage_ms.items())
              + f"  -> end to end {summary.fps:.1f} fps")
        print(f"  model-only floor: detect {floor['detect']:.1f} ms, pose {floor['pose']:.1f} ms"
              f" -> {1e3 / floor_ms:.1f} fps (pipeline reaches {summary.fps * floor_ms / 1e3:.0%} of it)")
    if args.pose == "blazepose-full":
        from engines.zoo import resolve_model

        timings = blazepose_graph_ms(resolve_model(args.pose).onnx_path)
        print("  BlazePose ms per crop: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
