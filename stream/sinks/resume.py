"""Taking up a stream's unfinished outputs (its ``.part`` files) again.

Two users: the live graph's sink, restarted after a crash, goes on writing the files it had
begun (:func:`take_up`); and a new run finding the ``.part`` files a hard-killed run left
behind turns them into complete files under ``<name>.recovered.*`` (:func:`recover`).

What is kept is the longest stretch that every output holds: the JSON lines that were written
whole (a torn last line is cut off), and, when the annotated video is written, no more frames
than the (fragmented, :data:`~posestream.stream.sinks.files.CRASH_SAFE_MP4`) video part can
give back. The mmpose JSON is rebuilt from the kept lines and the video's kept frames are
encoded again into a new part, so every file ends at the same frame.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

from posestream.stream.results import FrameResult
from posestream.stream.sinks.files import JsonLinesSink, PredictionsJsonSink, VideoSink, part_path
from posestream.stream.sinks.outputs import OutputFiles

log = logging.getLogger("posestream.sinks")


def intact_records(path: Path) -> Iterator[tuple[int, dict]]:
    """``(end byte offset, record)`` of each whole JSON line of ``path`` (a map with an integer
    ``frame_id``), in order, stopping at the first torn or unreadable line."""
    offset = 0
    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return
            try:
                record = json.loads(line)
            except ValueError:
                return
            if not isinstance(record, dict) or not isinstance(record.get("frame_id"), int):
                return
            offset += len(line)
            yield offset, record


def video_frames(path: Path) -> tuple[int, Fraction | None]:
    """How many frames of the MP4 ``path`` decode (up to the first error), and its frame rate
    (the one :class:`VideoSink` wrote in its ``comment``, else the stream's); (0, None) when
    it holds none."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            comment = container.metadata.get("comment", "")
            fps = Fraction(comment.split("fps=", 1)[1]) if "fps=" in comment else stream.base_rate
            count = 0
            try:
                for _ in container.decode(stream):
                    count += 1
            except (av.FFmpegError, ValueError):
                pass
            return count, fps
    except (av.FFmpegError, IndexError, ValueError, ZeroDivisionError, OSError):
        return 0, None


@dataclass
class TakenUp:
    """What a stream's earlier outputs held, as kept.

    Attributes:
        frames: records kept. last_frame_id: of the last kept record (0: none).
        max_track_id: largest ``track_id`` among them (0: none). first_pts, last_pts: ``pts``
        (s) of the first and last kept records. fps: the video's frame rate, or None without video.
    """

    frames: int = 0
    last_frame_id: int = 0
    max_track_id: int = 0
    first_pts: float | None = None
    last_pts: float | None = None
    fps: Fraction | None = None


def _regular_file(path: Path) -> bool:
    """A regular file itself, not a link (whose target would be cut or overwritten), device or pipe."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def take_up(names: OutputFiles, video: bool, annotator=None) -> tuple[TakenUp, list] | None:
    """Open a stream's sinks again on its ``.part`` files, keeping what every output holds.

    The kept video frames are copied into a new part before the JSON lines are cut, so an
    interruption at any point leaves what a second call can take up (the earlier video, moved
    aside as ``<video>.part.earlier``, is used again while it exists).

    Args:
        names: the stream's output names. video: whether the annotated video is written.
        annotator: for the video sink's later frames.

    Returns:
        ``(taken_up, sinks)``: what was kept, and the open sinks, the :class:`JsonLinesSink`
        first, then :class:`PredictionsJsonSink` and (when ``video``) :class:`VideoSink`; None
        when there is nothing to take up (no regular ``.part`` of the JSON lines, or no frame
        that every output holds: the parts are then removed and the stream starts anew).
    """
    jsonl_part = part_path(names.jsonl)
    if not _regular_file(jsonl_part):
        return None
    ends, first_pts, frame_ids = [], None, []
    for end, record in intact_records(jsonl_part):
        ends.append(end)
        frame_ids.append(record["frame_id"])
        first_pts = record.get("pts") if first_pts is None else first_pts
    video_part = part_path(names.video)
    earlier = video_part.with_name(video_part.name + ".earlier")
    if _regular_file(video_part) and not _regular_file(earlier):
        video_part.replace(earlier)
    keep, fps = len(ends), None
    if video:
        video_count, fps = video_frames(earlier) if _regular_file(earlier) else (0, None)
        keep = min(keep, video_count) if fps else 0
    if not keep:
        for path in (jsonl_part, part_path(names.predictions), video_part, earlier):
            if _regular_file(path):
                path.unlink()
        return None
    video_sink = None
    if video:
        video_sink = VideoSink(names.video, fps, annotator, crash_safe=True)
        video_sink.start_at(first_pts)
        _copy_frames(earlier, keep, video_sink, first_pts)
    with open(jsonl_part, "r+b") as handle:  # only now: the video holds every kept frame
        handle.truncate(ends[keep - 1])
    if _regular_file(earlier):
        earlier.unlink()
    taken = TakenUp(frames=keep, last_frame_id=frame_ids[keep - 1], first_pts=first_pts, fps=fps)
    sinks: list = [JsonLinesSink(names.jsonl, append=True), PredictionsJsonSink(names.predictions)]
    for _, record in intact_records(jsonl_part):
        result = FrameResult.from_json(record)
        if result.track_ids is not None and len(result.track_ids):
            taken.max_track_id = max(taken.max_track_id, int(result.track_ids.max()))
        sinks[1].write(result)
        taken.last_pts = result.pts
    if video_sink is not None:
        sinks.append(video_sink)
    return taken, sinks


def _copy_frames(path: Path, count: int, sink: VideoSink, first_pts: float) -> None:
    """Copy the first ``count`` frames of ``path`` (no more than :func:`video_frames` decodes)
    into ``sink``. It stops on the ``count``-th frame, never asking the decoder for the next
    packet: in a video torn inside a fragment that packet is cut and does not decode."""
    import av

    if count <= 0:
        return
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            sink.write_annotated(frame.to_ndarray(format="bgr24"), first_pts + float(frame.time or 0.0))
            if index + 1 >= count:
                break


def recover(out_dir: str | Path, name: str) -> tuple[TakenUp, list[Path]] | None:
    """Turn the ``.part`` files a killed run left for stream ``name`` into complete files named
    ``<name>.recovered.jsonl``, ``results_<name>.recovered.json`` and ``<name>.recovered.mp4``
    (``.recovered-2`` and on when an earlier recovery holds those names; the next run writes the
    usual names anew). Only regular files are touched. None when there is nothing to recover.

    Returns:
        What was kept and the files written.
    """
    old = OutputFiles(Path(out_dir), name)
    if not _regular_file(part_path(old.jsonl)):
        return None
    suffix, k = "recovered", 2
    while any(p.exists() or p.with_name(p.name + ".part").exists() for p in
              (OutputFiles(Path(out_dir), f"{name}.{suffix}").jsonl, OutputFiles(Path(out_dir), f"{name}.{suffix}").video)):
        suffix, k = f"recovered-{k}", k + 1
    new = OutputFiles(Path(out_dir), f"{name}.{suffix}")
    for a, b in ((old.jsonl, new.jsonl), (old.predictions, new.predictions), (old.video, new.video)):
        for tail in ("", ".earlier"):
            source = part_path(a).with_name(part_path(a).name + tail)
            if _regular_file(source):
                source.replace(part_path(b).with_name(part_path(b).name + tail))
    video = _regular_file(part_path(new.video)) or _regular_file(part_path(new.video).with_name(
        part_path(new.video).name + ".earlier"))
    taken = take_up(new, video)
    if taken is None:
        return TakenUp(), []
    paths = [path for path in (sink.close() for sink in taken[1]) if path is not None]
    return taken[0], paths
