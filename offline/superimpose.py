"""``posestream superimpose``: a skeleton drawn over a video — the input video or the clip that
Follow-Your-Pose generated from it (FOLLOW_YOUR_POSE.md §1 step 4).

Time: by default each video frame gets the skeleton frame nearest in presentation time
(:func:`posestream.offline.align.covering_frames`; frames past the skeleton's end get none);
with ``--stride s`` (a generated clip) video frame i gets skeleton frame s·i, the frames that
drove it (:func:`posestream.offline.align.require_clip`).

Space: when the video's size differs from the skeleton's, points are mapped by the
resize-shorter-side-and-centre-crop transform (:class:`posestream.offline.align.ResizeCrop`):
``--transform JSON``, else the ``<name>_skeleton.json`` written beside a skeleton video by
``posestream skeleton --size``, else one built from the two sizes (whichever is square is the
crop). A JSONL skeleton is drawn exactly (its keypoints mapped, then drawn with the skeleton
style of :mod:`posestream.offline.skeleton`); a skeleton video's non-black pixels are warped by the
same affine map and blended.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from posestream.offline.align import ResizeCrop, covering_frames, require_clip

#: A skeleton-video pixel counts as skeleton when its brightest channel exceeds this (codec noise
#: on black stays far below it).
SKELETON_PIXEL_THRESHOLD = 40


def _same_aspect(a: tuple[int, int], b: tuple[int, int], tolerance: float = 0.01) -> bool:
    return abs(a[0] / a[1] - b[0] / b[1]) <= tolerance * a[0] / a[1]


def space_map(skeleton_size: tuple[int, int], video_size: tuple[int, int], transform: ResizeCrop | None = None,
              strict: bool = True) -> np.ndarray:
    """The (2, 3) float64 affine matrix taking skeleton pixels to video pixels.

    Args:
        skeleton_size: (width, height) of the skeleton's frames (a JSONL's source size, or the
            skeleton video's size).
        video_size: (width, height) of the video drawn on.
        transform: the resize-and-crop between the source and the square clip; it must join the
            two sizes (source → square: forward; square → source: inverse).
        strict: with ``transform``, refuse sizes it does not join (else fall back to building one).

    Without a transform: equal sizes → identity; a square video → ``ResizeCrop(skeleton, side)``
    forward; a square skeleton → ``ResizeCrop(video, side)`` inverse; the same aspect ratio →
    plain scaling.

    Raises:
        ValueError: sizes that no rule joins (pass a transform).
    """
    (sw, sh), (vw, vh) = skeleton_size, video_size
    if transform is not None:
        source, square = (transform.width, transform.height), (transform.size, transform.size)
        if (sw, sh) == source and (vw, vh) == square:
            return transform.matrix()
        if (sw, sh) == square and (vw, vh) == source:
            return transform.matrix(inverse=True)
        if (sw, sh) == (vw, vh):
            return np.array([[1.0, 0, 0], [0, 1.0, 0]])
        if strict:
            raise ValueError(f"the transform maps {source[0]}x{source[1]} ↔ {square[0]}x{square[1]}, "
                             f"but the skeleton is {sw}x{sh} and the video {vw}x{vh}")
    if (sw, sh) == (vw, vh):
        return np.array([[1.0, 0, 0], [0, 1.0, 0]])
    if vw == vh:
        return ResizeCrop(sw, sh, vw).matrix()
    if sw == sh:
        return ResizeCrop(vw, vh, sw).matrix(inverse=True)
    if _same_aspect((sw, sh), (vw, vh)):
        return np.array([[vw / sw, 0, 0], [0, vh / sh, 0]])
    raise ValueError(f"cannot map a {sw}x{sh} skeleton onto a {vw}x{vh} video: neither is square nor are their "
                     "aspect ratios equal; pass --transform JSON")


def map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine ``matrix`` to (..., 2) points; float32 (..., 2)."""
    points = np.asarray(points, np.float64)
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def blend_skeleton_image(frame: np.ndarray, skeleton: np.ndarray, matrix: np.ndarray, alpha: float) -> np.ndarray:
    """A copy of ``frame`` ((H, W, 3) uint8 BGR) with the non-black pixels of ``skeleton`` (a
    skeleton video frame, uint8 BGR) warped by the affine ``matrix`` (skeleton → frame pixels,
    bilinear) blended in at opacity ``alpha`` ∈ [0, 1]."""
    height, width = frame.shape[:2]
    if matrix is not None and not np.allclose(matrix, [[1, 0, 0], [0, 1, 0]]):
        skeleton = cv2.warpAffine(skeleton, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = skeleton.max(axis=2) > SKELETON_PIXEL_THRESHOLD
    out = frame.copy()
    out[mask] = np.round(alpha * skeleton[mask] + (1 - alpha) * frame[mask].astype(np.float64)).astype(np.uint8)
    return out


def blend_skeleton_points(frame: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, alpha: float,
                          threshold: float = 0.3) -> np.ndarray:
    """A copy of ``frame`` ((H, W, 3) uint8 BGR) with skeletons drawn from ``keypoints`` ((N, 17, 2)
    pixels of the frame) and ``scores`` ((N, 17)) in the skeleton-video style
    (:func:`posestream.offline.skeleton.draw_skeletons`) at opacity ``alpha``."""
    from posestream.offline.skeleton import draw_skeletons

    if not len(keypoints):
        return frame.copy()
    overlay = draw_skeletons(frame.copy(), keypoints, scores, threshold)
    return cv2.addWeighted(overlay, alpha, frame, 1 - alpha, 0)


@dataclass
class Skeleton:
    """A skeleton to draw: from a JSONL (``results``) or a skeleton video (``frames``).

    Attributes:
        path: where it came from. size: (width, height) of its pixel coordinates.
        pts: float64 (F,) seconds from its first frame (a frame folder: its indices). results / frames: one per frame.
        transform: the ``*_skeleton.json`` found beside a skeleton video, or None.
        fps: frames per second; None for a frame folder (no clock).
    """

    path: Path
    size: tuple[int, int]
    pts: np.ndarray
    results: list | None = None
    frames: list | None = None
    transform: ResizeCrop | None = None
    fps: float | None = None

    def __len__(self) -> int:
        return len(self.pts)


def load_skeleton(path: str | Path) -> Skeleton:
    """Read a skeleton: a ``.jsonl`` of ``posestream run``/``skeleton`` (keypoints, exact), or a
    skeleton video / GIF / frame folder (:func:`posestream.offline.video_io.read_frames`); for a
    video ``X.mp4`` a transform ``X.json`` beside it is picked up.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_frames` and
            :func:`posestream.offline.skeleton.read_results`.
    """
    from posestream.offline.skeleton import read_results
    from posestream.offline.video_io import read_frames

    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        results = read_results(path)
        pts = np.array([r.pts for r in results], np.float64)
        fps = 1 / float(np.median(np.diff(pts))) if len(pts) > 1 and np.median(np.diff(pts)) > 0 else None
        return Skeleton(path, (results[0].width, results[0].height), pts - pts[0], results=results, fps=fps)
    frames, fps, pts = read_frames(path)
    beside = path.with_suffix(".json") if path.is_file() else path.with_name(
        path.name.removesuffix("_frames") + ".json")
    transform = None
    if beside.is_file():
        try:
            transform = ResizeCrop.load(beside)
        except (ValueError, KeyError, TypeError):
            transform = None
    return Skeleton(path, (frames[0].shape[1], frames[0].shape[0]), pts, frames=frames, transform=transform, fps=fps)


def skeleton_indices(skeleton_pts: np.ndarray, video_pts: np.ndarray, stride: int | None,
                     skeleton_name: str = "the skeleton") -> tuple[np.ndarray, np.ndarray]:
    """Which skeleton frame goes with each video frame.

    Args:
        skeleton_pts, video_pts: seconds from each one's first frame, (F,) and (N,).
        stride: None: by time (nearest, and only within the skeleton's span); s: video frame i ↔
            skeleton frame s·i (a generated clip).

    Returns:
        ``(indices, inside)``: int64 (N,), bool (N,) (False: no skeleton frame for it).

    Raises:
        ValueError: with a stride, a skeleton too short for the video (the longest clip it can
            drive is named).
    """
    if stride is not None:
        indices = require_clip(len(video_pts), stride, len(skeleton_pts), skeleton_name)
        return indices, np.ones(len(indices), bool)
    return covering_frames(video_pts, skeleton_pts)


def superimpose(skeleton_path: str | Path, video_path: str | Path, out: str | Path, stride: int | None = None,
                alpha: float = 0.6, transform: ResizeCrop | None = None, fps: float | None = None,
                track_id: int | None = None, max_frames: int | None = None, progress: bool = True) -> dict:
    """Draw the skeleton ``skeleton_path`` over ``video_path`` into ``out`` (.mp4 or .gif).

    Args:
        skeleton_path: ``.jsonl`` (keypoints) or skeleton video / GIF / frame folder.
        video_path: video / GIF / frame folder to draw on; the output has its frame count and size.
        stride: align a generated clip (frame i ↔ skeleton frame stride·i); None: by time.
        alpha: skeleton opacity in [0, 1].
        transform: the resize-and-crop joining the sizes (default: the JSON beside a skeleton video,
            else built from the sizes, see :func:`space_map`).
        fps: output rate (default the video's; 8 for a frame folder).
        track_id: only this person (JSONL skeletons).
        max_frames: only the first frames of the video.

    Returns:
        ``{"path", "frames", "fps", "skeleton_frames": int64 (N,) (-1 where none), "matrix"}``.

    Raises:
        FileNotFoundError: a missing input. ValueError: unreadable inputs, sizes that cannot be
            joined, a skeleton too short for ``stride``, alpha outside [0, 1]. Nothing is written then.
    """
    from posestream.offline.skeleton import select_people
    from posestream.offline.video_io import VideoWriter, read_frames

    if not 0 <= alpha <= 1:
        raise ValueError(f"--alpha must be in [0, 1], got {alpha}")
    if stride is not None and stride < 1:
        raise ValueError(f"--stride must be at least 1, got {stride}")
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"{out}: the output must be a .mp4 or a .gif")
    skeleton = load_skeleton(skeleton_path)
    frames, video_fps, video_pts = read_frames(video_path, max_frames=max_frames)
    rate = fps or video_fps or 8.0
    # a frame folder has no clock: it runs at the other side's rate (two folders: frame i ↔ frame i)
    if video_fps is None:
        video_pts = np.arange(len(frames)) / (skeleton.fps or rate)
    if skeleton.fps is None:
        skeleton.pts = np.arange(len(skeleton)) / (video_fps or rate)
    indices, inside = skeleton_indices(skeleton.pts, video_pts, stride, str(skeleton.path))
    video_size = (frames[0].shape[1], frames[0].shape[0])
    if transform is not None:
        matrix = space_map(skeleton.size, video_size, transform, strict=True)
    else:
        matrix = space_map(skeleton.size, video_size, skeleton.transform, strict=False)
    with VideoWriter(out, rate) as writer:
        for i, frame in enumerate(tqdm(frames, unit="frame", desc="superimpose", disable=not progress)):
            if not inside[i]:
                writer.write(frame)
                continue
            k = int(indices[i])
            if skeleton.results is not None:
                keypoints, scores = select_people(skeleton.results[k], track_id)
                frame = blend_skeleton_points(frame, map_points(matrix, keypoints), scores, alpha)
            else:
                frame = blend_skeleton_image(frame, skeleton.frames[k], matrix, alpha)
            writer.write(frame)
    return {"path": out, "frames": len(frames), "fps": rate, "skeleton_frames": np.where(inside, indices, -1),
            "matrix": matrix}


