"""The detect stage: person boxes in a frame.

One file per model family (:mod:`.yolox`, :mod:`.rtmdet`); each class is a callable
``Detections = detector(image)`` on a BGR uint8 image. Adding a detector is one file here and
a line in :data:`FAMILIES` (plus a zoo entry, :mod:`posestream.engines.zoo`, for a download).
"""

from __future__ import annotations

from posestream.engines.build import load_model

from .detections import Detections, nms
from .rtmdet import RTMDet
from .yolox import YOLOX

#: zoo family → wrapper class.
FAMILIES = {"yolox": YOLOX, "rtmdet": RTMDet}


def load_detector(model: str, device: str = "auto", threads: int = 0, **options):
    """Load a person detector by zoo name (``yolox-nano``, ``rtmdet-nano``…) or path.

    Args:
        model: zoo name or path (see :func:`posestream.engines.zoo.resolve_model`).
        device: ``auto``, ``cpu``, ``cuda`` or ``tensorrt``.
        threads: ONNX Runtime intra-op threads (0 = default).
        options: passed to the wrapper (``score_threshold``, ``iou_threshold``, ``max_detections``).

    Returns:
        A :class:`YOLOX` or :class:`RTMDet`.

    Raises:
        posestream.engines.errors.ModelError and subclasses: missing file, wrong hash, not a detector.
    """
    return load_model(model, FAMILIES, "person detector", device, threads, **options)


__all__ = ["Detections", "FAMILIES", "RTMDet", "YOLOX", "load_detector", "nms"]
