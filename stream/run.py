"""``posestream run``: a recorded video, an image or a folder of images → result files.

Writes, in ``out_dir``: ``<name>.jsonl`` (one frame per line), ``results_<name>.json`` (mmpose
``--save-predictions`` layout) and ``<name>.mp4`` (annotated, source frame rate, one frame per
input frame) — or, for images, a folder ``<name>_annotated/`` — and on request ``<name>_3d.mp4``
(the annotated frame beside each person's 3D skeleton). Frames are processed
losslessly; if decoding fails part-way the frames before it are written out and the
:class:`~posestream.stream.capture.files.SourceError` is raised again.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from posestream.stream.sinks.annotate import Pose3DAnnotator, SkeletonAnnotator
from posestream.stream.classify.rules import ClassifierConfig
from posestream.stream.lift.stage import MIN_EXTENT
from posestream.stream.pipeline import PosePipeline, PoseStream
from posestream.stream.sinks.files import ImageFolderSink, JsonLinesSink, PredictionsJsonSink, VideoSink
from posestream.stream.sinks.outputs import OutputFiles
from posestream.stream.capture.files import ImageSource, VideoFileSource, open_source
from posestream.stream.track.tracker import TrackerConfig

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a run did.

    Attributes:
        frames: frames processed. people: person instances over all frames.
        max_people: most people in one frame. seconds: wall time of the loop.
        stage_ms: mean milliseconds per frame of each stage (decode, detect, pose, track,
            lift, classify, write, and hands where hand keypoints are on).
        outputs: files written. error: the error that ended the run early, or None.
        skipped: ``(file name, reason)`` of the images of a folder that were skipped
            (undecodable, too large).
    """

    frames: int = 0
    people: int = 0
    max_people: int = 0
    seconds: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stage_ms.items())
        skipped = f", {len(self.skipped)} images skipped" if self.skipped else ""
        return (f"{self.frames} frames{skipped}, {self.people} people (max {self.max_people} per frame), "
                f"{self.fps:.1f} fps; ms/frame: {stages}")


