"""LiteRT (TensorFlow Lite) inference backend for ``.tflite`` files, CPU only.

It offers the interface of :class:`posestream.engines.backend.OnnxRuntimeBackend` (``inputs``,
``outputs``, ``provider``, ``name``, ``run``), so a model wrapper cannot tell which runtime it
is on. Needs the ``ai-edge-litert`` package (``from ai_edge_litert.interpreter import
Interpreter``); the float kernels run through LiteRT's default XNNPACK delegate.

Unused heads: a ``.tflite`` file computes every output on every call (BlazePose also
computes a 256×256 segmentation mask and 64×64×39 heatmaps nobody reads). Given
``keep_outputs``, the backend rewrites the model in memory (:func:`prune_outputs`) so that
only the operators those outputs need run, as :func:`posestream.stream.pose.batched_blazepose_graph`
does for the ONNX file: about 1.7× faster for BlazePose, outputs bit-identical.

Batch: MediaPipe's ``.tflite`` files have batch 1 baked into their input. This backend reports
the batch dimension as dynamic (``None``) and runs a batch of N crops in one invoke, after
resizing the input tensors to [N, …] (``resize_tensor_input`` + ``allocate_tensors``) when N
differs from the previous call's. Measured on BlazePose full, 2 threads, 2 cores: per crop the
same as looping over the crops at N = 1 and about 15 % faster at N = 2…5; resizing costs
8–20 ms only the first time a batch larger than any before is seen (the arena grows), and
~0.2 ms after that (shrinking, or a size seen before).

Output names: ``tf2onnx`` names an ONNX model's outputs after the ``.tflite``'s output tensor
names, which for MediaPipe's files are the TensorFlow SavedModel signature names ``Identity``,
``Identity_1``, …, in output order. So the names the ``.tflite`` has are kept when they all
have that form; when they do not (files exported with other names, such as older MediaPipe
releases' ``ld_3d``, ``output_poseflag``), output *k* is named ``Identity`` (k = 0) or
``Identity_k`` by its position, as ``tf2onnx`` would have named it, and its own name stays
accepted by :meth:`LiteRtBackend.run`. ``tests/test_backend.py`` checks on the real BlazePose
file that each name gives the ONNX model's output of that name (shape, and values within
1e-3 px).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from posestream.engines.backend import DEVICES, TensorSpec, check_feeds
from posestream.engines.errors import ModelError, ModelSignatureError

log = logging.getLogger(__name__)

#: What :attr:`LiteRtBackend.provider` says.
PROVIDER = "LiteRT-CPU"

_SIGNATURE_NAME = re.compile(r"Identity(_\d+)?")


def litert_available() -> bool:
    """Whether the ``ai-edge-litert`` package can be imported."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def default_threads() -> int:
    """The cores this process may run on (``os.sched_getaffinity`` where there is one, else
    ``os.cpu_count()``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def prune_outputs(content: bytes, keep: Sequence[int]) -> bytes:
    """Rewrite a ``.tflite`` model so that it computes only some of its outputs.

    Args:
        content: the ``.tflite`` flatbuffer (one subgraph).
        keep: positions, in the subgraph's output list, of the outputs to keep (in this order).

    Returns:
        The model with only those outputs and the operators they depend on (tensors and weight
        buffers are left in place, unused).

    Raises:
        ValueError: a model with several subgraphs (control flow), or a position out of range.
        ImportError: the installed LiteRT lacks its flatbuffer schema module.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    if len(model.subgraphs) != 1:
        raise ValueError(f"{len(model.subgraphs)} subgraphs; only single-subgraph models are pruned")
    graph = model.subgraphs[0]
    outputs = list(graph.outputs)
    if any(not 0 <= k < len(outputs) for k in keep):
        raise ValueError(f"output positions {list(keep)} out of range (the model has {len(outputs)})")
    producer = {t: k for k, op in enumerate(graph.operators) for t in op.outputs}
    needed: set[int] = set()
    pending = [outputs[k] for k in keep]
    seen: set[int] = set()
    while pending:  # walk back from the kept outputs to every operator they depend on
        tensor = pending.pop()
        if tensor < 0 or tensor in seen:  # -1: an optional input left empty
            continue
        seen.add(tensor)
        op = producer.get(tensor)
        if op is not None and op not in needed:
            needed.add(op)
            pending.extend(graph.operators[op].inputs)
    graph.operators = [op for k, op in enumerate(graph.operators) if k in needed]  # order kept: still topological
    graph.outputs = [outputs[k] for k in keep]
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def output_names(tflite_names: Sequence[str]) -> list[str]:
    """The names the backend gives a ``.tflite``'s outputs (module docstring): the file's own
    names when every one is a distinct ``Identity``/``Identity_k``, else by position
    (``Identity``, ``Identity_1``, …)."""
    names = list(tflite_names)
    if len(set(names)) == len(names) and all(_SIGNATURE_NAME.fullmatch(n) for n in names):
        return names
    return ["Identity" if k == 0 else f"Identity_{k}" for k in range(len(names))]


