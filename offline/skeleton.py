"""``posestream skeleton``: a video of people → a Follow-Your-Pose *skeleton video*.

A skeleton video is COCO-17 limbs drawn on black, one frame per source frame, at the source's
frame rate — the pose input of Follow-Your-Pose (FOLLOW_YOUR_POSE.md §1 step 1). The drawing
matches the skeleton videos its released pose adapter was trained on (FOLLOW_YOUR_POSE.md §5):
limbs only, lines about 6 px thick at 512 px (scaled with the frame's shorter side), no keypoint
dots, and in the decoded **RGB** frames the person's left limbs green (0, 255, 0), right limbs
azure (0, 128, 255), centre links (face outline, ear–shoulder, shoulders, shoulder–hip, hips)
orange (255, 153, 51). Those are mmpose's COCO ``skeleton_info`` colours (left (0,255,0),
right (255,128,0), centre (51,153,255)) handed to OpenCV, which reads them as BGR — how mmpose
0.x drew them; the links are mmpose's 19 COCO links (:data:`posestream.engines.layouts.COCO17_SKELETON`).

With ``--size N`` each frame is the source frame resized (shorter side N) and centre-cropped to
N × N (:class:`posestream.offline.align.ResizeCrop`): the keypoints are mapped with
:meth:`ResizeCrop.forward` and drawn directly on the N × N canvas, and the transform is written
beside the video as ``<name>_skeleton.json``.

With ``--hands`` (an option: FYP's released adapter was trained on body skeletons only), each
person's ``ok`` hands (the ``hands`` field of ``posestream run --hands``) are drawn too: the 20
links of each hand, half the limb thickness, each finger in its colour (:data:`FINGER_COLOURS_BGR`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from posestream.engines.layouts import COCO17_SKELETON, HAND21_SKELETON
from posestream.offline.align import ResizeCrop, longest_clip
from posestream.stream.results import FrameResult

#: Line colours in OpenCV's BGR order; in RGB: left (0,255,0) green, right (0,128,255) azure,
#: centre (255,153,51) orange (FOLLOW_YOUR_POSE.md §5; mmpose's COCO meta colours read as BGR).
LEFT_BGR, RIGHT_BGR, CENTRE_BGR = (0, 255, 0), (255, 128, 0), (51, 153, 255)
#: mmpose's COCO ``skeleton_info`` sides: the legs and arms of each side; every other link
#: (face outline, ear–shoulder, shoulders, shoulder–hip, hips) is a centre link.
LEFT_LINKS = frozenset({(15, 13), (13, 11), (5, 7), (7, 9)})
RIGHT_LINKS = frozenset({(16, 14), (14, 12), (6, 8), (8, 10)})

#: Default minimum keypoint score for a keypoint (and its links) to be drawn.
SCORE_THRESHOLD = 0.3


def link_colour(a: int, b: int) -> tuple[int, int, int]:
    """BGR colour of the COCO-17 link (a, b) (either order): the person's left leg and arm
    (ankle–knee–hip, shoulder–elbow–wrist) green, the right ones azure, every other link (face
    outline nose–eyes–ears, ear–shoulder, shoulders, shoulder–hip, hips) orange — mmpose's COCO
    ``skeleton_info`` assignment."""
    if (a, b) in LEFT_LINKS or (b, a) in LEFT_LINKS:
        return LEFT_BGR
    if (a, b) in RIGHT_LINKS or (b, a) in RIGHT_LINKS:
        return RIGHT_BGR
    return CENTRE_BGR


#: (a, b, BGR colour) of mmpose's 19 COCO links, in drawing order.
LINKS: tuple[tuple[int, int, tuple[int, int, int]], ...] = tuple((a, b, link_colour(a, b)) for a, b in COCO17_SKELETON)


def line_thickness(width: int, height: int) -> int:
    """Limb thickness in pixels for a ``width`` × ``height`` canvas: 6 px at a shorter side of 512
    (FOLLOW_YOUR_POSE.md §5: about 12 px at 1080 × 1080), proportional, at least 1."""
    return max(1, round(6 * min(width, height) / 512))


def draw_skeletons(canvas: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                   threshold: float = SCORE_THRESHOLD, thickness: int | None = None) -> np.ndarray:
    """Draw people's limbs (no keypoint dots) on ``canvas`` in place and return it.

    Args:
        canvas: (H, W, 3) uint8 BGR image.
        keypoints: (N, 17, 2) float pixels of ``canvas``, COCO-17 order (x right, y down).
        scores: (N, 17) float keypoint scores; a keypoint under ``threshold`` and its links
            are not drawn, nor are non-finite points.
        thickness: line width in pixels (default :func:`line_thickness` of the canvas).

    Colours and links: :data:`LINKS` (FOLLOW_YOUR_POSE.md §5). Lines are anti-aliased.
    """
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 17, 2)
    scores = np.asarray(scores, np.float64).reshape(-1, 17)
    thick = thickness or line_thickness(canvas.shape[1], canvas.shape[0])
    shift = 4  # sub-pixel endpoints: cv2.line takes fixed-point coordinates with `shift` fractional bits
    for points, score in zip(keypoints, scores):
        visible = (score >= threshold) & np.all(np.isfinite(points), axis=1)
        fixed = np.zeros((17, 2), np.int64)
        fixed[visible] = np.round(points[visible] * (1 << shift)).astype(np.int64)
        # keep far-away points from overflowing OpenCV's int coordinates
        fixed = np.clip(fixed, -(1 << 26), 1 << 26)
        for a, b, colour in LINKS:
            if visible[a] and visible[b]:
                cv2.line(canvas, tuple(int(v) for v in fixed[a]), tuple(int(v) for v in fixed[b]), colour, thick,
                         cv2.LINE_AA, shift)
    return canvas


#: BGR colour of each finger's links (thumb, index, middle, ring, pinky): OpenPose's hand palette.
FINGER_COLOURS_BGR: tuple[tuple[int, int, int], ...] = (
    (0, 0, 255), (0, 200, 255), (0, 200, 0), (255, 160, 0), (255, 0, 200))


def draw_hands(canvas: np.ndarray, hands: np.ndarray, scores: np.ndarray, threshold: float = SCORE_THRESHOLD,
               thickness: int | None = None) -> np.ndarray:
    """Draw hand skeletons (links only, :data:`posestream.engines.layouts.HAND21_SKELETON`) on
    ``canvas`` in place and return it.

    Args:
        canvas: (H, W, 3) uint8 BGR image.
        hands: (M, 21, 2) float pixels of ``canvas`` (HAND21 order); non-finite points are not drawn.
        scores: (M, 21) float; points under ``threshold`` (and their links) are not drawn.
        thickness: line width (default half of :func:`line_thickness`, at least 1).
    """
    hands = np.asarray(hands, np.float64).reshape(-1, 21, 2)
    scores = np.asarray(scores, np.float64).reshape(-1, 21)
    thick = thickness or max(1, line_thickness(canvas.shape[1], canvas.shape[0]) // 2)
    shift = 4
    for points, score in zip(hands, scores):
        visible = (score >= threshold) & np.all(np.isfinite(points), axis=1)
        fixed = np.zeros((21, 2), np.int64)
        fixed[visible] = np.clip(np.round(points[visible] * (1 << shift)), -(1 << 26), 1 << 26).astype(np.int64)
        for j, (a, b) in enumerate(HAND21_SKELETON):
            if visible[a] and visible[b]:
                cv2.line(canvas, tuple(int(v) for v in fixed[a]), tuple(int(v) for v in fixed[b]),
                         FINGER_COLOURS_BGR[j // 4], thick, cv2.LINE_AA, shift)
    return canvas


def select_hands(result: FrameResult, track_id: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``ok`` hands of ``result``'s people to draw (everyone, or only ``track_id``):
    (M, 21, 2) float32 pixels and (M, 21) float32 scores; none when the result has no hands."""
    if result.hand_keypoints is None or len(result) == 0:
        return np.zeros((0, 21, 2), np.float32), np.zeros((0, 21), np.float32)
    keep = np.ones(len(result), bool) if track_id is None else (
        np.zeros(len(result), bool) if result.track_ids is None else result.track_ids == track_id)
    ok = (result.hand_status == "ok") & keep[:, None]
    return result.hand_keypoints[ok], result.hand_keypoint_scores[ok]


