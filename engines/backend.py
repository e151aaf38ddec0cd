"""Inference backends: one interface, ONNX Runtime behind it (CPU, CUDA or TensorRT providers),
and LiteRT for ``.tflite`` files (:mod:`posestream.engines.litert`, CPU only; :func:`open_backend`).

TensorRT runs through ONNX Runtime's TensorRT execution provider, which builds an engine from
the same ONNX file and caches it on disk (``trt_engine_cache_path``), so one model file serves
every device. The backend logs which provider is *really* active, because a silent fallback
to the CPU is the most common complaint about peer tools.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np

from posestream.engines.errors import ModelError, ModelSignatureError

log = logging.getLogger(__name__)

#: Devices a user may ask for, and the ONNX Runtime providers each one tries, in order.
DEVICES = ("auto", "cpu", "cuda", "tensorrt")

#: Runtimes a model file can be opened on: ONNX Runtime (``.onnx``) and LiteRT (``.tflite``,
#: :mod:`posestream.engines.litert`, needs the ``ai-edge-litert`` package).
RUNTIMES = ("onnxruntime", "litert")

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one model input or output.

    ``shape`` holds ints for fixed dimensions and ``None`` for dynamic ones.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: type

    def describe(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}[{dims}] {np.dtype(self.dtype).name}"


class InferenceBackend(Protocol):
    """What every backend offers: its tensor signatures and a run call.

    ``provider`` says what really runs the model (``CPUExecutionProvider``,
    ``CUDAExecutionProvider``, ``LiteRT-CPU``…); ``name`` labels it in log lines and errors.
    """

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    provider: str
    name: str

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> list[np.ndarray]:
        """Run the model on ``feeds`` and return the outputs in ``output_names`` order."""


def _spec(node) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in node.shape)
    dtype = _ORT_DTYPES.get(node.type)
    if dtype is None:
        raise ModelSignatureError(f"unsupported tensor type {node.type} for {node.name}")
    return TensorSpec(node.name, shape, dtype)


def providers_for(device: str, cache_dir: Path | None = None) -> list:
    """Return the ONNX Runtime provider list to try for ``device`` (one of :data:`DEVICES`).

    ``auto`` prefers CUDA when the installed onnxruntime offers it, else the CPU; TensorRT must
    be asked for (its first engine build takes minutes; later runs load the cached engine).

    Raises:
        ValueError: unknown device.
        ModelError: the device needs a provider this onnxruntime build lacks.
    """
    import onnxruntime as ort

    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    available = set(ort.get_available_providers())
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "auto":
        return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []) + ["CPUExecutionProvider"]
    wanted = "CUDAExecutionProvider" if device == "cuda" else "TensorrtExecutionProvider"
    if wanted not in available:
        raise ModelError(
            f"device {device!r} needs {wanted}, which this onnxruntime lacks "
            f"(available: {', '.join(sorted(available))}); install posestream[gpu]"
        )
    if device == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    trt_options = {"trt_fp16_enable": True, "trt_engine_cache_enable": True}
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        trt_options["trt_engine_cache_path"] = str(cache_dir)
    return [("TensorrtExecutionProvider", trt_options), "CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxRuntimeBackend:
    """An ONNX model on ONNX Runtime.

    Args:
        model: path to an ``.onnx`` file, or the serialized model bytes.
        device: one of :data:`DEVICES`.
        threads: intra-op threads (0 = ONNX Runtime's default, one per core).
        name: a label for log lines and errors (defaults to the file name).
        trt_cache_dir: where TensorRT engines are cached (device ``tensorrt`` only).

    Raises:
        ModelError: the file is missing, is not a loadable ONNX model, or the device's provider
            is not installed.
    """

    def __init__(self, model: str | Path | bytes, device: str = "auto", threads: int = 0,
                 name: str | None = None, trt_cache_dir: Path | None = None):
        import onnxruntime as ort

        self.name = name or (Path(model).name if not isinstance(model, bytes) else "<in-memory model>")
        if not isinstance(model, bytes):
            model = Path(model)
            if not model.is_file():
                raise ModelError(f"{self.name}: model file not found: {model}")
            model = str(model)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        # Idle worker threads must not spin: the detector's and the pose model's thread pools
        # take turns on the same cores every frame, and spinning doubled the detector's time.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = providers_for(device, trt_cache_dir)
        try:
            self.session = ort.InferenceSession(model, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/InvalidProtobuf types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.name}: not a loadable ONNX model ({first})") from exc
        active = self.session.get_providers()
        self.provider = active[0]
        requested = providers[0] if isinstance(providers[0], str) else providers[0][0]
        if self.provider != requested:
            log.warning("%s: asked for %s but ONNX Runtime runs it on %s", self.name, requested, self.provider)
        else:
            log.info("%s: running on %s", self.name, self.provider)
        self.inputs = tuple(_spec(i) for i in self.session.get_inputs())
        self.outputs = tuple(_spec(o) for o in self.session.get_outputs())

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Check ``feeds`` against the model's inputs (:func:`check_feeds`).

        Raises:
            ModelSignatureError: a missing or unknown input name, wrong rank, a fixed dimension
                that differs, or a wrong dtype.
        """
        check_feeds(self.name, self.inputs, feeds)

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> list[np.ndarray]:
        """Validate ``feeds`` and run the model.

        Returns:
            The requested outputs (all of them when ``output_names`` is None), as numpy arrays.

        Raises:
            ModelSignatureError: see :meth:`check_feeds`.
        """
        self.check_feeds(feeds)
        return self.session.run(list(output_names) if output_names else None, dict(feeds))


def check_feeds(name: str, inputs: Sequence[TensorSpec], feeds: Mapping[str, np.ndarray]) -> None:
    """Check ``feeds`` against a model's ``inputs``; raise one message naming every mismatch.

    Args:
        name: the model's label, for the message.
        inputs: the model's input signatures (``None`` dimensions match any size).
        feeds: input name -> array.

    Raises:
        ModelSignatureError: a missing or unknown input name, wrong rank, a fixed dimension
            that differs, or a wrong dtype.
    """
    problems = []
    expected = {s.name: s for s in inputs}
    for unknown in feeds.keys() - expected.keys():
        problems.append(f"unknown input {unknown!r}")
    for key, spec in expected.items():
        if key not in feeds:
            problems.append(f"missing input {spec.describe()}")
            continue
        array = feeds[key]
        if array.dtype != spec.dtype:
            problems.append(f"{key}: dtype {array.dtype} but the model wants {np.dtype(spec.dtype).name}")
        if array.ndim != len(spec.shape) or any(
            d is not None and d != a for d, a in zip(spec.shape, array.shape)
        ):
            problems.append(f"{key}: shape {list(array.shape)} but the model wants {spec.describe()}")
    if problems:
        raise ModelSignatureError(f"{name}: " + "; ".join(problems))


def open_backend(path: str | Path, runtime: str = "onnxruntime", device: str = "auto", threads: int = 0,
                 name: str | None = None, trt_cache_dir: Path | None = None,
                 keep_outputs: Sequence[str] = ()) -> InferenceBackend:
    """Open a model file on the runtime that loads it.

    Args:
        path: the model file (``.onnx`` for ONNX Runtime, ``.tflite`` for LiteRT).
        runtime: one of :data:`RUNTIMES` (:attr:`posestream.engines.zoo.ResolvedModel.runtime`).
        device: one of :data:`DEVICES`; LiteRT runs on the CPU whatever is asked (with a warning
            when a GPU device was asked for; see :class:`posestream.engines.litert.LiteRtBackend`).
        threads: intra-op threads (0 = one per core).
        name: label for log lines and errors.
        trt_cache_dir: TensorRT engine cache (ONNX Runtime, device ``tensorrt``).
        keep_outputs: LiteRT only: the only outputs to compute (empty: all);
            :attr:`posestream.engines.zoo.ResolvedModel.keep_outputs`.

    Raises:
        ValueError: unknown runtime or device.
        ModelError: the file cannot be loaded, or its runtime is not installed.
    """
    if runtime == "onnxruntime":
        return OnnxRuntimeBackend(path, device, threads, name=name, trt_cache_dir=trt_cache_dir)
    if runtime == "litert":
        from posestream.engines.litert import LiteRtBackend

        return LiteRtBackend(path, threads, name=name, device=device, keep_outputs=keep_outputs)
    raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")


def require_signature(backend: InferenceBackend, inputs: Mapping[str, tuple], outputs: Sequence[str]) -> None:
    """Check a backend's input names and ranks/fixed dims, and its output names, before use.

    Args:
        inputs: name -> expected shape; ints must match, ``None`` matches anything, and the
            tuple's length is the rank.
        outputs: names that must be among the model's outputs.

    Raises:
        ModelSignatureError: naming what the model has instead.
    """
    have_in = {s.name: s for s in backend.inputs}
    have_out = {s.name for s in backend.outputs}
    problems = []
    for name, shape in inputs.items():
        spec = have_in.get(name)
        if spec is None:
            problems.append(f"expected input {name!r}")
            continue
        if len(spec.shape) != len(shape) or any(
            want is not None and got is not None and want != got for want, got in zip(shape, spec.shape)
        ):
            dims = ",".join("?" if d is None else str(d) for d in shape)
            problems.append(f"input {name!r} should be [{dims}] but is {spec.describe()}")
    for name in outputs:
        if name not in have_out:
            problems.append(f"expected output {name!r}")
    if problems:
        got = ", ".join(s.describe() for s in backend.inputs) + " -> " + ", ".join(s.describe() for s in backend.outputs)
        raise ModelSignatureError(f"{getattr(backend, 'name', 'model')}: " + "; ".join(problems) + f" (model has {got})")
