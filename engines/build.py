"""Build detectors and keypoint estimators from a zoo name or a model file.

The wrapper class comes from the zoo entry's family; for a file the zoo does not know, it is
inferred from the model's input and output names (YOLOX: ``images``→``output``; RTMDet:
``dets``/``labels``; RTMPose: ``simcc_x``/``simcc_y``; BlazePose: ``input_1``→``Identity``).
"""

from __future__ import annotations

import logging

from .backend import OnnxRuntimeBackend
from .detectors import RTMDet, YOLOX
from .errors import ModelSignatureError
from .keypoints import BlazePoseLandmark, RTMPose, batched_blazepose_graph
from .zoo import ResolvedModel, cache_dir, resolve_model

log = logging.getLogger(__name__)

DETECTOR_FAMILIES = {"yolox": YOLOX, "rtmdet": RTMDet}
POSE_FAMILIES = {"rtmpose": RTMPose, "blazepose": BlazePoseLandmark}


def _family(backend: OnnxRuntimeBackend) -> str | None:
    ins = {s.name for s in backend.inputs}
    outs = {s.name for s in backend.outputs}
    if "images" in ins and "output" in outs:
        return "yolox"
    if {"dets", "labels"} <= outs:
        return "rtmdet"
    if {"simcc_x", "simcc_y"} <= outs:
        return "rtmpose"
    if "input_1" in ins and "Identity" in outs:
        return "blazepose"
    return None


def _backend(resolved: ResolvedModel, device: str, threads: int) -> tuple[OnnxRuntimeBackend, str | None]:
    family = resolved.spec.family if resolved.spec else None
    name = resolved.spec.name if resolved.spec else resolved.onnx_path.name
    trt_cache = cache_dir() / "tensorrt"
    backend = OnnxRuntimeBackend(resolved.onnx_path, device, threads, name=name, trt_cache_dir=trt_cache)
    family = family or _family(backend)
    if family == "blazepose" and backend.inputs[0].shape[0] == 1:
        # rebuild with a dynamic batch so that all crops of a frame go in one call
        backend = OnnxRuntimeBackend(batched_blazepose_graph(resolved.onnx_path), device, threads,
                                     name=name, trt_cache_dir=trt_cache)
    return backend, family


def _load(model: str, families: dict, role: str, device: str, threads: int, options: dict):
    resolved = resolve_model(model)
    backend, family = _backend(resolved, device, threads)
    if family not in families:
        raise ModelSignatureError(f"{backend.name}: not a {role} (looks like {family or 'an unknown model'}; "
                                  f"inputs {', '.join(s.describe() for s in backend.inputs)})")
    return families[family](backend, **options)


def load_detector(model: str, device: str = "auto", threads: int = 0, **options):
    """Load a person detector by zoo name (``yolox-nano``, ``rtmdet-nano``…) or path.

    Args:
        model: zoo name or path (see :func:`engines.zoo.resolve_model`).
        device: ``auto``, ``cpu``, ``cuda`` or ``tensorrt``.
        threads: ONNX Runtime intra-op threads (0 = default).
        options: passed to the wrapper (``score_threshold``, ``iou_threshold``…).

    Returns:
        A :class:`~engines.detectors.YOLOX` or :class:`~engines.detectors.RTMDet`.

    Raises:
        ModelError and subclasses: missing file, wrong hash, not a detector model.
    """
    return _load(model, DETECTOR_FAMILIES, "person detector", device, threads, options)


def load_pose_estimator(model: str, device: str = "auto", threads: int = 0, **options):
    """Load a top-down keypoint estimator by zoo name (``rtmpose-m``, ``blazepose-full``…) or path.

    Args: as :func:`load_detector`; options go to the wrapper (``refine`` for BlazePose).

    Returns:
        A :class:`~engines.keypoints.RTMPose` or :class:`~engines.keypoints.BlazePoseLandmark`.

    Raises:
        ModelError and subclasses: missing file, wrong hash, not a keypoint model.
    """
    return _load(model, POSE_FAMILIES, "keypoint model", device, threads, options)
