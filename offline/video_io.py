"""Reading and writing whole short videos for the offline commands: video files (PyAV/FFmpeg),
animated GIFs (PIL) and folders of PNG/JPG frames.

Frames are always (H, W, 3) uint8 **BGR** (OpenCV order, as the rest of posestream), times in
seconds. Everything here holds a clip in memory: it is meant for the short clips that
Follow-Your-Pose eats and makes (tens to a few hundred frames), not for hours of footage (the
streaming path, :mod:`posestream.stream.capture.files`, is for that).

Writing is atomic (:func:`posestream.engines.files.atomic_output`): a reader never sees a
half-written file under its final name, and nothing is left behind on error.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from posestream.stream.sinks.files import add_video_stream

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")
GIF_SUFFIXES = (".gif",)


def frame_files(folder: str | Path) -> list[Path]:
    """The PNG/JPG files of ``folder``, sorted by name.

    Raises:
        FileNotFoundError: no such folder.
        ValueError: the folder holds no PNG/JPG image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no frames ({', '.join(FRAME_SUFFIXES)} files)")
    return files


def _read_folder(folder: Path, max_frames: int | None):
    files = frame_files(folder)[:max_frames]
    frames = []
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{file} cannot be decoded as an image (corrupt or not an image)")
        if frames and image.shape != frames[0].shape:
            raise ValueError(f"{file} is {image.shape[1]}x{image.shape[0]}, the first frame of {folder} is "
                             f"{frames[0].shape[1]}x{frames[0].shape[0]}: a frame folder needs one size")
        frames.append(image)
    return frames, None, np.arange(len(frames), dtype=np.float64)


def _read_gif(path: Path, max_frames: int | None):
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as gif:
            frames, durations = [], []
            for frame in ImageSequence.Iterator(gif):
                if max_frames is not None and len(frames) >= max_frames:
                    break
                durations.append(float(frame.info.get("duration", gif.info.get("duration", 0)) or 0) / 1000)
                frames.append(cv2.cvtColor(np.asarray(frame.convert("RGB")), cv2.COLOR_RGB2BGR))
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path} is not a readable GIF ({exc})") from exc
    if not frames:
        raise ValueError(f"{path} holds no frames")
    pts = np.concatenate([[0.0], np.cumsum(durations[:-1])]) if durations else np.zeros(0)
    fps = 1.0 / float(np.median(durations)) if durations and np.median(durations) > 0 else None
    if fps is None:
        pts = np.arange(len(frames), dtype=np.float64)
    return frames, fps, pts.astype(np.float64)


def _read_video(path: Path, max_frames: int | None):
    import av

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise ValueError(f"{path} is not a readable video ({exc.strerror or exc})") from exc
    try:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        time_base = stream.time_base
        frames, pts = [], []
        try:
            for frame in container.decode(stream):
                if max_frames is not None and len(frames) >= max_frames:
                    break
                frames.append(frame.to_ndarray(format="bgr24"))
                if frame.pts is not None and time_base is not None:
                    pts.append(float(frame.pts * time_base))
                else:
                    pts.append((len(frames) - 1) / (fps or 1.0))
        except av.error.FFmpegError as exc:
            raise ValueError(f"{path}: decoding failed after frame {len(frames)} ({exc.strerror or exc}); "
                             "the file is truncated or corrupt") from exc
    finally:
        container.close()
    if not frames:
        raise ValueError(f"{path} holds no decodable frames")
    pts = np.asarray(pts, np.float64)
    return frames, fps, pts - pts[0]


