"""``posestream compare``: videos side by side with a caption above each — the input, its
skeleton and the generated clip (FOLLOW_YOUR_POSE.md §1 step 3).

Layout: every panel is resized (keeping its aspect ratio, area/bicubic interpolation) to the
same height; panels are placed left to right with no gap, each under a black caption bar of
:func:`caption_height` pixels with its caption in white (PIL's default font, centred).

Frame alignment (the output's frame k):

* by time (default): the timeline is the *first* input's frames; every other input shows its
  frame nearest in time (:func:`posestream.offline.align.covering_frames`). The output stops at
  the first timeline frame that some input no longer covers, so it has as many frames as the
  shortest input (in time). A frame folder has no clock: it runs at the output rate.
* ``--stride s``: the generated clip (``--generated N``, default the last input) shows its
  frame k, every other input its frame s·k (the skeleton frames that drove it). The output
  has as many frames as the shortest of: the generated clip, and ⌈n/s⌉ for each other input
  of n frames (:func:`posestream.offline.align.longest_clip`).

Output rate: ``--fps``, else 8 for a GIF (Follow-Your-Pose's GIFs), else the first input's rate
(8 for a frame folder). GIFs are written by PIL (``save_all``, ``loop=0``; GIF stores durations in
1/100 s, so 8 fps is 120 ms per frame); MP4s with PyAV (H.264).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from posestream.offline.align import covering_frames, longest_clip, stride_frames


def caption_height(panel_height: int) -> int:
    """Height in pixels of the caption bar above a panel ``panel_height`` pixels high (1/8 of it,
    at least 18)."""
    return max(18, round(panel_height / 8))


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow ≥ 10.1 with FreeType: a scalable font
    except (TypeError, ValueError, OSError, ImportError):
        return ImageFont.load_default()


def caption_bar(text: str, width: int, height: int) -> np.ndarray:
    """A (height, width, 3) uint8 BGR black bar with ``text`` in white, centred, in PIL's default
    font sized to about 60% of the bar (smaller when needed to fit the width)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    size = max(8, round(height * 0.6))
    while True:
        font = _font(size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= width - 4 or size <= 8:
            break
        size -= 1
    x = (width - (right - left)) / 2 - left
    y = (height - (bottom - top)) / 2 - top
    draw.text((x, y), text, fill=(255, 255, 255), font=font)
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)