def select_people(result: FrameResult, track_id: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The keypoints (N, 17, 2) float32 and scores (N, 17) float32 of ``result`` to draw: every
    person, or only the one with ``track_id`` (none when the frame lacks it)."""
    if track_id is None or len(result) == 0:
        return result.keypoints.reshape(-1, 17, 2), result.keypoint_scores.reshape(-1, 17)
    if result.track_ids is None:
        return np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32)
    keep = result.track_ids == track_id
    return result.keypoints[keep], result.keypoint_scores[keep]


def render_skeleton(result: FrameResult, transform: ResizeCrop | None = None, track_id: int | None = None,
                    threshold: float = SCORE_THRESHOLD, hands: bool = False) -> np.ndarray:
    """One skeleton frame: ``result``'s people on black.

    Args:
        result: a frame's results (keypoints in pixels of its ``width`` × ``height`` frame).
        transform: draw on its ``size`` × ``size`` canvas, keypoints mapped with
            :meth:`ResizeCrop.forward` (None: on a canvas of the source size).
        track_id: only this person (None: everyone).
        hands: also draw the people's ``ok`` hands (:func:`draw_hands`), if the result has them.

    Returns:
        (H, W, 3) uint8 BGR, black where no limb is.
    """
    width, height = (transform.size, transform.size) if transform else (result.width, result.height)
    canvas = np.zeros((height, width, 3), np.uint8)
    keypoints, scores = select_people(result, track_id)
    if len(keypoints):
        if transform is not None:
            keypoints = transform.forward(keypoints)
        draw_skeletons(canvas, keypoints, scores, threshold)
    if hands:
        points, hand_scores = select_hands(result, track_id)
        if len(points):
            if transform is not None:
                points = transform.forward(points)
            draw_hands(canvas, points, hand_scores, threshold)
    return canvas


def read_results(jsonl: str | Path, max_frames: int | None = None) -> list[FrameResult]:
    """Read a ``posestream run`` JSON-lines file (one :meth:`FrameResult.to_json` record per frame).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line that is not a frame record (its line number is given), or no frames.
    """
    jsonl = Path(jsonl)
    if not jsonl.is_file():
        raise FileNotFoundError(f"no such file: {jsonl}")
    results = []
    with open(jsonl) as handle:
        for number, line in enumerate(handle, 1):
            if max_frames is not None and len(results) >= max_frames:
                break
            if not line.strip():
                continue
            try:
                results.append(FrameResult.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{jsonl}:{number}: not a posestream JSON-lines frame record ({exc})") from exc
    if not results:
        raise ValueError(f"{jsonl}: no frames")
    return results


def rate_from_pts(pts: np.ndarray, default: float = 25.0) -> Fraction:
    """Frame rate (frames/s, a Fraction such as 30000/1001) from presentation times in seconds:
    1 / the median frame interval, snapped to a denominator ≤ 1001; ``default`` for fewer than two
    frames or non-increasing times."""
    pts = np.asarray(pts, np.float64)
    if len(pts) < 2:
        return Fraction(default)
    step = float(np.median(np.diff(pts)))
    if step <= 0:
        return Fraction(default)
    return Fraction(1 / step).limit_denominator(1001)


@dataclass
class SkeletonSummary:
    """What :func:`write_skeleton_video` did.

    Attributes:
        frames: frames written (= source frames). fps: their rate (frames/s).
        people_frames: frames where at least one person was drawn.
        outputs: the files (and folder) written. seconds: wall time of drawing and encoding.
    """

    frames: int
    fps: float
    people_frames: int
    outputs: list[Path]
    seconds: float


def write_skeleton_video(results: list[FrameResult], fps: float, out_dir: str | Path, name: str,
                         size: int | None = None, track_id: int | None = None, frames_dir: bool = False,
                         threshold: float = SCORE_THRESHOLD, progress: bool = True,
                         hands: bool = False) -> SkeletonSummary:
    """Draw ``results`` as ``out_dir/<name>_skeleton.mp4`` (H.264, ``fps``, one frame per result).

    Args:
        results: per-frame results of one source, in order (all of one frame size).
        fps: frame rate of the source, frames/s.
        size: square output side N (resize shorter side + centre crop, :class:`ResizeCrop`);
            also writes ``<name>_skeleton.json`` (the transform, ``source_fps``, ``source_frames``).
            None: the source's size, no JSON.
        track_id: draw only this person. frames_dir: also write ``<name>_skeleton_frames/NNNNNN.png``.
        hands: also draw hands where the results carry them (:func:`render_skeleton`).

    Returns:
        A :class:`SkeletonSummary`.

    Raises:
        ValueError: no results, results of different frame sizes, or ``track_id`` in no frame
            (the tracks present are listed). Nothing is left half-written.
    """
    import time

    from posestream.engines.files import atomic_output
    from posestream.offline.video_io import FrameFolderWriter, VideoWriter

    if not results:
        raise ValueError("no frames to draw")
    width, height = results[0].width, results[0].height
    if any((r.width, r.height) != (width, height) for r in results):
        raise ValueError(f"{name}: the results are of frames of different sizes; one skeleton video needs one size")
    if track_id is not None and not any(len(select_people(r, track_id)[0]) for r in results):
        tracks = sorted({int(t) for r in results if r.track_ids is not None for t in r.track_ids})
        raise ValueError(f"{name}: track {track_id} is in no frame (tracks present: "
                         f"{', '.join(map(str, tracks)) or 'none'})")
    transform = ResizeCrop(width, height, size) if size else None
    out_dir = Path(out_dir)
    video_path = out_dir / f"{name}_skeleton.mp4"
    json_path = out_dir / f"{name}_skeleton.json"
    folder_path = out_dir / f"{name}_skeleton_frames"
    start = time.perf_counter()
    people_frames = 0
    folder = FrameFolderWriter(folder_path, len(results)) if frames_dir else None
    try:
        with VideoWriter(video_path, fps) as video:
            for result in tqdm(results, unit="frame", desc=f"{name} skeleton", disable=not progress):
                frame = render_skeleton(result, transform, track_id, threshold, hands)
                people_frames += bool(len(select_people(result, track_id)[0]))
                video.write(frame)
                if folder is not None:
                    folder.write(frame)
            if folder is not None:
                folder.close()
        outputs = [video_path] + ([folder_path] if folder is not None else [])
    except BaseException:
        if folder is not None:
            folder.abort()
        raise
    if transform is not None:
        info = {**transform.to_json(), "source_fps": float(fps), "source_frames": len(results),
                "threshold": threshold, "track_id": track_id}
        with atomic_output(json_path) as tmp:
            Path(tmp).write_text(json.dumps(info, indent=1))
        outputs.insert(1, json_path)
    return SkeletonSummary(len(results), float(fps), people_frames, outputs, time.perf_counter() - start)


def pipeline_results(args: argparse.Namespace, source) -> tuple[list[FrameResult], list[Path]]:
    """Run the pipeline (tracked, no lifting) on ``source`` into ``args.out`` without an annotated
    video and read its JSON lines back.

    Args:
        args: ``det``, ``pose``, ``device``, ``config`` (YAML path or None), ``max_frames``,
            ``quiet``, ``out``, ``source`` (for messages).
        source: an opened :class:`~posestream.stream.capture.files.VideoFileSource`.

    Returns:
        ``(results, files written)``: one :class:`FrameResult` per frame (keypoints in pixels).

    Raises:
        ModelError: a model is missing. ValueError: the run ended early (its error is given).
    """
    from posestream.stream.config import RunConfig
    from posestream.stream.pipeline import PosePipeline
    from posestream.stream.run import run_source
    from posestream.stream.sinks.outputs import OutputFiles

    overrides = {"pipeline": {"detector": args.det, "pose": args.pose, "device": args.device,
                              "hands": True if getattr(args, "hands", False) else None},
                 "lift": {"enabled": False}}
    config = RunConfig.from_yaml(args.config, overrides)
    config.check_models()
    pipeline = PosePipeline.from_config(config.pipeline)
    summary = run_source(source, args.out, pipeline, tracking=config.tracking, classify=None, lifter=None,
                         write_video=False, max_frames=args.max_frames, progress=not args.quiet)
    if summary.error:
        raise ValueError(f"{args.source}: {summary.error}")
    return read_results(OutputFiles(Path(args.out), source.name).jsonl), list(summary.outputs)


def _skeleton(args: argparse.Namespace) -> int:
    from posestream.stream.capture.files import open_source

    source_path = Path(args.source)
    if args.size is not None and args.size < 2:
        raise ValueError(f"--size must be at least 2, got {args.size}")
    if args.stride < 1:
        raise ValueError(f"--stride must be at least 1, got {args.stride}")
    written: list[Path] = []
    if source_path.suffix.lower() == ".jsonl":
        results = read_results(source_path, args.max_frames)
        name = source_path.stem
        fps = Fraction(args.fps) if args.fps else rate_from_pts([r.pts for r in results])
    else:
        source = open_source(source_path)  # a bad source is reported before any model loads
        name = source.name
        fps = Fraction(args.fps) if args.fps else Fraction(source.fps)
        results, written = pipeline_results(args, source)
    summary = write_skeleton_video(results, fps, args.out, name, size=args.size, track_id=args.track,
                                   frames_dir=args.frames_dir, progress=not args.quiet, hands=args.hands)
    who = f"track {args.track}" if args.track is not None else "people"
    print(f"{summary.frames} frames at {summary.fps:g} fps ({who} in {summary.people_frames}): drives a "
          f"Follow-Your-Pose clip of up to {longest_clip(summary.frames, args.stride)} frames at stride {args.stride}")
    if summary.people_frames == 0:
        print(f"posestream: warning: no person found in {source_path}"
              f"{' (track ' + str(args.track) + ')' if args.track is not None else ''}: "
              "the skeleton video is black", file=sys.stderr)
    for path in written + summary.outputs:
        print(f"  wrote {path}")
    return 0


def skeleton_command(sub) -> None:
    """Add ``posestream skeleton SOURCE --out DIR [--size N] [--track ID] [--frames-dir] [--stride S]``
    to ``sub`` (argparse sub-parsers)."""
    parser = sub.add_parser(
        "skeleton", parents=[sub.parent_parser],
        help="a Follow-Your-Pose skeleton video (COCO-17 limbs on black) of a video or of a run's JSON lines",
        description="Draw COCO-17 skeletons on black in the style Follow-Your-Pose's pose adapter was trained "
                    "on (limbs only, left green, right azure, centre orange). SOURCE is a video (the pipeline "
                    "runs on it first, writing DIR/NAME.jsonl) or a NAME.jsonl from 'posestream run'. Writes "
                    "DIR/NAME_skeleton.mp4 (same frame count and rate as the source) and, with --size, "
                    "DIR/NAME_skeleton.json (the resize-and-crop transform).")
    parser.add_argument("source", help="video file, or the NAME.jsonl that 'posestream run' wrote")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--size", type=int, metavar="N",
                        help="resize (shorter side N) and centre-crop every frame to N×N, e.g. 512 for "
                             "Follow-Your-Pose (default: the source's size)")
    parser.add_argument("--track", type=int, metavar="ID", help="draw only this track id (default: everyone)")
    parser.add_argument("--frames-dir", action="store_true", help="also write PNG frames into DIR/NAME_skeleton_frames/")
    parser.add_argument("--stride", type=int, default=5,
                        help="sampling stride of the generation, for the clip-length report (default 5)")
    parser.add_argument("--fps", type=float, help="frame rate to write (default: the source's; for a JSONL, from its pts)")
    parser.add_argument("--max-frames", type=int, metavar="N", help="only the first N frames")
    parser.add_argument("--hands", action="store_true",
                        help="also draw hand skeletons (a video source runs the pipeline with hands on; a JSONL "
                             "needs 'posestream run --hands')")
    parser.add_argument("--config", help="YAML settings of the pipeline (see configs/run.yaml), video sources only")
    parser.add_argument("--det", help="detector: zoo name or path (default yolox-nano)")
    parser.add_argument("--pose", help="keypoint model: zoo name or path (default blazepose-full)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "tensorrt"], help="inference device (default auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_skeleton)