class LiteRtBackend:
    """A ``.tflite`` model on the LiteRT interpreter (CPU, XNNPACK).

    Args:
        model: path to a ``.tflite`` file, or its bytes.
        threads: interpreter threads (0 = :func:`default_threads`, one per core).
        name: a label for log lines and errors (defaults to the file name).
        device: one of :data:`posestream.engines.backend.DEVICES`; LiteRT here runs on the CPU
            only, so ``cuda`` and ``tensorrt`` log a warning (never a silent fallback) and run
            on the CPU.
        keep_outputs: names (as :attr:`outputs` gives them) of the only outputs to compute
            (:func:`prune_outputs`); empty: all. Where the model cannot be pruned (several
            subgraphs, a LiteRT without its schema module) it runs whole, with a log line.

    Attributes:
        inputs: one :class:`TensorSpec` per input, batch dimension ``None`` (dynamic).
        outputs: one :class:`TensorSpec` per output, batch ``None``, named as the module
            docstring says.
        provider: ``"LiteRT-CPU"``.
        threads: the thread count in use.

    Raises:
        ModelError: ``ai-edge-litert`` is not installed, the file is missing or is not a
            loadable ``.tflite`` model.
        ModelSignatureError: a name in ``keep_outputs`` that the model does not have.
        ValueError: unknown device.
    """

    def __init__(self, model: str | Path | bytes, threads: int = 0, name: str | None = None,
                 device: str = "cpu", keep_outputs: Sequence[str] = ()):
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
        self.name = name or (Path(model).name if not isinstance(model, bytes) else "<in-memory model>")
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError as exc:
            raise ModelError(
                f"{self.name}: a .tflite model needs LiteRT, which is not installed (pip install ai-edge-litert), "
                "or put the model's .onnx file in a folder named by POSESTREAM_MODEL_DIR") from exc
        if not isinstance(model, bytes):
            path = Path(model)
            if not path.is_file():
                raise ModelError(f"{self.name}: model file not found: {path}")
            model = path.read_bytes()
        self.threads = threads or default_threads()
        self._interpreter = self._load(model, allocate=not keep_outputs)
        names = output_names([d["name"] for d in self._interpreter.get_output_details()])
        if keep_outputs:
            unknown = [n for n in keep_outputs if n not in names]
            if unknown:
                raise ModelSignatureError(f"{self.name}: no output {', '.join(map(repr, unknown))} to keep "
                                          f"(outputs: {', '.join(names)})")
            try:
                pruned = prune_outputs(model, [names.index(n) for n in keep_outputs])
            except (ValueError, ImportError) as exc:
                log.info("%s: runs every output (cannot prune: %s)", self.name, exc)
                self._interpreter = self._load(model)
            else:
                full = {d["index"]: n for n, d in zip(names, self._interpreter.get_output_details())}
                self._interpreter = self._load(pruned)
                names = [full[d["index"]] for d in self._interpreter.get_output_details()]  # same tensor ids
        self.provider = PROVIDER
        if device in ("cuda", "tensorrt"):
            log.warning("%s: asked for %s but LiteRT runs this .tflite model on the CPU (%d threads); "
                        "put its .onnx file in POSESTREAM_MODEL_DIR to run it on the GPU",
                        self.name, device, self.threads)
        else:
            log.info("%s: running on %s (%d threads)", self.name, self.provider, self.threads)

        in_details = self._interpreter.get_input_details()
        out_details = self._interpreter.get_output_details()
        self._in_index = {d["name"]: d["index"] for d in in_details}
        self._in_shape = {d["name"]: tuple(int(v) for v in d["shape"]) for d in in_details}
        self._out_index = {n: d["index"] for n, d in zip(names, out_details)}
        self._aliases = {d["name"]: n for n, d in zip(names, out_details) if d["name"] != n}
        if self._aliases:
            log.info("%s: outputs named by position: %s", self.name,
                     ", ".join(f"{old} -> {new}" for old, new in self._aliases.items()))
        self.inputs = tuple(self._spec(d["name"], d) for d in in_details)
        self.outputs = tuple(self._spec(n, d) for n, d in zip(names, out_details))
        # the batch the interpreter's tensors are allocated for: the file's own, at first
        self._batch = in_details[0]["shape"][0] if in_details and len(in_details[0]["shape"]) else 1
        self._lock = threading.Lock()  # one interpreter: one invoke at a time

    def _load(self, content: bytes, allocate: bool = True):
        """An interpreter with its tensors allocated for batch 1 (or, with ``allocate`` False, one
        only to read the model's signature from: no delegate, nothing allocated).

        Raises:
            ModelError: not a loadable ``.tflite`` model.
        """
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        try:
            if not allocate:
                return Interpreter(model_content=content, num_threads=1,
                                   experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            interpreter = Interpreter(model_content=content, num_threads=self.threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.name}: not a loadable .tflite model ({first})") from exc
        return interpreter

    @staticmethod
    def _spec(name: str, detail: Mapping) -> TensorSpec:
        """The tensor's signature with the batch dimension dynamic (``None``)."""
        shape = tuple(int(v) if v > 0 else None for v in detail.get("shape_signature", detail["shape"]))
        return TensorSpec(name, (None, *shape[1:]) if shape else shape, np.dtype(detail["dtype"]).type)

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Check ``feeds`` against the inputs (:func:`posestream.engines.backend.check_feeds`).

        Raises:
            ModelSignatureError: a missing or unknown input, wrong rank, fixed dimension or dtype,
                or inputs of different batch sizes.
        """
        check_feeds(self.name, self.inputs, feeds)
        if len({len(a) for a in feeds.values()}) > 1:
            sizes = ", ".join(f"{k}: {len(a)}" for k, a in feeds.items())
            raise ModelSignatureError(f"{self.name}: inputs of different batch sizes ({sizes})")

    def _resolve_outputs(self, output_names: Sequence[str] | None) -> list[int]:
        if not output_names:
            return list(self._out_index.values())
        indices, unknown = [], []
        for requested in output_names:
            key = self._aliases.get(requested, requested)
            if key in self._out_index:
                indices.append(self._out_index[key])
            else:
                unknown.append(requested)
        if unknown:
            raise ModelSignatureError(f"{self.name}: unknown output {', '.join(map(repr, unknown))} "
                                      f"(model has {', '.join(s.describe() for s in self.outputs)})")
        return indices

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> list[np.ndarray]:
        """Validate ``feeds`` and run the model.

        Args:
            feeds: input name -> array of shape [B, …] (B ≥ 0, the same for every input).
            output_names: outputs to return, by the names of :attr:`outputs` (or the file's own
                names); None for all.

        Returns:
            The requested outputs, each [B, …], as new numpy arrays.

        Raises:
            ModelSignatureError: see :meth:`check_feeds`; an unknown output name.
        """
        self.check_feeds(feeds)
        indices = self._resolve_outputs(output_names)
        batch = len(next(iter(feeds.values()))) if feeds else 1
        with self._lock:
            return self._run_batch(feeds, indices, batch)

    def _empty(self, indices: list[int]) -> list[np.ndarray]:
        """Zero-length outputs ([0, …]) for an empty batch."""
        details = {d["index"]: d for d in self._interpreter.get_output_details()}
        return [np.zeros((0, *details[i]["shape"][1:]), details[i]["dtype"]) for i in indices]

    def _run_batch(self, feeds: Mapping[str, np.ndarray], indices: list[int], batch: int) -> list[np.ndarray]:
        """One invoke on the whole batch, the input tensors resized to it first when it differs
        from the last call's (caller holds the lock)."""
        if batch == 0:
            return self._empty(indices)
        interp = self._interpreter
        if batch != self._batch:
            for key, index in self._in_index.items():
                interp.resize_tensor_input(index, [batch, *self._in_shape[key][1:]])
            interp.allocate_tensors()
            self._batch = batch
        for key, array in feeds.items():
            interp.set_tensor(self._in_index[key], np.ascontiguousarray(array))
        interp.invoke()
        return [interp.get_tensor(k) for k in indices]

