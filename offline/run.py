"""``posestream run``: a recorded video, an image or a folder of images → result files.

Writes, in ``out_dir``: ``<name>.jsonl`` (one frame per line), ``results_<name>.json`` (mmpose
``--save-predictions`` layout) and ``<name>.mp4`` (annotated, source frame rate, one frame per
input frame) — or, for images, a folder ``<name>_annotated/`` — and on request ``<name>_3d.mp4``
(the annotated frame beside each person's 3D skeleton). Frames are processed
losslessly; if decoding fails part-way the frames before it are written out and the
:class:`~stream.sources.SourceError` is raised again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from stream.annotate import Pose3DAnnotator, SkeletonAnnotator
from stream.classify import ClassifierConfig
from stream.pipeline import PosePipeline, PoseStream
from stream.sinks import ImageFolderSink, JsonLinesSink, PredictionsJsonSink, VideoSink
from stream.sources import ImageSource, VideoFileSource, open_source
from stream.track import TrackerConfig

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a run did.

    Attributes:
        frames: frames processed. people: person instances over all frames.
        max_people: most people in one frame. seconds: wall time of the loop.
        stage_ms: mean milliseconds per frame of each stage (decode, detect, pose, track,
            lift, classify, write).
        outputs: files written. error: the error that ended the run early, or None.
    """

    frames: int = 0
    people: int = 0
    max_people: int = 0
    seconds: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stage_ms.items())
        return (f"{self.frames} frames, {self.people} people (max {self.max_people} per frame), "
                f"{self.fps:.1f} fps; ms/frame: {stages}")


def run_source(source_path: str | Path | VideoFileSource | ImageSource, out_dir: str | Path, pipeline: PosePipeline,
               tracking: TrackerConfig | None = TrackerConfig(), classify: ClassifierConfig | None = ClassifierConfig(),
               lifter=None, write_video: bool = True, view_3d: bool = False, max_frames: int | None = None, progress: bool = True) -> RunSummary:
    """Process a recorded source with ``pipeline`` and write the result files.

    Args:
        source_path: video file, image file or folder of images (or such a source, already opened).
        out_dir: output folder (created).
        pipeline: the models (:class:`PosePipeline`).
        tracking: tracker settings, or None for no tracking; never used on images and image
            folders, whose frames are unrelated.
        classify: classifier settings, or None for no posture/gesture labels.
        lifter: COCO-17 → H36M-17 :class:`~engines.lifter.TemporalModel` for ``keypoints_3d``, or None.
        write_video: also write the annotated video (or annotated images).
        view_3d: also write ``<name>_3d.mp4``, each frame beside its people's 3D skeletons
            (needs ``lifter``; videos only).
        max_frames: stop after this many frames.
        progress: tqdm progress bar.

    Returns:
        A :class:`RunSummary` (its ``outputs`` list every file written).

    Raises:
        stream.sources.SourceError: the source cannot be opened, or fails part-way (after the
            results so far were written).
    """
    source = source_path if isinstance(source_path, (VideoFileSource, ImageSource)) else open_source(source_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    annotator = SkeletonAnnotator()
    sinks = [JsonLinesSink(out_dir / f"{source.name}.jsonl"), PredictionsJsonSink(out_dir / f"results_{source.name}.json")]
    if write_video:
        sinks.append(ImageFolderSink(out_dir / f"{source.name}_annotated", annotator) if isinstance(source, ImageSource)
                     else VideoSink(out_dir / f"{source.name}.mp4", source.fps, annotator))
    if view_3d and lifter is not None and not isinstance(source, ImageSource):
        sinks.append(VideoSink(out_dir / f"{source.name}_3d.mp4", source.fps, Pose3DAnnotator()))
    process = PoseStream(pipeline, None if isinstance(source, ImageSource) else tracking, classify, lifter)
    summary = RunSummary()
    totals = {"decode": 0.0, "detect": 0.0, "pose": 0.0, "track": 0.0, "lift": 0.0, "classify": 0.0, "write": 0.0}
    total = len(source) or None  # frames the progress bar expects; None when the container does not say
    if max_frames:
        total = min(total, max_frames) if total else max_frames
    start = time.perf_counter()

    def write(ready) -> None:
        t0 = time.perf_counter()
        for frame, result in ready:
            for sink in sinks:
                sink.write(result, frame.image)
            for stage in ("detect", "pose", "track", "lift", "classify"):
                totals[stage] += result.timings.get(stage, 0.0)
            summary.people += len(result)
            summary.max_people = max(summary.max_people, len(result))
        totals["write"] += (time.perf_counter() - t0) * 1e3

    try:
        frames = iter(source)
        with tqdm(total=total, unit="frame", desc=source.name, disable=not progress) as bar:
            while max_frames is None or summary.frames < max_frames:
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                totals["decode"] += (time.perf_counter() - t0) * 1e3
                write(process.process(frame))
                summary.frames += 1
                bar.update(1)
    except Exception as exc:
        summary.error = str(exc)
        raise
    finally:
        try:  # results a delayed lifter still holds are completed and written, also after an error
            write(process.flush())
        except Exception:
            log.exception("could not flush the held-back results")
        summary.seconds = time.perf_counter() - start
        summary.stage_ms = {k: v / max(summary.frames, 1) for k, v in totals.items()}
        for sink in sinks:
            try:
                written = sink.close()
            except Exception:  # one broken sink must not lose the others' results
                log.exception("could not finish %s", type(sink).__name__)
                continue
            if written is not None:
                summary.outputs.append(written)
    return summary
