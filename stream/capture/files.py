"""Frame sources for recorded input: video files (PyAV/FFmpeg), single images and image folders.

Every source yields :class:`Frame` objects losslessly, in order, with 1-based frame ids.
Errors are :class:`SourceError` with one readable line: a missing path, a file FFmpeg cannot
read, a file without a video stream, or a decode error part-way (raised *after* the frames
decoded before it were yielded, so the caller keeps them).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class SourceError(RuntimeError):
    """The input cannot be read (or stopped being readable part-way)."""


#: Longest name, in UTF-8 bytes: with ``results_`` and ``.json.part`` around it, and the live
#: graph's ``_2`` for a second source of the same name, a file name stays under 255 bytes.
MAX_NAME_BYTES = 200


def safe_name(text: str) -> str:
    """The name a source's outputs and stream id carry (``posestream run`` and the live graph
    alike; :class:`posestream.stream.sinks.outputs.OutputFiles`): ``text`` in Unicode NFC with
    letters and digits of every script, ``_``, ``.`` and ``-`` kept and each run of other
    characters (spaces, slashes, colons, control characters) made one ``_``; no leading or
    trailing ``_`` or ``.``; at most :data:`MAX_NAME_BYTES`; ``stream`` when nothing is left.
    ``vidéo ü`` → ``vidéo_ü``, ``cam/main stream`` → ``cam_main_stream``."""
    name = re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", text)).strip("_.")
    name = name.encode()[:MAX_NAME_BYTES].decode(errors="ignore").rstrip("_.")
    return name or "stream"


@dataclass
class Frame:
    """One decoded frame.

    Attributes:
        frame_id: 1-based index in the source.
        pts: presentation time in seconds (images: ``frame_id - 1``).
        image: (H, W, 3) uint8 BGR.
        name: file name for image sources, else None.
    """

    frame_id: int
    pts: float
    image: np.ndarray
    name: str | None = None


class VideoFileSource:
    """A recorded video in any container FFmpeg reads, decoded with PyAV.

    Attributes:
        path: the file. name: its stem made safe (:func:`safe_name`), the outputs' name.
        fps: average frame rate (Fraction; 25 when the container does not say).
        width, height: frame size in pixels.
        frame_count: frames the container declares (0 when unknown).

    Raises:
        SourceError: missing file, not a video, no video stream, a video stream without a
            single frame (at construction), or a decode error during iteration — including a
            file that ends well short of the frame count its container declares (a truncated
            MP4 often ends without a decoder error).
    """

    def __init__(self, path: str | Path):
        import av

        self.path = Path(path)
        self.name = safe_name(self.path.stem)
        if not self.path.is_file():
            raise SourceError(f"no such file: {self.path}")
        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as exc:
            raise SourceError(f"{self.path} is not a readable video ({exc.strerror or exc})") from exc
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{self.path} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        ctx = self._stream.codec_context
        self.width, self.height = ctx.width, ctx.height
        self.fps = Fraction(self._stream.average_rate or self._stream.guessed_rate or 25)
        self.frame_count = int(self._stream.frames or 0)
        if not self.frame_count and not self._has_packets():
            self._container.close()
            raise SourceError(f"{self.path} has no frames (its video stream is empty)")

    def _has_packets(self) -> bool:
        """Whether the video stream holds any data, read from a second opening of the file (the
        demuxer stops at the first packet), for containers that declare no frame count."""
        import av

        try:
            with av.open(str(self.path)) as probe:
                stream = probe.streams.video[0]
                return any(packet.size for packet in probe.demux(stream))
        except av.error.FFmpegError:
            return True  # unreadable data: iteration reports it as a decode error

    def __iter__(self) -> Iterator[Frame]:
        import av

        frame_id = 0
        time_base = self._stream.time_base
        try:
            for frame in self._container.decode(self._stream):
                frame_id += 1
                pts = float(frame.pts * time_base) if frame.pts is not None else (frame_id - 1) / float(self.fps)
                yield Frame(frame_id, pts, frame.to_ndarray(format="bgr24"))
        except av.error.FFmpegError as exc:
            raise SourceError(
                f"{self.path}: decoding failed after frame {frame_id}"
                f"{f' of {self.frame_count}' if self.frame_count else ''} ({exc.strerror or exc}); "
                "the file is truncated or corrupt"
            ) from exc
        finally:
            self._container.close()
        missing = self.frame_count - frame_id
        if missing > max(2, self.frame_count // 50):  # a few frames' slack for edit lists and codec delay
            raise SourceError(f"{self.path}: decoding stopped after frame {frame_id} of {self.frame_count}; "
                              "the file is truncated or corrupt")
        if self.frame_count and missing:
            log.warning("%s: decoded %d frames, the container declares %d", self.path, frame_id, self.frame_count)

    def __len__(self) -> int:
        return self.frame_count

    def close(self) -> None:
        """Close the file without reading it (iteration closes it at its end too)."""
        self._container.close()


#: Largest image read, in pixels (a 50-megapixel photo takes 150 MB decoded; a 20000 × 20000
#: "image" would take 1.2 GB): larger ones are refused before they are decoded.
MAX_IMAGE_PIXELS = 50_000_000


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header (FFmpeg's image demuxers via PyAV, no decoding),
    or None when the header cannot be read."""
    import av

    try:
        with av.open(str(path)) as container:
            context = container.streams.video[0].codec_context
            return int(context.width), int(context.height)
    except (av.error.FFmpegError, IndexError, OSError):
        return None


class ImageSource:
    """One image file or a folder of images (sorted by name).

    In a folder, an image that cannot be decoded or is larger than ``max_pixels`` is skipped,
    logged and listed in :attr:`skipped` (``(file name, reason)``); a single image that fails
    raises.

    Raises:
        SourceError: missing path, a folder without images, or a single image that cannot be
            decoded or is too large.
    """

    fps = Fraction(1)

    def __init__(self, path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS):
        self.path = Path(path)
        self.max_pixels = int(max_pixels)
        self.skipped: list[tuple[str, str]] = []
        self.name = safe_name(self.path.stem if self.path.is_file() else self.path.resolve().name)
        if self.path.is_dir():
            self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise SourceError(f"{self.path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        elif self.path.is_file():
            self.files = [self.path]
        else:
            raise SourceError(f"no such file or folder: {self.path}")

    def __len__(self) -> int:
        return len(self.files)

    def close(self) -> None:
        """Nothing to close: each image is read when iterated."""

    def _read(self, file: Path) -> np.ndarray:
        size = image_size(file)
        if size is not None and size[0] * size[1] > self.max_pixels:
            raise SourceError(f"{file} is {size[0]}x{size[1]} pixels, over the limit of {self.max_pixels} "
                              "(--max-image-pixels)")
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{file} cannot be decoded as an image")
        return image

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for file in self.files:
            try:
                image = self._read(file)
            except SourceError as exc:
                if len(self.files) == 1:
                    raise
                log.warning("skipped: %s", exc)
                self.skipped.append((file.name, str(exc)))
                continue
            index += 1
            yield Frame(index, float(index - 1), image, name=file.name)


def open_source(path: str | Path, max_image_pixels: int = MAX_IMAGE_PIXELS) -> VideoFileSource | ImageSource:
    """Open a recorded source: an image (by suffix), a folder of images, or a video file.

    Raises:
        SourceError: see the source classes.
    """
    path = Path(path)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path, max_image_pixels)
    return VideoFileSource(path)