def _superimpose(args: argparse.Namespace) -> int:
    transform = None
    if args.transform:
        path = Path(args.transform)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        transform = ResizeCrop.load(path)
    info = superimpose(args.skeleton, args.on, args.out, stride=args.stride, alpha=args.alpha, transform=transform,
                       fps=args.fps, track_id=args.track, max_frames=args.max_frames, progress=not args.quiet)
    used = info["skeleton_frames"][info["skeleton_frames"] >= 0]
    how = f"stride {args.stride}" if args.stride else "by time"
    span = f"skeleton frames {used[0]}–{used[-1]}" if len(used) else "no skeleton frame"
    print(f"{info['frames']} frames at {info['fps']:g} fps, {span} ({how})")
    print(f"  wrote {info['path']}")
    return 0


def superimpose_command(sub) -> None:
    """Add ``posestream superimpose --skeleton S --on VIDEO --out FILE [--stride S] [--alpha A]``
    to ``sub`` (argparse sub-parsers)."""
    parser = sub.add_parser(
        "superimpose", parents=[sub.parent_parser],
        help="draw a skeleton (JSONL or skeleton video) over the input video or a generated clip",
        description="Draw a skeleton over VIDEO, aligned in time (by timestamps, or --stride S for a clip "
                    "generated from skeleton frames 0, S, 2S, …) and in space (through the resize-and-crop "
                    "transform when the sizes differ). The output has VIDEO's frames, size and rate.")
    parser.add_argument("--skeleton", required=True,
                        help="NAME.jsonl (from 'posestream run'/'skeleton', drawn exactly) or a skeleton video / "
                             "GIF / frame folder (its non-black pixels are blended)")
    parser.add_argument("--on", required=True, metavar="VIDEO", help="video, GIF or frame folder to draw on")
    parser.add_argument("--out", required=True, help="output .mp4 or .gif")
    parser.add_argument("--stride", type=int,
                        help="VIDEO is a generated clip: its frame i was driven by skeleton frame STRIDE·i "
                             "(5 in Follow-Your-Pose); default: align by time")
    parser.add_argument("--alpha", type=float, default=0.6, help="skeleton opacity, 0–1 (default 0.6)")
    parser.add_argument("--transform", metavar="JSON",
                        help="the NAME_skeleton.json of 'posestream skeleton --size' (default: the one beside a "
                             "skeleton video, else built from the two frame sizes)")
    parser.add_argument("--track", type=int, metavar="ID", help="only this track id (JSONL skeletons)")
    parser.add_argument("--fps", type=float, help="output frame rate (default: VIDEO's; 8 for a frame folder)")
    parser.add_argument("--max-frames", type=int, metavar="N", help="only the first N frames of VIDEO")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_superimpose)