def fit_height(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` ((h, w, 3) uint8) resized to ``height`` rows keeping its aspect ratio (width
    rounded, at least 1); area interpolation when shrinking, bicubic when enlarging."""
    h, w = image.shape[:2]
    if h == height:
        return image
    width = max(1, round(w * height / h))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if height < h else cv2.INTER_CUBIC)


def align_inputs(pts: list[np.ndarray], stride: int | None = None, generated: int = -1) -> np.ndarray:
    """Frame indices of each input for each output frame (the rule of this module's docstring).

    Args:
        pts: per input, float64 (n_i,) presentation times in seconds from its first frame.
        stride: None: by time, on the first input's timeline; s: the ``generated`` input's frame
            k beside frame s·k of the others.
        generated: index of the generated clip in ``pts`` (stride only).

    Returns:
        int64 (F, len(pts)); F may be 0.
    """
    counts = [len(p) for p in pts]
    if stride is not None:
        generated %= len(pts)
        frames = min([counts[generated]] + [longest_clip(n, stride) for i, n in enumerate(counts) if i != generated])
        columns = [np.arange(frames) if i == generated else stride_frames(frames, stride) for i in range(len(pts))]
        return np.stack(columns, axis=1).astype(np.int64).reshape(frames, len(pts))
    timeline = np.asarray(pts[0], np.float64)
    columns, covered = [], np.ones(len(timeline), bool)
    for p in pts:
        indices, inside = covering_frames(timeline, p)
        columns.append(indices)
        covered &= inside
    frames = int(np.argmin(covered)) if not covered.all() else len(timeline)
    return np.stack(columns, axis=1)[:frames].astype(np.int64).reshape(frames, len(pts))


def compare(inputs: list[str | Path], captions: list[str], out: str | Path, fps: float | None = None,
            stride: int | None = None, generated: int = -1, height: int = 256, max_frames: int | None = None,
            progress: bool = True) -> dict:
    """Write ``inputs`` side by side with ``captions`` above them into ``out`` (.gif or .mp4).

    Args:
        inputs: videos, GIFs or frame folders (:func:`posestream.offline.video_io.read_frames`).
        captions: one per input.
        fps: output rate (default: 8 for a GIF, else the first input's rate, 8 for a folder).
        stride, generated: alignment (:func:`align_inputs`); ``generated`` is a 0-based index.
        height: panel height in pixels (without the caption bar).
        max_frames: at most this many output frames.

    Returns:
        ``{"path", "frames", "fps", "indices": int64 (F, len(inputs)), "panel_widths", "caption_height"}``.

    Raises:
        FileNotFoundError: a missing input. ValueError: captions ≠ inputs, fewer than one input,
            an output that is neither .gif nor .mp4, bad numbers, unreadable inputs, or inputs
            that leave no frame once aligned. Nothing is written then.
    """
    from posestream.offline.video_io import VideoWriter, read_frames

    out = Path(out)
    if not inputs:
        raise ValueError("compare needs at least one input")
    if len(captions) != len(inputs):
        raise ValueError(f"{len(captions)} captions for {len(inputs)} inputs: give one caption per input")
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise ValueError(f"{out}: the output must be a .gif or a .mp4")
    if height < 8:
        raise ValueError(f"--height must be at least 8, got {height}")
    if stride is not None and stride < 1:
        raise ValueError(f"--stride must be at least 1, got {stride}")
    if fps is not None and fps <= 0:
        raise ValueError(f"--fps must be positive, got {fps}")
    if not -len(inputs) <= generated < len(inputs):
        raise ValueError(f"--generated must name one of the {len(inputs)} inputs")
    for path in inputs:  # every missing file is reported before any is decoded
        if not Path(path).exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
    clips = [read_frames(path) for path in inputs]
    rate = fps or (8.0 if out.suffix.lower() == ".gif" else (clips[0][1] or 8.0))
    pts = [p if clip_fps is not None else np.arange(len(frames)) / rate for frames, clip_fps, p in clips]
    indices = align_inputs(pts, stride, generated)
    if max_frames is not None:
        indices = indices[:max_frames]
    if not len(indices):
        raise ValueError("the inputs do not overlap: no frame to compare (check --stride and the clips' lengths)")
    bar_height = caption_height(height)
    widths = [max(1, round(frames[0].shape[1] * height / frames[0].shape[0])) for frames, _, _ in clips]
    bars = np.concatenate([caption_bar(text, w, bar_height) for text, w in zip(captions, widths)], axis=1)
    with VideoWriter(out, rate) as writer:
        for row in tqdm(indices, unit="frame", desc="compare", disable=not progress):
            panels = [fit_height(clips[i][0][k], height) for i, k in enumerate(row)]
            panels = [cv2.resize(p, (w, height)) if p.shape[1] != w else p for p, w in zip(panels, widths)]
            writer.write(np.concatenate([bars, np.concatenate(panels, axis=1)], axis=0))
    return {"path": out, "frames": len(indices), "fps": rate, "indices": indices, "panel_widths": widths,
            "caption_height": bar_height}


def _compare(args: argparse.Namespace) -> int:
    captions = args.captions if args.captions is not None else [Path(p).stem for p in args.inputs]
    generated = len(args.inputs) - 1 if args.generated is None else args.generated - 1
    if args.generated is not None and not 1 <= args.generated <= len(args.inputs):
        raise ValueError(f"--generated must be between 1 and {len(args.inputs)}, got {args.generated}")
    info = compare(args.inputs, captions, args.out, fps=args.fps, stride=args.stride, generated=generated,
                   height=args.height, max_frames=args.max_frames, progress=not args.quiet)
    how = f"stride {args.stride} from input {generated + 1}" if args.stride else "by time on the first input"
    print(f"{info['frames']} frames at {info['fps']:g} fps ({how}), panels {info['panel_widths']} px wide, "
          f"{args.height} px high")
    print(f"  wrote {info['path']}")
    return 0


def compare_command(sub) -> None:
    """Add ``posestream compare A B [C …] --captions … --out FILE.mp4|FILE.gif`` to ``sub``
    (argparse sub-parsers)."""
    parser = sub.add_parser(
        "compare", parents=[sub.parent_parser],
        help="videos side by side with captions (input, skeleton, generated) as an MP4 or GIF",
        description="Put videos, GIFs or frame folders side by side at one height, a caption above each. "
                    "Frames are aligned by time on the first input (the output ends with the shortest input), "
                    "or with --stride S: the generated clip's frame k beside frame S·k of the others (the output "
                    "has as many frames as the shortest of them allows).")
    parser.add_argument("inputs", nargs="+", help="videos, GIFs or frame folders, left to right")
    parser.add_argument("--captions", nargs="+", help="one caption per input (default: the file names)")
    parser.add_argument("--out", required=True, help="output .gif or .mp4")
    parser.add_argument("--fps", type=float, help="output rate (default: 8 for a GIF, the first input's for an MP4)")
    parser.add_argument("--stride", type=int,
                        help="align a generated clip: its frame k beside frame STRIDE·k of the other inputs "
                             "(5 in Follow-Your-Pose); default: by time")
    parser.add_argument("--generated", type=int, metavar="N",
                        help="which input (1-based) is the generated clip, for --stride (default: the last)")
    parser.add_argument("--height", type=int, default=256, help="panel height in pixels (default 256)")
    parser.add_argument("--max-frames", type=int, metavar="N", help="at most N output frames")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_compare)
