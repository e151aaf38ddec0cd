"""The ``posestream`` command.

``posestream run SOURCE --out DIR``: the main job on a recorded video, image or image folder:
people, COCO-17 keypoints, track ids, 3D keypoints, posture and gesture labels.
``posestream live --source 0|rtsp://…|file.mp4 [--source …] --out DIR``: the live ZeroMQ graph.
``posestream export-npz RUN.jsonl --out DIR``: one person as VideoPose3D npz datasets (2D, 3D).
``posestream models``: list the model zoo; ``posestream models fetch NAME``: download one.

Errors print one line, ``posestream: error: …``, and exit with status 2 (bad input or model)
or 1 (anything else).
"""

from __future__ import annotations

import argparse
import logging
import sys

from engines.errors import ModelError
from stream.sources import SourceError


def _run(args: argparse.Namespace) -> int:
    from offline.run import run_source
    from stream.config import RunConfig
    from stream.pipeline import PosePipeline
    from stream.sources import open_source

    overrides = {"pipeline": {"detector": args.det, "pose": args.pose, "device": args.device,
                              "det_score_threshold": args.det_threshold},
                 "tracking": {"detect_interval": args.detect_interval},
                 "lift": {"checkpoint": args.lifter, "enabled": False if args.no_lift else None},
                 "classify": {"rules": args.rules}}
    config = RunConfig.from_yaml(args.config, overrides)
    source = open_source(args.source)  # a bad source is reported before any model is loaded
    pipeline = PosePipeline.from_config(config.pipeline)
    lifter = config.lift.load() if config.lift.enabled else None
    summary = run_source(source, args.out, pipeline, tracking=None if args.no_track else config.tracking,
                         classify=config.classify, lifter=lifter, write_video=not args.no_video, view_3d=args.view_3d,
                         max_frames=args.max_frames, progress=not args.quiet)
    print(f"{args.source}: {summary.describe()}")
    for path in summary.outputs:
        print(f"  wrote {path}")
    return 0


def _live(args: argparse.Namespace) -> int:
    from stream.config import RunConfig
    from stream.graph.supervisor import run_live

    overrides = {"pipeline": {"detector": args.det, "pose": args.pose, "device": args.device},
                 "graph": {"realtime": True if args.realtime else None, "detect_workers": args.workers},
                 "sinks": {"pub": args.pub, "window": True if args.window else None,
                           "video": False if args.no_video else None}}
    config = RunConfig.from_yaml(args.config, overrides)
    return run_live(args.source, config, args.out, max_frames=args.max_frames)


def _export_npz(args: argparse.Namespace) -> int:
    from offline.export import export_npz

    for path in export_npz(args.jsonl, args.out, name=args.name, track_id=args.track):
        print(f"wrote {path}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from engines.zoo import MODELS, resolve_model

    if args.fetch:
        resolved = resolve_model(args.fetch)
        print(resolved.onnx_path)
        return 0
    for spec in MODELS.values():
        print(f"{spec.name:15s} {spec.role:8s} {spec.licence:11s} {spec.input_size[0]}x{spec.input_size[1]}  {spec.notes}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posestream", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log which execution provider runs each model")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="detect, track and classify people (COCO-17 keypoints) in a recorded video or images")
    run.add_argument("source", help="video file (any container FFmpeg reads), image, or folder of images")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument("--config", help="YAML settings (see configs/run.yaml)")
    run.add_argument("--det", help="detector: zoo name or path (default yolox-nano)")
    run.add_argument("--pose", help="keypoint model: zoo name or path (default blazepose-full)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda", "tensorrt"], help="inference device (default auto)")
    run.add_argument("--det-threshold", type=float, help="minimum person score (default 0.3)")
    run.add_argument("--detect-interval", type=int, metavar="N", help="run the detector every N frames (default 1)")
    run.add_argument("--no-track", action="store_true", help="no tracking: every frame on its own, no track ids")
    run.add_argument("--lifter", metavar="CKPT", help="3D lifter checkpoint (default: the shipped causal 27-frame one)")
    run.add_argument("--no-lift", action="store_true", help="no 3D keypoints")
    run.add_argument("--view-3d", action="store_true", help="also write <name>_3d.mp4: the frame beside its 3D skeletons")
    run.add_argument("--rules", choices=["default", "hafizas"], help="posture/gesture rules (default: default)")
    run.add_argument("--max-frames", type=int, help="stop after this many frames")
    run.add_argument("--no-video", action="store_true", help="skip the annotated video")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)

    live = sub.add_parser("live", help="the live graph: cameras, RTSP or files through ZeroMQ stage processes")
    live.add_argument("--source", action="append", required=True,
                      help="camera index (0), device (/dev/video0), rtsp://… URL or video file; repeat for several")
    live.add_argument("--config", help="YAML settings (see configs/webcam.yaml, rtsp.yaml, file.yaml)")
    live.add_argument("--out", default="out", help="output folder (default out/)")
    live.add_argument("--realtime", action="store_true", help="pace files at their frame rate")
    live.add_argument("--workers", type=int, help="detector processes (default 2)")
    live.add_argument("--pub", metavar="ENDPOINT", help="publish results on this ZeroMQ endpoint (tcp://127.0.0.1:5560)")
    live.add_argument("--window", action="store_true", help="show the annotated frames when a display exists")
    live.add_argument("--no-video", action="store_true", help="skip the annotated videos")
    live.add_argument("--max-frames", type=int, help="stop each file after this many frames")
    live.add_argument("--det", help="detector: zoo name or path")
    live.add_argument("--pose", help="keypoint model: zoo name or path")
    live.add_argument("--device", choices=["auto", "cpu", "cuda", "tensorrt"])
    live.set_defaults(func=_live)

    export = sub.add_parser("export-npz", help="one person of a run's JSON lines → VideoPose3D custom 2D npz (+ 3D npz)")
    export.add_argument("jsonl", help="the <name>.jsonl that posestream run wrote")
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--track", type=int, help="track id of the person (default: best-scoring person of each frame)")
    export.add_argument("--name", help="video name inside the npz (default: the file's stem)")
    export.set_defaults(func=_export_npz)

    models = sub.add_parser("models", help="list the model zoo, or download a model")
    models.add_argument("--fetch", metavar="NAME", help="resolve (and download if needed) this model")
    models.set_defaults(func=_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``posestream`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ModelError, SourceError, ValueError, FileNotFoundError) as exc:
        print(f"posestream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("posestream: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