def read_frames(path: str | Path, *, max_frames: int | None = None) -> tuple[list[np.ndarray], float | None, np.ndarray]:
    """Read a whole short clip.

    Args:
        path: a video file FFmpeg reads (MP4, AVI, …; decoded with PyAV), an animated ``.gif``
            (PIL), or a folder of ``.png``/``.jpg`` frames (sorted by file name).
        max_frames: read at most this many frames (None: all).

    Returns:
        ``(frames, fps, pts)``: a list of (H, W, 3) uint8 BGR arrays; the frame rate in frames per
        second (the stream's average rate; for a GIF 1 / median frame duration; None for a frame
        folder, which has no rate); float64 (N,) presentation times in seconds from the first frame
        (a frame folder: 0, 1, 2, … i.e. frame indices).

    Raises:
        FileNotFoundError: no such file or folder.
        ValueError: a folder without PNG/JPG frames, a frame that cannot be decoded (its file is
            named), frames of different sizes, a file that is not a readable video/GIF, or one
            without frames.
    """
    path = Path(path)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be ≥ 1, got {max_frames}")
    if path.is_dir():
        return _read_folder(path, max_frames)
    if not path.is_file():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.suffix.lower() in GIF_SUFFIXES:
        return _read_gif(path, max_frames)
    if path.suffix.lower() in FRAME_SUFFIXES:
        raise ValueError(f"{path} is a single image, not a video; pass the folder of frames instead")
    return _read_video(path, max_frames)