def prepare_output_dir(out_dir: str | Path) -> Path:
    """Create the output folder (and its parents) and check that files can be written in it,
    so that an unusable ``--out`` is one error line before any model loads.

    Returns:
        The folder.

    Raises:
        OSError: the folder cannot be made or written in (a file in the way, a read-only file
            system, no permission, a full disk); ``strerror`` says why and ``filename`` is the folder.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder (--out names the output folder)", str(out_dir))
    doing = "create"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        doing = "write in"
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".posestream-check-"):
            pass
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise OSError(exc.errno, f"cannot {doing} the output folder ({why})", str(out_dir)) from exc
    return out_dir


def run_source(source_path: str | Path | VideoFileSource | ImageSource, out_dir: str | Path, pipeline: PosePipeline,
               tracking: TrackerConfig | None = TrackerConfig(), classify: ClassifierConfig | None = ClassifierConfig(),
               lifter=None, write_video: bool = True, view_3d: bool = False, max_frames: int | None = None, progress: bool = True,
               keypoints: str = "coco17", lift_min_extent: float = MIN_EXTENT) -> RunSummary:
    """Process a recorded source with ``pipeline`` and write the result files.

    Args:
        source_path: video file, image file or folder of images (or such a source, already opened).
        out_dir: output folder (created).
        pipeline: the models (:class:`PosePipeline`).
        tracking: tracker settings, or None for no tracking; never used on images and image
            folders, whose frames are unrelated.
        classify: classifier settings, or None for no posture/gesture labels.
        lifter: COCO-17 → H36M-17 :class:`~posestream.stream.lift.model.Lifter` for ``keypoints_3d``, or None.
        write_video: also write the annotated video (or annotated images).
        view_3d: also write ``<name>_3d.mp4``, each frame beside its people's 3D skeletons
            (needs ``lifter``; videos only).
        max_frames: stop after this many frames.
        progress: tqdm progress bar.
        keypoints: layout of ``results_<name>.json``: ``coco17`` or ``wholebody`` (133 keypoints,
            :class:`~posestream.stream.sinks.files.PredictionsJsonSink`; hands come from a
            pipeline with a hand model). The JSON lines keep COCO-17 ``keypoints`` either way.
        lift_min_extent: the lift stage's ``min_extent`` (``lift.min_extent``).

    Returns:
        A :class:`RunSummary` (its ``outputs`` list every file written).

    Raises:
        posestream.stream.capture.files.SourceError: the source cannot be opened, or fails part-way (after the
            results so far were written).
        OSError: the output folder cannot be made or written in (:func:`prepare_output_dir`), or
            writing an output failed part-way (a full disk: ``filename`` names the output).
    """
    source = source_path if isinstance(source_path, (VideoFileSource, ImageSource)) else open_source(source_path)
    out_dir = prepare_output_dir(out_dir)
    names = OutputFiles(out_dir, source.name)
    annotator = SkeletonAnnotator()
    # built before any file is opened: a missing matplotlib must leave no .part behind
    view = Pose3DAnnotator() if view_3d and lifter is not None and not isinstance(source, ImageSource) else None
    if keypoints not in PredictionsJsonSink.LAYOUTS:
        raise ValueError(f"keypoint layout: expected one of {', '.join(PredictionsJsonSink.LAYOUTS)}, got {keypoints!r}")
    sinks = [JsonLinesSink(names.jsonl), PredictionsJsonSink(names.predictions, keypoints)]
    if write_video:
        sinks.append(ImageFolderSink(names.annotated_images, annotator) if isinstance(source, ImageSource)
                     else VideoSink(names.video, source.fps, annotator))
    if view is not None:
        sinks.append(VideoSink(names.view_3d, source.fps, view))
    process = PoseStream(pipeline, None if isinstance(source, ImageSource) else tracking, classify, lifter,
                         lift_min_extent=lift_min_extent)
    summary = RunSummary()
    totals = {"decode": 0.0, "detect": 0.0, "pose": 0.0, "track": 0.0, "lift": 0.0, "classify": 0.0, "write": 0.0}
    total = len(source) or None  # frames the progress bar expects; None when the container does not say
    if max_frames:
        total = min(total, max_frames) if total else max_frames
    start = time.perf_counter()
    decoder = _Prefetch(source, max_frames, totals)
    writer = _Writer(sinks, totals, summary)
    late_error: BaseException | None = None  # a writer or flush error found while finishing
    try:
        with tqdm(total=total, unit="frame", desc=source.name, disable=not progress) as bar:
            for frame in decoder:
                writer.put(process.process(frame))
                summary.frames += 1
                bar.update(1)
    except BaseException as exc:
        summary.error = str(exc)
        raise
    finally:
        decoder.stop()
        try:  # results a delayed lifter still holds are completed and written, also after an error
            writer.put(process.flush())
        except Exception as exc:
            late_error = exc
        try:
            writer.close()
        except Exception as exc:
            late_error = late_error or exc
        if late_error is not None and summary.error is None:
            summary.error = str(late_error)
        summary.seconds = time.perf_counter() - start
        summary.skipped = list(getattr(source, "skipped", []))
        summary.stage_ms = {k: v / max(summary.frames, 1) for k, v in totals.items()}
        for sink in sinks:
            try:
                written = sink.close()
            except Exception as exc:  # one broken sink must not lose the others' results
                _name_output(exc, sink)
                log.debug("closing %s failed", type(sink).__name__, exc_info=True)  # the traceback with -v
                if summary.error is None:  # an unfinished output fails the run: this is its error
                    late_error, summary.error = exc, str(exc)
                elif _reason(exc) not in summary.error:  # another failure besides the run's error
                    log.warning("could not finish %s: %s", getattr(sink, "path", type(sink).__name__), _reason(exc))
                continue
            if written is not None:
                summary.outputs.append(written)
    if late_error is not None:  # the loop itself ended well: the run did not
        raise late_error
    return summary


def _name_output(exc: BaseException, sink) -> None:
    """Give an OSError raised while writing (a full disk: ``write`` and ``close`` name no file)
    the path of the output it was writing, so that the error line says which file failed."""
    if isinstance(exc, OSError) and exc.filename is None and getattr(sink, "path", None) is not None:
        exc.filename = str(sink.path)


def _reason(exc: BaseException) -> str:
    return (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)


class _Prefetch:
    """Decodes frames in a thread, a few ahead of the pipeline (PyAV and OpenCV release the GIL
    while they decode), so that decoding overlaps inference. Iterating yields the frames in
    order and re-raises the source's error where it happened.

    Args:
        source: an opened source. limit: most frames to read (None: all).
        totals: stage → ms; ``decode`` gets the time spent decoding.
        depth: frames decoded ahead.
    """

    def __init__(self, source, limit: int | None, totals: dict[str, float], depth: int = 4):
        self._queue: queue.Queue = queue.Queue(depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(source, limit, totals), daemon=True,
                                        name="posestream-decode")
        self._thread.start()

    def _read(self, source, limit, totals) -> None:
        item = ("end", None)
        try:
            frames, count = iter(source), 0
            while not self._stopped.is_set() and (limit is None or count < limit):
                t0 = time.perf_counter()
                frame = next(frames, None)
                totals["decode"] += (time.perf_counter() - t0) * 1e3
                if frame is None:
                    break
                count += 1
                self._put(("frame", frame))
        except BaseException as exc:  # handed to the consumer, raised where the frame would be
            item = ("error", exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None and item[0] != "error":
                try:
                    close()
                except Exception:
                    pass
        self._put(item)

    def _put(self, item) -> None:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self):
        while True:
            kind, value = self._queue.get()
            if kind == "frame":
                yield value
            elif kind == "error":
                raise value
            else:
                return

    def stop(self) -> None:
        """Stop reading (after an error or an interruption) and wait for the thread."""
        self._stopped.set()
        self._thread.join(timeout=10)


class _Writer:
    """Writes results to the sinks in a thread, in order, so that annotation and video encoding
    overlap inference. A sink's error is raised again by the next :meth:`put` or by :meth:`close`;
    after one, nothing more is written (the files keep the frames before it).

    Args:
        sinks: the run's sinks. totals: stage → ms (``write`` and the per-frame stage timings
            are added up here). summary: its people counts are filled in.
        depth: batches of ready results waiting at most.
    """

    def __init__(self, sinks: list, totals: dict[str, float], summary: RunSummary, depth: int = 4):
        self.sinks, self.totals, self.summary = sinks, totals, summary
        self._queue: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None  # stays set: nothing is written after it
        self._raised = False
        self._thread = threading.Thread(target=self._work, daemon=True, name="posestream-write")
        self._thread.start()

    def _work(self) -> None:
        while True:
            ready = self._queue.get()
            if ready is None:
                return
            if self._error is not None:
                continue
            t0 = time.perf_counter()
            sink = None
            try:
                for frame, result in ready:
                    for sink in self.sinks:
                        sink.write(result, frame.image)
                    for stage in ("detect", "pose", "track", "lift", "classify"):
                        self.totals[stage] += result.timings.get(stage, 0.0)
                    if "hands" in result.timings:  # a stage of its own only where hands are on
                        self.totals["hands"] = self.totals.get("hands", 0.0) + result.timings["hands"]
                    self.summary.people += len(result)
                    self.summary.max_people = max(self.summary.max_people, len(result))
            except BaseException as exc:
                _name_output(exc, sink)
                self._error = exc
            self.totals["write"] += (time.perf_counter() - t0) * 1e3

    def _raise(self) -> None:
        if self._error is not None and not self._raised:
            self._raised = True
            raise self._error

    def put(self, ready: list) -> None:
        """Queue ``(frame, result)`` pairs for writing (blocks while ``depth`` batches wait)."""
        self._raise()
        if ready:
            self._queue.put(ready)

    def close(self) -> None:
        """Write what is queued and stop the thread; raises a sink's error, if any."""
        self._queue.put(None)
        self._thread.join()
        self._raise()
