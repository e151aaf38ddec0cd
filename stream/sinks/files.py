"""Result sinks for recorded runs: JSON lines, mmpose ``--save-predictions`` JSON, annotated video.

Every sink offers ``write(result, image)`` (one frame's :class:`FrameResult` and its (H, W, 3)
uint8 BGR image, in frame order) and ``close() -> Path | None`` (finish, rename into place,
return the path; None when nothing was written). Every sink writes to ``<file>.part`` and
renames it into place on :meth:`close`, which is
called also when a run fails part-way: what was computed is kept, and a reader never sees a
half-written file under the final name.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from posestream.engines.files import atomic_output
from posestream.engines.layouts import coco17_dataset_meta, to_wholebody, wholebody_dataset_meta

from posestream.stream.results import FrameResult


def part_path(path: Path) -> Path:
    """The ``.part`` file a sink writes before renaming it to ``path``."""
    return path.with_name(path.name + ".part")


def write_json_atomic(path: str | Path, data) -> Path:
    """Write ``data`` as JSON to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "w") as handle:
        json.dump(data, handle)
    return path


class JsonLinesSink:
    """One JSON object per frame and line (:meth:`FrameResult.to_json`), flushed as it goes.

    Args:
        path: the final ``.jsonl`` path (written to ``<path>.part`` until :meth:`close`).
        append: go on at the end of an existing ``.part`` (a sink taking up its stream again,
            :mod:`posestream.stream.sinks.resume`) instead of starting it anew.
    """

    def __init__(self, path: str | Path, append: bool = False):
        self.path = Path(path)
        self._handle = open(part_path(self.path), "a" if append else "w")

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        self.write_record(result.to_json())

    def write_record(self, record: dict) -> None:
        """Write a record already in :meth:`FrameResult.to_json` form (the live graph's sink
        receives it so: no second encoding)."""
        self._handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._handle.flush()

    def close(self) -> Path:
        self._handle.close()
        os.replace(part_path(self.path), self.path)
        return self.path


class PredictionsJsonSink:
    """The mmpose ``--save-predictions`` layout: ``{"meta_info", "instance_info": [{"frame_id", "instances"}]}``.

    Instances carry ``keypoints`` [[x, y]×17], ``keypoint_scores`` [17], ``bbox`` [[x1, y1, x2, y2]]
    and ``bbox_score`` (plus ``track_id`` once tracking runs), as mmpose's demo writes them.
    Frames are streamed to ``<file>.part`` as they come (memory stays flat on endless live
    streams); :meth:`close` ends the document and renames it. The bytes are those of
    ``json.dump`` of the whole document.

    Args:
        path: the final ``.json`` path.
        keypoints: ``coco17`` (default: 17 keypoints, mmpose's ``coco`` meta) or ``wholebody``
            (133 keypoints in COCO-WholeBody order with mmpose's ``coco_wholebody`` meta,
            :func:`posestream.engines.layouts.to_wholebody`: body, BlazePose's heels and foot tips
            as heels and big toes, the hands of ``posestream run --hands``, or everything a
            whole-body model (RTMW) gives; the face (unless such a model gives it), the small
            toes and hands not found are (0, 0) with score 0).

    Raises:
        ValueError: another ``keypoints`` layout.
    """

    LAYOUTS = ("coco17", "wholebody")

    def __init__(self, path: str | Path, keypoints: str = "coco17"):
        if keypoints not in self.LAYOUTS:
            raise ValueError(f"keypoint layout: expected one of {', '.join(self.LAYOUTS)}, got {keypoints!r}")
        self.path = Path(path)
        self.layout = keypoints
        meta = wholebody_dataset_meta() if keypoints == "wholebody" else coco17_dataset_meta()
        self._handle = open(part_path(self.path), "w")
        self._handle.write('{"meta_info": ' + json.dumps(meta) + ', "instance_info": [')
        self._first = True

    def write(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        instances = []
        if self.layout == "wholebody" and len(result):
            points, scores = to_wholebody(result.keypoints, result.keypoint_scores, result.extra_keypoints,
                                          result.extra_keypoint_scores, result.hand_keypoints,
                                          result.hand_keypoint_scores, result.wholebody_keypoints,
                                          result.wholebody_scores)
        for i, inst in enumerate(result.instances()):
            if self.layout == "wholebody":
                inst["keypoints"] = np.round(points[i].astype(np.float64), 2).tolist()
                inst["keypoint_scores"] = np.round(scores[i].astype(np.float64), 4).tolist()
            item = {"keypoints": inst["keypoints"], "keypoint_scores": inst["keypoint_scores"],
                    "bbox": [inst["bbox"]], "bbox_score": inst["bbox_score"]}
            if inst["track_id"] is not None:
                item["track_id"] = inst["track_id"]
            instances.append(item)
        self._handle.write(("" if self._first else ", ") + json.dumps({"frame_id": result.frame_id, "instances": instances}))
        self._first = False

    def close(self) -> Path:
        if not self._handle.closed:
            self._handle.write("]}")
            self._handle.close()
            os.replace(part_path(self.path), self.path)
        return self.path


#: MP4 muxer options of a crash-safe video: fragmented (a fragment per keyframe, the index up
#: front) and written through at once, so that a killed writer leaves a playable ``.part``
#: (FFmpeg's mov muxer, ``movflags``).
CRASH_SAFE_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1", "flush_packets": "1"}


def add_video_stream(container, rate: Fraction, width: int, height: int, crf: int = 23,
                     keyframe_every: int | None = None):
    """Add the video stream posestream's videos are written with to an open PyAV output
    ``container`` and return it: yuv420p (``width``/``height`` rounded up to even sizes: pad
    the frames by a pixel), one encoder thread, H.264 (``libx264``) at ``crf`` with x264's
    ``veryfast`` preset, or MPEG-4 Part 2 (``mpeg4``, in every FFmpeg build) where PyAV's FFmpeg
    lacks libx264.

    The same frames give the same file, whatever the machine's core count and whatever the
    process did before (``posestream batch`` writes the files of ``posestream run``).

    Args:
        rate: frames per second (the stream's time base is 1/rate). width, height: pixels.
        crf: x264's constant rate factor (lower is better; 18 keeps thin coloured lines crisp).
        keyframe_every: a keyframe every this many frames and x264 without look-ahead
            (``tune=zerolatency``), so that a reader of a file still being written sees its
            frames soon (the live graph's crash-safe video); None: the encoder's defaults.
    """
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height = width + width % 2, height + height % 2  # yuv420p needs even sizes
    stream.pix_fmt = "yuv420p"
    if codec == "libx264":
        # mbtree=0: x264's macroblock-tree rate control reads uninitialised memory in its
        # look-ahead at some frame widths (valgrind: conditional jumps on uninitialised values
        # inside x264_encoder_encode at 420 and 432 px, none at 384 and 448, none at 250, 400,
        # 420, 432 and 642 px with mbtree=0), so the same frames encoded to different files
        # depending on what the process had allocated before (posestream batch: a 420 px video
        # after a 720 px one). Size and PSNR on har-wave and har-stand: within 5 % and 0.6 dB of
        # mbtree's; on the still-camera tfjs squats 1.55 times the size, 0.5 dB better.
        stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "mbtree=0"}
        if keyframe_every is not None:
            stream.options = {**stream.options, "tune": "zerolatency", "g": str(keyframe_every)}
    elif keyframe_every is not None:
        stream.codec_context.gop_size = keyframe_every
    # one encoder thread: encoding shares the cores with inference, and x264's output depends on
    # its thread count, which must not follow the machine's core count
    stream.codec_context.thread_count = 1
    return stream


