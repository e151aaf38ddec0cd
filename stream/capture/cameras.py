"""Live sources: webcams (OpenCV) and RTSP cameras (FFmpeg through PyAV), and opening any source
by its spec (``0``, ``/dev/video0``, ``rtsp://…``, a file).

Live frames get ``pts`` = seconds since the source opened (wall clock), since a camera's own
clock restarts with each connection. An RTSP source reconnects by itself, with exponential
backoff, when the camera drops or stalls; frames after a reconnect may have another size.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from posestream.stream.capture.files import Frame, SourceError, VideoFileSource, open_source, safe_name

log = logging.getLogger(__name__)


def source_name(spec: str) -> str:
    """A file-name-safe name for a source spec: ``camera0`` for an index, the device or file stem,
    or an RTSP URL's host and path (credentials left out), made safe by
    :func:`~posestream.stream.capture.files.safe_name` — for a file, the same name as
    ``VideoFileSource(spec).name``, so that ``posestream run`` and the live graph name their
    outputs alike (the live graph numbers a second source of the same name: ``wave_2``)."""
    if spec.isdigit():
        return f"camera{spec}"
    return safe_name(spec.split("://", 1)[1].split("@")[-1] if "://" in spec else Path(spec).stem)


#: Environment variables that give RTSP credentials without putting them on the command line:
#: ``user:password`` itself, or the path of a file holding it (first line).
RTSP_CREDENTIALS_ENV = "POSESTREAM_RTSP_CREDENTIALS"
RTSP_CREDENTIALS_FILE_ENV = "POSESTREAM_RTSP_CREDENTIALS_FILE"
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it replaced by ``***@`` (log lines,
    error messages, FFmpeg's errors that quote the URL)."""
    return _USERINFO.sub(r"\1***@", str(text))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts URL credentials (:func:`redact`) in every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


def with_credentials(url: str) -> str:
    """``url`` with the credentials of :data:`RTSP_CREDENTIALS_ENV` (or the file named by
    :data:`RTSP_CREDENTIALS_FILE_ENV`) inserted when it has none of its own.

    Raises:
        SourceError: the credentials file cannot be read, or holds no ``user:password`` line.
    """
    if "://" not in url or "@" in url.split("://", 1)[1].split("/", 1)[0]:
        return url
    credentials = os.environ.get(RTSP_CREDENTIALS_ENV)
    path = os.environ.get(RTSP_CREDENTIALS_FILE_ENV)
    if not credentials and path:
        try:
            credentials = Path(path).read_text().splitlines()[0].strip() if Path(path).stat().st_size else ""
        except OSError as exc:
            raise SourceError(f"{RTSP_CREDENTIALS_FILE_ENV}={path}: {exc.strerror or exc}") from exc
        if ":" not in credentials:
            raise SourceError(f"{RTSP_CREDENTIALS_FILE_ENV}={path}: the first line must be user:password")
    if not credentials:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{credentials}@{rest}"


def is_live(spec: str) -> bool:
    """Whether ``spec`` names a camera (index, device or RTSP URL) rather than a file."""
    return bool(re.fullmatch(r"\d+", spec)) or spec.startswith(("/dev/video", "rtsp://", "rtsps://"))


@dataclass(frozen=True)
class RtspOptions:
    """FFmpeg options of an RTSP connection.

    Attributes:
        transport: ``tcp`` (default: no lost packets, works through NAT) or ``udp``.
        open_timeout, read_timeout: seconds before a connection attempt or a silent stream fails.
        backoff_start, backoff_max: seconds between reconnection attempts, doubling up to the max.
    """

    transport: str = "tcp"
    open_timeout: float = 5.0
    read_timeout: float = 5.0
    backoff_start: float = 0.5
    backoff_max: float = 8.0


class LiveSource:
    """Base of live sources: frame numbering, wall-clock ``pts``, a thread-safe :meth:`stop`."""

    live = True

    def __init__(self, name: str):
        self.name = name
        self._stopped = threading.Event()
        self._start = time.monotonic()
        self._next_id = 1
        self.reconnects = 0

    def stop(self) -> None:
        """Make the iteration end after the current frame."""
        self._stopped.set()

    def _frame(self, image: np.ndarray) -> Frame:
        frame = Frame(self._next_id, time.monotonic() - self._start, image)
        self._next_id += 1
        return frame


class WebcamSource(LiveSource):
    """A camera opened by OpenCV (V4L2 on Linux), by index (``0``) or device path.

    Raises:
        SourceError: no camera there, or it gives no frame.
    """

    def __init__(self, device: str | int):
        import cv2

        super().__init__(source_name(str(device)))
        index = int(device) if str(device).isdigit() else str(device)
        if isinstance(index, str) and not Path(index).exists():
            raise SourceError(f"no camera at {index}")
        self._capture = cv2.VideoCapture(index)
        if not self._capture.isOpened():
            raise SourceError(f"cannot open camera {device!r} (is one connected, and free?)")

    def close(self) -> None:
        """Release the camera (iteration releases it at its end too)."""
        self._capture.release()

    def __iter__(self) -> Iterator[Frame]:
        try:
            while not self._stopped.is_set():
                ok, image = self._capture.read()
                if not ok:
                    raise SourceError(f"camera {self.name} stopped giving frames")
                yield self._frame(image)
        finally:
            self._capture.release()


class RtspSource(LiveSource):
    """An RTSP camera through FFmpeg (PyAV): low-delay flags, read timeouts, reconnection.

    Iteration never ends on its own (only :meth:`stop` ends it): a dropped or silent camera is
    reopened with exponential backoff, counted in ``reconnects``.
    """

    def __init__(self, url: str, options: RtspOptions = RtspOptions()):
        super().__init__(source_name(url))
        self.url, self.options = url, options

    def close(self) -> None:
        """Nothing is held before iteration (each connection is opened and closed by it)."""

    def _open(self):
        import av

        o = self.options
        return av.open(with_credentials(self.url), options={"rtsp_transport": o.transport, "fflags": "nobuffer", "flags": "low_delay",
                                          "max_delay": "500000"},
                       timeout=(o.open_timeout, o.read_timeout))

    def __iter__(self) -> Iterator[Frame]:
        backoff = self.options.backoff_start
        connected_once = False
        while not self._stopped.is_set():
            try:
                container = self._open()
            except Exception as exc:  # PyAV raises OSError subclasses and av.error.*
                log.warning("%s: cannot connect (%s); retrying in %.1f s", self.name, redact(exc), backoff)
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, self.options.backoff_max)
                continue
            if connected_once:
                self.reconnects += 1
                log.warning("%s: reconnected", self.name)
            connected_once = True
            try:
                for video in container.decode(video=0):
                    backoff = self.options.backoff_start
                    yield self._frame(video.to_ndarray(format="bgr24"))
                    if self._stopped.is_set():
                        return
                log.warning("%s: stream ended; reconnecting", self.name)
            except Exception as exc:
                log.warning("%s: stream failed (%s); reconnecting", self.name, redact(exc))
            finally:
                container.close()


def open_any_source(spec: str, rtsp: RtspOptions = RtspOptions()):
    """Open a camera index or device, an RTSP URL, or a recorded file/images (``open_source``).

    Raises:
        SourceError: the source cannot be opened (a camera that is not there, a bad file).
    """
    if spec.startswith(("rtsp://", "rtsps://")):
        return RtspSource(spec, rtsp)
    if is_live(spec):
        return WebcamSource(spec)
    source = open_source(spec)
    if not isinstance(source, VideoFileSource):
        raise SourceError(f"{spec}: the live graph takes videos, cameras and RTSP URLs, not images")
    return source
