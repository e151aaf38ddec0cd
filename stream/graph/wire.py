"""Messages between the live graph's stages (and to other programs): msgpack, never pickle.

Every message is a ZeroMQ multipart message whose first part is a msgpack map, the *header*:

* ``v`` schema version (:data:`SCHEMA_VERSION`), ``kind``: ``frame`` | ``result`` | ``eos`` | ``heartbeat``;
* ``stream`` stream id (str), ``frame_id`` (1-based), ``pts`` (s), ``capture_ns`` (``time.time_ns()``
  when the frame was read), ``timings`` (stage → ms so far);
* frames: ``seq`` (consecutive over the frames one capture process sent), ``epoch`` (that
  process's start), ``shape`` [H, W, 3], ``dtype`` ``uint8``, and a second part, the raw BGR
  pixels, sent and received without copies; detections travel in the header (``bboxes``,
  ``bbox_scores``);
* results: ``result``, the JSON-lines record of the frame (README), and optionally the frame
  as a second part for the sinks that draw on it;
* ``eos``: ``last_frame_id`` of the stream (and, from a capture, its ``epoch`` and ``last_seq``).

Frames and results must carry ``frame_id`` (≥ 1), ``pts``, ``capture_ns`` and ``timings``.

A message that does not decode, has the wrong version, or whose buffer does not match its
shape raises :class:`WireError`; stages count and drop such messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

SCHEMA_VERSION = 1
KINDS = ("frame", "result", "eos", "heartbeat")


class WireError(ValueError):
    """A malformed message: undecodable, wrong schema version, or inconsistent."""


@dataclass
class Message:
    """A decoded message: the header map, its packed bytes as received (to forward it without
    packing it again) and, for frames, the (H, W, 3) uint8 image (a view on the received buffer,
    not a copy; read-only)."""

    header: dict
    image: np.ndarray | None = None
    packed: bytes = b""

    @property
    def kind(self) -> str:
        """``frame``, ``result``, ``eos`` or ``heartbeat``."""
        return self.header["kind"]


@dataclass
class Timer:
    """Adds one stage's milliseconds to a header's ``timings``."""

    header: dict
    stage: str
    start: float = field(default_factory=time.perf_counter)

    def stop(self) -> None:
        """Record the milliseconds since the timer was made under ``timings[stage]``."""
        self.header.setdefault("timings", {})[self.stage] = round((time.perf_counter() - self.start) * 1e3, 3)


def header(kind: str, stream: str, frame_id: int = 0, **fields: Any) -> dict:
    """A header map with the version and kind filled in."""
    return {"v": SCHEMA_VERSION, "kind": kind, "stream": stream, "frame_id": int(frame_id), **fields}


def encode(head: dict, image: np.ndarray | None = None) -> list:
    """Multipart parts of a message: the packed header, then the image buffer itself (no copy).

    Raises:
        ValueError: the image is not a C-contiguous (H, W, 3) uint8 array.
    """
    parts: list = []
    if image is not None:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"frames are (H, W, 3) uint8, got {image.shape} {image.dtype}")
        image = np.ascontiguousarray(image)
        head = {**head, "shape": list(image.shape), "dtype": "uint8"}
    parts.append(msgpack.packb(head, use_bin_type=True))
    if image is not None:
        parts.append(memoryview(image).cast("B"))
    return parts


def decode(parts: list) -> Message:
    """Parse the parts of a received message (bytes or zmq Frames).

    Raises:
        WireError: see the module docstring.
    """
    if not parts or len(parts) > 2:
        raise WireError(f"expected 1 or 2 parts, got {len(parts)}")
    packed = bytes(_buffer(parts[0]))
    try:
        head = msgpack.unpackb(packed, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types
        raise WireError(f"header is not msgpack ({type(exc).__name__})") from exc
    if not isinstance(head, dict):
        raise WireError("header is not a map")
    if head.get("v") != SCHEMA_VERSION:
        raise WireError(f"schema version {head.get('v')!r}, expected {SCHEMA_VERSION}")
    if head.get("kind") not in KINDS or not isinstance(head.get("stream"), str):
        raise WireError(f"bad kind {head.get('kind')!r} or stream {head.get('stream')!r}")
    if head["kind"] in ("frame", "result"):
        require(head, frame_id=int, pts=(int, float), capture_ns=int, timings=dict)
        if head["frame_id"] < 1:
            raise WireError(f"frame_id {head['frame_id']} < 1")
    elif head["kind"] == "eos":
        require(head, last_frame_id=int)
    image = None
    if len(parts) == 2:
        shape = head.get("shape")
        if head.get("dtype") != "uint8" or not (isinstance(shape, list) and len(shape) == 3 and shape[2] == 3
                                               and all(isinstance(s, int) and s > 0 for s in shape)):
            raise WireError(f"bad frame shape {shape!r} / dtype {head.get('dtype')!r}")
        buffer = _buffer(parts[1])
        if len(buffer) != shape[0] * shape[1] * 3:
            raise WireError(f"frame buffer holds {len(buffer)} bytes, shape {shape} needs {shape[0] * shape[1] * 3}")
        image = np.frombuffer(buffer, np.uint8).reshape(shape)
    elif head["kind"] == "frame":
        raise WireError("a frame message without its buffer")
    return Message(head, image, packed)


def require(head: dict, **types) -> None:
    """Check that ``head`` has each named field, of the given type(s) (e.g. ``pts=(int, float)``).

    Raises:
        WireError: a field is missing or of another type.
    """
    for name, kind in types.items():
        if not isinstance(head.get(name), kind) or isinstance(head.get(name), bool):
            raise WireError(f"{head.get('kind')} message: field {name!r} missing or not {kind}")


def _buffer(part) -> memoryview:
    return memoryview(part.buffer if hasattr(part, "buffer") else part)