class VideoSink:
    """Annotated frames encoded with PyAV (H.264 when available, else MPEG-4 Part 2) into MP4.

    Each frame is placed at its result's ``pts`` (seconds from the stream's first frame, on a
    1/fps grid), so that frames missing from a stream leave a gap in time instead of making
    the video shorter and faster.

    Args:
        path: output ``.mp4``.
        fps: frame rate of the source (Fraction); one output frame per input frame.
        annotator: object with ``annotate(image, result) -> image``.
        crash_safe: fragmented MP4 written through at once, x264 without look-ahead and a
            keyframe a second (:data:`CRASH_SAFE_MP4`), so that a killed process leaves a
            ``.part`` whose frames all but the last few can be read back (the live graph's sink).
    """

    def __init__(self, path: str | Path, fps: Fraction, annotator, crash_safe: bool = False):
        import av

        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(100000)
        self.annotator = annotator
        self.crash_safe = crash_safe
        self._container = av.open(str(part_path(self.path)), mode="w", format="mp4",
                                  options=dict(CRASH_SAFE_MP4) if crash_safe else {})
        self._container.metadata["comment"] = f"posestream fps={self.fps}"  # read back by resume
        self._stream = None
        self._pts0: float | None = None
        self._last = -1

    def _open_stream(self, width: int, height: int) -> None:
        self._stream = add_video_stream(self._container, self.fps, width, height,
                                        keyframe_every=max(1, round(self.fps)) if self.crash_safe else None)

    def write(self, result: FrameResult, image: np.ndarray) -> None:
        """Annotate ``image`` with ``result`` and encode it at ``result.pts``."""
        self.write_annotated(self.annotator.annotate(image, result), result.pts)

    def write_annotated(self, canvas: np.ndarray, pts: float) -> None:
        """Encode an (H, W, 3) uint8 BGR frame already drawn on, at ``pts`` seconds (frames at
        or before the previous one's slot go to the next slot)."""
        import av

        if self._stream is None:
            self._open_stream(canvas.shape[1], canvas.shape[0])
        pad_h, pad_w = self._stream.height - canvas.shape[0], self._stream.width - canvas.shape[1]
        if pad_h or pad_w:
            canvas = np.pad(canvas, ((0, max(pad_h, 0)), (0, max(pad_w, 0)), (0, 0)))[: self._stream.height, : self._stream.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas), format="bgr24")
        if self._pts0 is None:
            self._pts0 = pts
        self._last = frame.pts = max(round((pts - self._pts0) * self.fps), self._last + 1)
        frame.time_base = 1 / self.fps
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def start_at(self, pts: float) -> None:
        """Count time from ``pts`` seconds (the stream's first frame) rather than from the first
        frame written here (a sink taking up a stream again)."""
        self._pts0 = pts

    def close(self) -> Path | None:
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
        if self._stream is None:  # nothing was written
            part_path(self.path).unlink(missing_ok=True)
            return None
        os.replace(part_path(self.path), self.path)
        return self.path


class ImageFolderSink:
    """Annotated images, one file per input image, into a folder (image inputs)."""

    def __init__(self, folder: str | Path, annotator):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.annotator = annotator

    def write(self, result: FrameResult, image: np.ndarray) -> None:
        import cv2

        name = Path(result.image or f"{result.frame_id:06d}.jpg")
        target = self.folder / (name.stem + ".jpg")
        tmp = part_path(target)
        ok, data = cv2.imencode(".jpg", self.annotator.annotate(image, result))
        if ok:
            tmp.write_bytes(data.tobytes())
            os.replace(tmp, target)

    def close(self) -> Path:
        return self.folder
