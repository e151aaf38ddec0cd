"""The ``posestream`` command.

posestream run SOURCE --out DIR: the main job on a recorded video, image or image folder:
people, COCO-17 keypoints, track ids, 3D keypoints, posture and gesture labels.
posestream live --source 0|rtsp://...|file.mp4 [--source ...] --out DIR: the live ZeroMQ graph.
posestream models [--fetch NAME]: list the model zoo, or find or download one model.

Further commands (export-npz, and those of the offline and training extras) are registered by
the packages that implement them, through the ``posestream.commands`` entry-point group: each
entry point is a function ``add(subparsers)`` that adds its sub-parser with ``func`` set. This
module never imports them, so the runtime layer does not depend on the offline one.

Errors print one line, ``posestream: error: ...``, and exit with status 2 (bad input, model or
setting) or 1 (anything else unexpected, with the traceback under ``-v``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path

from posestream.engines.errors import ModelError
from posestream.stream.capture.files import MAX_IMAGE_PIXELS, SourceError

#: Exit status of a bad input, model or setting.
EXIT_USAGE = 2


def _check_max_frames(args: argparse.Namespace) -> None:
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be at least 1, got {args.max_frames}")


def _run(args: argparse.Namespace) -> int:
    from posestream.stream.config import RunConfig
    from posestream.stream.capture.files import open_source
    from posestream.stream.pipeline import PosePipeline
    from posestream.stream.run import prepare_output_dir, run_source

    overrides = {"pipeline": {"detector": args.det, "pose": args.pose, "device": args.device,
                              "det_score_threshold": args.det_threshold, "detect_tile": args.detect_tile,
                              "hands": True if args.hands or args.keypoints == "wholebody" else None},
                 "tracking": {"detect_interval": args.detect_interval},
                 "lift": {"checkpoint": args.lifter, "enabled": False if args.no_lift else None},
                 "classify": {"rules": args.rules}}
    config = RunConfig.from_yaml(args.config, overrides)
    if args.max_image_pixels < 1:
        raise ValueError(f"--max-image-pixels must be positive, got {args.max_image_pixels}")
    _check_max_frames(args)
    source = open_source(args.source, args.max_image_pixels)  # a bad source is reported before any model loads
    prepare_output_dir(args.out)  # so is an unusable --out
    config.check_models()  # and a missing model: one line, before anything loads
    pipeline = PosePipeline.from_config(config.pipeline)
    lifter = config.lift.load() if config.lift.enabled else None
    summary = run_source(source, args.out, pipeline, tracking=None if args.no_track else config.tracking,
                         classify=config.classify, lifter=lifter, lift_min_extent=config.lift.min_extent,
                         write_video=not args.no_video, view_3d=args.view_3d,
                         max_frames=args.max_frames, progress=not args.quiet, keypoints=args.keypoints)
    print(f"{args.source}: {summary.describe()}")
    for name, why in summary.skipped:
        print(f"posestream: warning: skipped {name}: {why}", file=sys.stderr)
    for path in summary.outputs:
        print(f"  wrote {path}")
    return 0


def _live(args: argparse.Namespace) -> int:
    from posestream.stream.config import RunConfig
    from posestream.stream.graph.supervisor import check_sources, run_live, stream_ids
    from posestream.stream.run import prepare_output_dir
    from posestream.stream.sinks.outputs import OutputFiles

    overrides = {"pipeline": {"detector": args.det, "pose": args.pose, "device": args.device,
                              "detect_tile": args.detect_tile, "hands": True if args.hands else None},
                 "tracking": {"detect_interval": args.detect_interval},
                 "graph": {"realtime": True if args.realtime else None, "detect_workers": args.workers},
                 "sinks": {"pub": args.pub, "window": True if args.window else None,
                           "video": False if args.no_video else None, "insecure": True if args.insecure else None}}
    config = RunConfig.from_yaml(args.config, overrides)
    _check_max_frames(args)
    # one line, before any process starts: missing files and cameras, an unusable --out, a
    # PUB address in use, a missing model
    check_sources(args.source)
    prepare_output_dir(args.out)
    config.sinks.check_pub()
    config.check_models()
    status = run_live(args.source, config, args.out, max_frames=args.max_frames)
    out = Path(args.out)
    for stream in stream_ids(args.source):
        names = OutputFiles(out, stream)
        for path in (names.jsonl, names.predictions, names.video):
            if path.exists():
                print(f"  wrote {path}")
    if (out / "metrics.json").exists():
        print(f"  wrote {out / 'metrics.json'}")
    return status


def _models(args: argparse.Namespace) -> int:
    from posestream.engines.zoo import describe_models, resolve_model

    if args.fetch:
        print(resolve_model(args.fetch).path)
        return 0
    for line in describe_models():
        print(line)
    return 0


def _common() -> argparse.ArgumentParser:
    """Options every sub-command takes, after its name (``posestream run -v …``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true",
                        help="log progress details (execution providers, downloads) and show tracebacks")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: built-in commands, then those registered under ``posestream.commands``."""
    common = _common()
    parser = argparse.ArgumentParser(prog="posestream", parents=[common],
                                     description="Real-time streaming human-pose processor.",
                                     epilog="posestream COMMAND --help shows each command's options.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.parent_parser = common  # for registered commands: add_parser(..., parents=[sub.parent_parser])

    run = sub.add_parser("run", parents=[common], help="people, keypoints, tracks, 3D and labels of a recorded video or images")
    run.add_argument("source", help="video file (any container FFmpeg reads), image, or folder of images")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument("--config", help="YAML settings (see configs/run.yaml)")
    run.add_argument("--det", help="detector: zoo name or path (default yolox-nano)")
    run.add_argument("--pose", help="keypoint model: zoo name or path (default blazepose-full)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda", "tensorrt"], help="inference device (default auto)")
    run.add_argument("--det-threshold", type=float, help="minimum person score (default 0.3)")
    run.add_argument("--detect-interval", type=int, metavar="N", help="run the detector every N frames (default 1)")
    run.add_argument("--detect-tile", type=int, metavar="PX",
                     help="also search frames with a side of 1.5 PX or more in overlapping PX-sized tiles: people too "
                          "small for the detector at the whole frame's scale (default 1080: 3 detector runs on a "
                          "1920x1080 frame; 0: off)")
    run.add_argument("--no-track", action="store_true", help="no tracking: every frame on its own, no track ids")
    run.add_argument("--hands", action="store_true",
                     help="also 21 keypoints per hand (MediaPipe hand landmarks, cropped from the body pose): "
                          "the 'hands' field of each JSON-lines instance, drawn on the video")
    run.add_argument("--keypoints", choices=["coco17", "wholebody"], default="coco17",
                     help="layout of results_NAME.json: coco17 (default) or wholebody (COCO-WholeBody 133: body, "
                          "feet, face (absent), hands; mmpose's coco_wholebody meta_info; turns --hands on)")
    run.add_argument("--lifter", metavar="CKPT", help="3D lifter checkpoint (default: the shipped causal 27-frame one)")
    run.add_argument("--no-lift", action="store_true", help="no 3D keypoints")
    run.add_argument("--view-3d", action="store_true", help="also write NAME_3d.mp4: the frame beside its 3D skeletons")
    run.add_argument("--rules", choices=["default", "hafizas", "hands"],
                     help="posture/gesture rules (default: default; hands: read the hands and their waving first, "
                          "use with --hands)")
    run.add_argument("--max-frames", type=int, help="stop after this many frames")
    run.add_argument("--max-image-pixels", type=int, default=MAX_IMAGE_PIXELS,
                     help=f"refuse (a single image) or skip (in a folder) images over this many pixels "
                          f"(default {MAX_IMAGE_PIXELS:,})")
    run.add_argument("--no-video", action="store_true", help="skip the annotated video")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)

    live = sub.add_parser("live", parents=[common], help="the live graph: cameras, RTSP or files through ZeroMQ stage processes")
    live.add_argument("--source", action="append", required=True,
                      help="camera index (0), device (/dev/video0), rtsp:// URL or video file; repeat for several")
    live.add_argument("--config", help="YAML settings (see configs/webcam.yaml, rtsp.yaml, file.yaml)")
    live.add_argument("--out", default="out", help="output folder (default out/)")
    live.add_argument("--realtime", action="store_true", help="pace files at their frame rate")
    live.add_argument("--workers", type=int, help="detector processes (default 2)")
    live.add_argument("--detect-interval", type=int, metavar="N",
                      help="detect every N frames; the tracks carry the boxes in between (default 1)")
    live.add_argument("--detect-tile", type=int, metavar="PX",
                      help="also search frames with a side of 1.5 PX or more in overlapping PX-sized tiles: people too "
                           "small for the detector at the whole frame's scale (default 1080: 3 detector runs on a "
                           "1920x1080 frame; 0: off)")
    live.add_argument("--pub", metavar="ENDPOINT", help="publish results on this ZeroMQ endpoint (tcp://127.0.0.1:5560); "
                      "an address other machines reach needs graph.curve_keys or --insecure")
    live.add_argument("--insecure", action="store_true",
                      help="allow --pub on an address other machines reach without CURVE (anyone there reads the results)")
    live.add_argument("--hands", action="store_true",
                      help="also 21 keypoints per hand, made in the person stage (as 'run --hands')")
    live.add_argument("--window", action="store_true", help="show the annotated frames when a display exists")
    live.add_argument("--no-video", action="store_true", help="skip the annotated videos")
    live.add_argument("--max-frames", type=int, help="stop each file after this many frames")
    live.add_argument("--det", help="detector: zoo name or path")
    live.add_argument("--pose", help="keypoint model: zoo name or path")
    live.add_argument("--device", choices=["auto", "cpu", "cuda", "tensorrt"])
    live.set_defaults(func=_live)

    models = sub.add_parser("models", parents=[common], help="list the model zoo, or find or download one model")
    models.add_argument("--fetch", metavar="NAME", help="resolve this model (download it if it is not found locally)")
    models.set_defaults(func=_models)

    for entry in sorted(entry_points(group="posestream.commands"), key=lambda e: e.name):
        try:
            entry.load()(sub)
        except ImportError as exc:  # an extra that is not installed: the command says so when run
            missing = sub.add_parser(entry.name, parents=[common], help=f"(unavailable: {exc})")
            missing.set_defaults(func=lambda _args, exc=exc: _unavailable(exc))
    return parser


def _unavailable(exc: ImportError) -> int:
    raise ImportError(f"this command needs a package that is not installed ({exc})")


def _one_line(exc: BaseException) -> str:
    """The error line's text: ``PATH: reason`` for an operating-system error about a file (not
    Python's ``[Errno 28] ...: 'PATH'``), the message otherwise."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``posestream`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from posestream.stream.capture.cameras import RedactingFilter, redact

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())  # no RTSP password in any log line
    try:
        return args.func(args)
    except (ModelError, SourceError, ValueError, OSError, ImportError) as exc:
        # OSError: an unwritable output, a full disk, a cache folder that cannot be made
        if args.verbose:
            logging.exception("posestream %s failed", args.command)
        print(f"posestream: error: {redact(_one_line(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("posestream: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    status = main()
    # Under ``python -m``, CPython ends the process by SIGINT instead of by this status once a
    # KeyboardInterrupt has passed through the exec of a string (dataclasses, numpy's imports),
    # even one ``main`` caught: the exec marks it "unhandled" and only the next string exec that
    # succeeds clears the mark. The console script exits with the status either way.
    eval("0")
    sys.exit(status)
