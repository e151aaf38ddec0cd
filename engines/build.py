"""Build a model wrapper from a zoo name or a model file, for any stage.

A stage passes its *families*: zoo family name → wrapper class. The zoo entry names the
family; for a file the zoo does not know, each class's ``matches(backend)`` looks at the
model's input and output names. A class may rewrite an ONNX model before use
(``prepare_model(backend, path) -> bytes | None``, e.g. BlazePose's dynamic batch); a
``.tflite`` model (LiteRT, :mod:`posestream.engines.litert`) is never rewritten.
This module knows no wrapper class itself: adding a model is one file in its stage's folder.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from .backend import OnnxRuntimeBackend, open_backend
from .errors import ModelSignatureError
from .zoo import ONNXRUNTIME, cache_folder, resolve_model

log = logging.getLogger(__name__)


def load_model(model: str, families: Mapping[str, type], role: str, device: str = "auto", threads: int = 0,
               **options: Any):
    """Resolve ``model`` (:func:`posestream.engines.zoo.resolve_model`), open it on the runtime
    that loads it (ONNX Runtime, or LiteRT for ``.tflite``) and wrap it in the class of its family.

    Args:
        model: zoo name or path of an ``.onnx`` file, MMDeploy SDK ``.zip`` or ``.tflite`` file.
        families: family name → wrapper class (``cls(backend, **options)``).
        role: what the caller needs, for messages (``person detector``).
        device: ``auto``, ``cpu``, ``cuda`` or ``tensorrt``.
        threads: intra-op threads of either runtime (0 = one per core).
        options: passed to the wrapper.

    Raises:
        posestream.engines.errors.ModelError and subclasses: missing file, wrong hash, a model
            of another role or of no known family; a model cache that cannot hold TensorRT
            engines (``CacheError``, device ``tensorrt``).
    """
    resolved = resolve_model(model)
    name = resolved.spec.name if resolved.spec else resolved.path.name
    trt_cache = cache_folder("tensorrt") if device == "tensorrt" else None  # only TensorRT caches engines
    backend = open_backend(resolved.path, resolved.runtime, device, threads, name=name, trt_cache_dir=trt_cache,
                           keep_outputs=resolved.keep_outputs)
    family = resolved.spec.family if resolved.spec else next(
        (key for key, cls in families.items() if cls.matches(backend)), None)
    if family not in families:
        raise ModelSignatureError(f"{backend.name}: not a {role} (looks like {family or 'an unknown model'}; "
                                  f"inputs {', '.join(s.describe() for s in backend.inputs)})")
    cls = families[family]
    rewritten = (cls.prepare_model(backend, resolved.path)
                 if resolved.runtime == ONNXRUNTIME and hasattr(cls, "prepare_model") else None)
    if rewritten is not None:
        backend = OnnxRuntimeBackend(rewritten, device, threads, name=name, trt_cache_dir=trt_cache)
    return cls(backend, **options)
