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

Every field is checked at the socket, against this one schema, before a stage touches it
(:func:`decode`): frames and results carry ``frame_id`` (≥ 1), ``pts`` (finite), ``capture_ns``
and ``timings`` (stage → ms); a frame's optional ``seq`` (≥ 1), ``epoch``, ``fps``, ``dropped``,
``detect``, ``lossless`` and its detections (``bboxes`` [N, 4], ``bbox_scores`` [N], finite)
have their types and shapes; a result's ``result`` is a whole frame record
(:func:`posestream.stream.results.validate_record`, same ``frame_id``); an ``eos`` has
``last_frame_id`` (≥ 0) and optional ``epoch``/``last_seq``; a heartbeat names its ``stage``,
``pid``, ``state`` and integer ``counters``.

Inside the graph every message is *sealed*: a first part holding the run's random token
(passed to each stage through its private spec pipe), so that a process on the same host that
reaches a socket cannot inject a frame, an end-of-stream or a new capture epoch
(:func:`encode`/:func:`decode` with ``token``). Messages published to other programs are not sealed.

A message that does not decode, has the wrong version or token, or any field of the wrong
type or shape raises :class:`WireError`; stages count and drop such messages and never fail on them.
"""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

SCHEMA_VERSION = 1
KINDS = ("frame", "result", "eos", "heartbeat")


class WireError(ValueError):
    """A malformed message: undecodable, wrong schema version, or inconsistent."""


class ForgedMessage(WireError):
    """A message inside the graph that is not sealed with the run's token."""


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


def encode(head: dict, image: np.ndarray | None = None, token: bytes | None = None) -> list:
    """Multipart parts of a message: [the run's ``token`` (inside the graph),] the packed header,
    then the image buffer itself (no copy).

    Raises:
        ValueError: the image is not a C-contiguous (H, W, 3) uint8 array.
    """
    parts: list = [] if token is None else [token]
    if image is not None:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"frames are (H, W, 3) uint8, got {image.shape} {image.dtype}")
        image = np.ascontiguousarray(image)
        head = {**head, "shape": list(image.shape), "dtype": "uint8"}
    parts.append(msgpack.packb(head, use_bin_type=True))
    if image is not None:
        parts.append(memoryview(image).cast("B"))
    return parts


def decode(parts: list, token: bytes | None = None) -> Message:
    """Parse the parts of a received message (bytes or zmq Frames); with ``token``, the message
    must be sealed with it (first part, compared in constant time).

    Raises:
        WireError: see the module docstring.
    """
    if token is not None:
        if not parts or not hmac.compare_digest(bytes(_buffer(parts[0])), token):
            raise ForgedMessage("not sealed with this run's token (not a stage of this graph)")
        parts = parts[1:]
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
    if len(head["stream"]) > 256:
        raise WireError("stream id longer than 256 characters")
    _check_fields(head)
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


def _check_fields(head: dict) -> None:
    """Types, ranges and shapes of every field of the header's kind (module docstring)."""
    kind = head["kind"]
    optional = {name: kind_ for name, kind_ in (("epoch", int), ("seq", int), ("last_seq", int), ("dropped", int),
                                                ("fps", (int, float)), ("detect", bool), ("lossless", bool),
                                                ("result_ns", int)) if name in head}
    for name, types in optional.items():
        value = head[name]
        if not isinstance(value, types) or (types is not bool and isinstance(value, bool)):
            raise WireError(f"{kind} message: field {name!r} is not {types}")
        if types is not bool and (not math.isfinite(value) or value < 0):
            raise WireError(f"{kind} message: field {name!r} is {value!r}")
    if head.get("seq") == 0:
        raise WireError("seq 0 < 1")
    if kind in ("frame", "result"):
        require(head, frame_id=int, pts=(int, float), capture_ns=int, timings=dict)
        if head["frame_id"] < 1:
            raise WireError(f"frame_id {head['frame_id']} < 1")
        if not math.isfinite(head["pts"]):
            raise WireError(f"pts {head['pts']!r}")
        if not all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                   for k, v in head["timings"].items()):
            raise WireError("timings: expected stage name → milliseconds")
        if "bboxes" in head or "bbox_scores" in head:
            try:
                boxes = np.asarray(head.get("bboxes"), np.float64)
                scores = np.asarray(head.get("bbox_scores"), np.float64)
            except (TypeError, ValueError) as exc:
                raise WireError(f"detections are not numbers ({exc})") from None
            boxes = boxes.reshape(-1, 4) if boxes.size % 4 == 0 and boxes.ndim >= 1 else None
            if boxes is None or scores.ndim != 1 or len(scores) != len(boxes) or \
                    not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
                raise WireError("detections: expected bboxes [N, 4] and bbox_scores [N], finite")
    if kind == "result":
        from posestream.stream.results import validate_record

        try:
            validate_record(head.get("result"))
        except ValueError as exc:
            raise WireError(f"result: {exc}") from None
        if head["result"]["frame_id"] != head["frame_id"]:
            raise WireError("result: frame_id differs from the message's")
    elif kind == "eos":
        require(head, last_frame_id=int)
        if head["last_frame_id"] < 0:
            raise WireError(f"last_frame_id {head['last_frame_id']} < 0")
    elif kind == "heartbeat":
        require(head, stage=str, pid=int, state=str, counters=dict)
        if not all(isinstance(k, str) and isinstance(v, int) for k, v in head["counters"].items()):
            raise WireError("heartbeat counters: expected name → integer")
        if not isinstance(head.get("extra", {}), dict) or \
                not (head.get("busy") is None or isinstance(head.get("busy"), (int, float))):
            raise WireError("heartbeat: extra is not a map or busy not seconds")


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