class VideoWriter:
    """Frames → an MP4 (H.264 yuv420p with PyAV, MPEG-4 Part 2 where libx264 is missing, like
    :class:`posestream.stream.sinks.files.VideoSink`) or a GIF (PIL, ``loop=0``), written to
    ``<path>.part`` and renamed on :meth:`close`.

    Use as a context manager: on an exception the partial file is deleted.

    Args:
        path: ``.mp4`` (or another container FFmpeg writes) or ``.gif``.
        fps: frames per second (> 0); a GIF stores per-frame durations of round(1000 / fps) ms.
        crf: H.264 quality (lower is better; 18 keeps thin coloured lines crisp).

    Frames: (H, W, 3) uint8 BGR, all of one size. Odd sizes are padded with black by one pixel
    for yuv420p (MP4 only).

    Raises:
        ValueError: fps ≤ 0, a frame of another size or dtype, or closing without any frame.
    """

    def __init__(self, path: str | Path, fps: float, crf: int = 18):
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.crf = crf
        self.gif = self.path.suffix.lower() in GIF_SUFFIXES
        self.part = self.path.with_name(self.path.name + ".part")
        self.count = 0
        self._size = None
        self._gif_frames = []
        self._container = None
        self._stream = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, image: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 BGR frame."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 frame, got {image.shape} {image.dtype}")
        if self._size is None:
            self._size = image.shape[:2]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.gif:
                self._open(image.shape[1], image.shape[0])
        elif image.shape[:2] != self._size:
            raise ValueError(f"frame {self.count} is {image.shape[1]}x{image.shape[0]}, "
                             f"the video is {self._size[1]}x{self._size[0]}")
        self.count += 1
        if self.gif:
            from PIL import Image

            self._gif_frames.append(Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)))
            return
        import av

        pad_h, pad_w = self._stream.height - image.shape[0], self._stream.width - image.shape[1]
        if pad_h or pad_w:
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self.count - 1
        frame.time_base = 1 / self._rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def _open(self, width: int, height: int) -> None:
        import av

        self._rate = Fraction(self.fps).limit_denominator(100000)
        self._container = av.open(str(self.part), mode="w", format="mp4" if self.path.suffix.lower() in (
            ".mp4", ".m4v", ".mov") else None)
        self._stream = add_video_stream(self._container, self._rate, width, height, crf=self.crf)

    def close(self) -> Path:
        """Finish the file and move it to its final name; returns the path.

        Raises:
            ValueError: no frame was written (nothing is left on disk).
        """
        import os

        if self.count == 0:
            self.abort()
            raise ValueError(f"no frames to write to {self.path}")
        try:
            if self.gif:
                duration = max(1, round(1000 / self.fps))
                self._gif_frames = _distinct_palette_frames(self._gif_frames)
                self._gif_frames[0].save(self.part, format="GIF", save_all=True,
                                         append_images=self._gif_frames[1:], duration=duration, loop=0,
                                         optimize=False, disposal=1)
                self._gif_frames = []
            else:
                for packet in self._stream.encode():
                    self._container.mux(packet)
                self._container.close()
                self._container = None
            os.replace(self.part, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop everything written so far (no file is left)."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the partial file is deleted anyway
                pass
            self._container = None
        self._gif_frames = []
        self.part.unlink(missing_ok=True)


def _distinct_palette_frames(frames: list) -> list:
    """RGB PIL frames → adaptive-palette ("P") frames, each differing from the one before it.

    PIL's GIF writer folds a frame identical to the previous one into it (adding the durations),
    which would change the frame count that Follow-Your-Pose's strides index; such a frame gets
    one corner pixel set to the nearest other palette entry (an invisible change) so that every
    frame is kept."""
    from PIL import Image

    out, previous = [], None
    for frame in frames:
        indexed = frame.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
        pixels = np.asarray(indexed)
        palette = indexed.getpalette() or []
        if previous is not None and np.array_equal(pixels, previous[0]) and palette == previous[1]:
            colours = np.asarray(palette, np.int64).reshape(-1, 3)
            x, y = indexed.width - 1, indexed.height - 1
            current = int(pixels[y, x])
            indexed = indexed.copy()
            if len(colours) < 256:  # a new entry one level off the pixel's colour
                r, g, b = (int(v) for v in colours[current])
                indexed.putpalette(palette + [r, g, b + 1 if b < 255 else b - 1])
                indexed.putpixel((x, y), len(colours))
            else:  # a full palette: the nearest other entry
                distance = np.abs(colours - colours[current]).sum(axis=1)
                distance[current] = np.iinfo(np.int64).max
                indexed.putpixel((x, y), int(np.argmin(distance)))
            palette = indexed.getpalette() or []
            pixels = np.asarray(indexed)
        out.append(indexed)
        previous = (pixels, palette)
    return out


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write (H, W, 3) uint8 BGR ``frames`` to ``path`` (.mp4 via PyAV H.264, .gif via PIL) at
    ``fps`` frames per second, atomically. See :class:`VideoWriter`. Returns the path."""
    with VideoWriter(path, fps) as writer:
        for image in frames:
            writer.write(image)
    return writer.path


class FrameFolderWriter:
    """Frames as ``folder/000000.png``, ``000001.png``, … (zero-padded to at least 6 digits so that
    names sort as frames), written into ``<folder>.part`` and renamed on :meth:`close` (an
    existing folder of that name is replaced); :meth:`abort` removes the partial folder.

    Args:
        folder: the folder to create. count: expected frames (sets the padding when over 10⁶).
    """

    def __init__(self, folder: str | Path, count: int = 0):
        import shutil

        self.folder = Path(folder)
        self.part = self.folder.with_name(self.folder.name + ".part")
        self.digits = max(6, len(str(max(count - 1, 0))))
        self.count = 0
        shutil.rmtree(self.part, ignore_errors=True)
        self.part.mkdir(parents=True)

    def write(self, image: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 BGR frame as PNG."""
        file = self.part / f"{self.count:0{self.digits}d}.png"
        if not cv2.imwrite(str(file), image):
            raise OSError(f"cannot write {file}")
        self.count += 1

    def close(self) -> Path:
        import os
        import shutil

        if self.folder.exists():
            shutil.rmtree(self.folder)
        os.replace(self.part, self.folder)
        return self.folder

    def abort(self) -> None:
        import shutil

        shutil.rmtree(self.part, ignore_errors=True)


def write_frames(folder: str | Path, frames: Sequence[np.ndarray]) -> Path:
    """Write (H, W, 3) uint8 BGR ``frames`` as PNGs into ``folder`` atomically
    (:class:`FrameFolderWriter`). Returns the folder."""
    writer = FrameFolderWriter(folder, len(frames))
    try:
        for image in frames:
            writer.write(image)
        return writer.close()
    except BaseException:
        writer.abort()
        raise
