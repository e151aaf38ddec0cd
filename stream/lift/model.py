"""The 2D→3D lifter at run time: VideoPose3D's temporal convolution network in NumPy, one frame at a time.

The network is VideoPose3D's (Pavllo et al., "3D human pose estimation in video with temporal
convolutions and semi-supervised training", CVPR 2019; ``common/model.py``, ``TemporalModel``).
Block ``i`` (1-based) is a convolution of width ``filter_widths[i]`` dilated by the product of the
widths before it, batch norm, ReLU, then a 1×1 convolution, batch norm, ReLU, added to the
block's input (the residual is cut at the window's centre, or at its newest frame when causal).
The receptive field is the product of the widths (27, 81, 243 for 3, 4, 5 widths of 3).
Input: keypoints normalised by :func:`normalize_screen_coordinates`; output: camera-space
positions relative to the root joint, metres (H36M axes: x right, y down, z forward).

This module holds no training code and imports no torch: the PyTorch network (training,
fine-tuning, reading VideoPose3D's ``.bin``) is :mod:`posestream.offline.lifter_model`, which
writes the file this module reads.

**File format** ``posestream-lifter/1``: a safetensors file whose tensors carry VideoPose3D's
state-dict names and shapes (``C`` channels, ``w_i`` the filter widths, ``J`` joints)::

    expand_conv.weight                    (C, J_in·in_features, w_0)
    expand_bn.{weight,bias,running_mean,running_var}            (C,)
    layers_conv.{2i}.weight               (C, C, w_{i+1})   dilated convolution of block i
    layers_conv.{2i+1}.weight             (C, C, 1)         its 1×1 convolution
    layers_bn.{2i}.*, layers_bn.{2i+1}.*  (C,)              their batch norms (as expand_bn)
    shrink.weight (J_out·3, C, 1), shrink.bias (J_out·3,)

float32 (float16/float64 are read and cast), no ``num_batches_tracked``; batch norm is
evaluated with torch's default eps, 1e-5. Its string metadata: ``format`` =
``posestream-lifter/1``, ``architecture`` = JSON of :class:`LifterArchitecture` (``filter_widths``
a list), and optionally ``metrics``, ``command``, ``steps`` (each a JSON value: how the weights
were made and scored). Reading it never unpickles anything. PyTorch checkpoints (``.pt``, ``.bin``)
are converted once with ``posestream convert-lifter`` (needs torch).

:class:`StreamingTemporalModel` runs the network one frame at a time with a ring buffer per layer,
so each frame costs one output per layer whatever the receptive field; its outputs equal those
of the whole network over the sequence padded as VideoPose3D pads it (the first and last frames
repeated). Causal models answer for the frame just given; symmetric ones ``delay`` =
(receptive field − 1) / 2 frames later.
"""

from __future__ import annotations

import json
import shlex
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from posestream.engines.errors import ModelError, ModelNotFoundError, ModelSignatureError
from posestream.engines.files import atomic_output

#: The ``format`` metadata value of a lifter file.
LIFTER_FORMAT = "posestream-lifter/1"

#: Batch-norm epsilon of VideoPose3D's layers (torch.nn.BatchNorm1d's default).
BN_EPS = 1e-5

#: Architecture fields that fix the weights or the outputs (``dropout`` only matters in training).
_COMPARED_FIELDS = ("joints_in", "joints_out", "filter_widths", "causal", "channels", "in_features")

#: Suffixes of PyTorch checkpoints (ours were ``.pt``; VideoPose3D releases ``.bin``).
_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")

_BN_PARTS = ("weight", "bias", "running_mean", "running_var")
_FLOAT_DTYPES = ("F16", "F32", "F64")


def normalize_screen_coordinates(keypoints: np.ndarray, width: float, height: float) -> np.ndarray:
    """VideoPose3D's 2D normalisation: ``X / w * 2 - [1, h / w]``.

    Args:
        keypoints: (..., 2) pixels, x right, y down.
        width, height: image size, pixels.

    Returns:
        float32 array of the same shape: x in [-1, 1] across the image, y scaled alike (aspect kept).
    """
    keypoints = np.asarray(keypoints, np.float32)
    return keypoints / np.float32(width) * 2 - np.array([1, height / width], np.float32)


@dataclass(frozen=True)
class LifterArchitecture:
    """Everything that fixes a lifter's parameters and behaviour.

    Attributes:
        joints_in: 2D keypoints per frame (17 for COCO-17; RunningPose-style sets with feet use more).
        joints_out: 3D joints per frame (17 for H36M-17).
        filter_widths: temporal kernel width per layer (odd); the receptive field is their product.
        causal: outputs look only at the past (True) or are centred on their frame (False).
        channels: feature channels of every layer (VideoPose3D uses 1024).
        dropout: dropout probability while training (not used at run time).
        in_features: values per input keypoint (2: x, y).

    Raises:
        ValueError: even or non-positive widths, non-positive joint or channel counts.
    """

    joints_in: int = 17
    joints_out: int = 17
    filter_widths: tuple[int, ...] = (3, 3, 3)
    causal: bool = True
    channels: int = 256
    dropout: float = 0.25
    in_features: int = 2

    def __post_init__(self):
        object.__setattr__(self, "filter_widths", tuple(int(w) for w in self.filter_widths))
        if not self.filter_widths or any(w < 1 or w % 2 == 0 for w in self.filter_widths):
            raise ValueError(f"filter widths must be odd and positive, got {self.filter_widths}")
        if self.joints_in < 1 or self.joints_out < 1 or self.channels < 1 or self.in_features < 1:
            raise ValueError("joints_in, joints_out, channels and in_features must be positive")

    @property
    def receptive_field(self) -> int:
        """Input frames that one output sees."""
        return int(np.prod(self.filter_widths))

    @property
    def delay(self) -> int:
        """Frames between an input and its output in a stream: 0 causal, (RF − 1) / 2 symmetric."""
        return 0 if self.causal else (self.receptive_field - 1) // 2

    @property
    def dilations(self) -> tuple[int, ...]:
        """Dilation of each layer's convolution: 1, then the running product of the widths."""
        return tuple(int(np.prod(self.filter_widths[:i])) for i in range(len(self.filter_widths)))

    def to_json(self) -> str:
        """The ``architecture`` metadata string of a lifter file."""
        values = asdict(self)
        values["filter_widths"] = list(self.filter_widths)
        return json.dumps(values, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "LifterArchitecture":
        """Inverse of :meth:`to_json`; every field but ``dropout`` must be present.

        Raises:
            ValueError: not JSON, a missing or unknown field, a refused value.
        """
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError(f"expected a JSON object, got {type(values).__name__}")
        missing = [k for k in _COMPARED_FIELDS if k not in values]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")

        def integer(v):
            return isinstance(v, int) and not isinstance(v, bool)

        wrong = [k for k in ("joints_in", "joints_out", "channels", "in_features") if not integer(values[k])]
        if not isinstance(values["filter_widths"], list) or not all(integer(w) for w in values["filter_widths"]):
            wrong.append("filter_widths")
        if not isinstance(values["causal"], bool):
            wrong.append("causal")
        if "dropout" in values and (isinstance(values["dropout"], bool) or not isinstance(values["dropout"], (int, float))):
            wrong.append("dropout")
        if wrong:
            raise ValueError(f"wrong type of {', '.join(wrong)}")
        try:
            return cls(**values)
        except TypeError as exc:  # unknown field
            raise ValueError(str(exc)) from exc


def lifter_tensor_shapes(architecture: LifterArchitecture) -> dict[str, tuple[int, ...]]:
    """The tensors of a lifter with ``architecture``: VideoPose3D's state-dict names → shapes
    (``num_batches_tracked`` excluded)."""
    a, c = architecture, architecture.channels
    shapes = {"expand_conv.weight": (c, a.joints_in * a.in_features, a.filter_widths[0])}
    shapes.update({f"expand_bn.{p}": (c,) for p in _BN_PARTS})
    for block, width in enumerate(a.filter_widths[1:]):
        shapes[f"layers_conv.{2 * block}.weight"] = (c, c, width)
        shapes[f"layers_conv.{2 * block + 1}.weight"] = (c, c, 1)
        for layer in (2 * block, 2 * block + 1):
            shapes.update({f"layers_bn.{layer}.{p}": (c,) for p in _BN_PARTS})
    shapes["shrink.weight"] = (a.joints_out * 3, c, 1)
    shapes["shrink.bias"] = (a.joints_out * 3,)
    return shapes


def _weight_problems(architecture: LifterArchitecture, shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """What keeps tensors of these shapes from being a lifter of ``architecture`` (empty: nothing)."""
    expected = lifter_tensor_shapes(architecture)
    present = {k: tuple(v) for k, v in shapes.items() if not k.endswith(".num_batches_tracked")}
    problems = [f"missing {k}" for k in expected if k not in present]
    problems += [f"unexpected {k}" for k in present if k not in expected]
    problems += [f"{k}: file {present[k]} vs architecture {v}" for k, v in expected.items()
                 if k in present and present[k] != v]
    return problems


def _describe_problems(problems: list[str]) -> str:
    shown = "; ".join(problems[:10])
    return shown + (f"; … ({len(problems) - 10} more)" if len(problems) > 10 else "")


@dataclass(frozen=True, eq=False)
class Lifter:
    """A trained lifter's weights, as :func:`load_lifter` reads them and
    :class:`StreamingTemporalModel` runs them.

    Attributes:
        architecture: :class:`LifterArchitecture`.
        weights: VideoPose3D's state-dict names → float32 arrays (see the module docstring for
            the shapes); ``num_batches_tracked`` entries are dropped.
        metadata: the file's optional metadata, JSON-decoded (``metrics``, ``command``, ``steps``).
        path: the file it was read from, if any.

    Raises:
        ModelSignatureError: a missing or unexpected tensor, or a wrong shape (each key named).
    """

    architecture: LifterArchitecture
    weights: Mapping[str, np.ndarray]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self):
        arrays = {k: np.asarray(v) for k, v in self.weights.items() if not k.endswith(".num_batches_tracked")}
        problems = _weight_problems(self.architecture, {k: v.shape for k, v in arrays.items()})
        problems += [f"{k}: dtype {v.dtype} is not floating point" for k, v in arrays.items()
                     if not np.issubdtype(v.dtype, np.floating)]
        if problems:
            where = f"{self.path}: " if self.path is not None else ""
            raise ModelSignatureError(f"{where}weights do not fit {self.architecture}: {_describe_problems(problems)}")
        object.__setattr__(self, "weights", {k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()})
        object.__setattr__(self, "metadata", dict(self.metadata))


def _conversion_hint(path: Path) -> str:
    out = path.with_suffix(".converted.safetensors" if path.suffix == ".safetensors" else ".safetensors")
    return (f"{path}: a PyTorch checkpoint, which the runtime does not read (it reads safetensors lifters, "
            f"without torch); convert it once: posestream convert-lifter {shlex.quote(str(path))} "
            f"--out {shlex.quote(str(out))} [--symmetric]  (--symmetric for a centred model such as "
            f"VideoPose3D's releases, whose files do not say)")


def _looks_like_torch(path: Path) -> bool:
    if path.suffix.lower() in _TORCH_SUFFIXES:
        return True
    with open(path, "rb") as handle:
        head = handle.read(2)
    # torch.save: a zip archive (torch >= 1.6) or a bare pickle (protocol 2-5) before that
    return head == b"PK" or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def _read(path: Path, architecture: LifterArchitecture | None, weights: bool):
    """Check ``path`` (header, architecture, tensor names, shapes and dtypes) and return
    (declared architecture, decoded optional metadata, the tensors or None)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise ModelNotFoundError(f"lifter checkpoint not found: {path}")
    try:
        handle = safe_open(str(path), framework="np")
    except (SafetensorError, OSError, ValueError) as exc:
        if _looks_like_torch(path):
            raise ModelError(_conversion_hint(path)) from exc
        raise ModelError(f"{path}: not a safetensors lifter file ({exc})") from exc
    with handle:
        metadata = dict(handle.metadata() or {})
        if metadata.get("format") != LIFTER_FORMAT:
            raise ModelError(f"{path}: a safetensors file but not a posestream lifter "
                             f"(metadata format {metadata.get('format')!r}, expected {LIFTER_FORMAT!r})")
        try:
            declared = LifterArchitecture.from_json(metadata.get("architecture", ""))
        except ValueError as exc:
            raise ModelSignatureError(f"{path}: bad 'architecture' metadata "
                                      f"{metadata.get('architecture')!r} ({exc})") from exc
        if architecture is not None:
            differences = [f"{k}: file {getattr(declared, k)!r} vs expected {getattr(architecture, k)!r}"
                           for k in _COMPARED_FIELDS if getattr(declared, k) != getattr(architecture, k)]
            if differences:
                raise ModelSignatureError(f"{path}: lifter architecture differs: " + "; ".join(differences))
        keys = [k for k in handle.keys() if not k.endswith(".num_batches_tracked")]
        slices = {k: handle.get_slice(k) for k in keys}
        problems = _weight_problems(declared, {k: tuple(s.get_shape()) for k, s in slices.items()})
        problems += [f"{k}: dtype {s.get_dtype()} is not F16, F32 or F64" for k, s in slices.items()
                     if s.get_dtype() not in _FLOAT_DTYPES]
        if problems:
            raise ModelSignatureError(f"{path}: weights do not fit {declared}: {_describe_problems(problems)}")
        tensors = {k: handle.get_tensor(k) for k in keys} if weights else None
    extra = {}
    for key, value in metadata.items():
        if key not in ("format", "architecture"):
            try:
                extra[key] = json.loads(value)
            except ValueError:
                extra[key] = value
    return declared, extra, tensors


def inspect_lifter(path: str | Path, architecture: LifterArchitecture | None = None) -> LifterArchitecture:
    """Check a lifter file as :func:`load_lifter` does, reading only its header (no weights
    are read, no model is built).

    Returns:
        The architecture the file declares.

    Raises:
        The errors of :func:`load_lifter`.
    """
    return _read(Path(path), architecture, weights=False)[0]


def load_lifter(path: str | Path, architecture: LifterArchitecture | None = None) -> Lifter:
    """Read a lifter file (format ``posestream-lifter/1``, see the module docstring) with NumPy.

    Args:
        path: the ``.safetensors`` file.
        architecture: the architecture the caller expects; refused if the file's differs
            (``dropout`` is not compared).

    Returns:
        :class:`Lifter` (float32 weights, the file's metadata).

    Raises:
        ModelNotFoundError: no such file.
        ModelError: not a lifter file. For a PyTorch checkpoint (``.pt``, ``.bin``, or a zip or
            pickle inside) the message is one line with the ``posestream convert-lifter`` command
            that converts it; nothing is unpickled.
        ModelSignatureError: the file's architecture differs from ``architecture`` (each
            difference named), its ``architecture`` metadata is unreadable, or its tensors do not
            fit the architecture it declares (each key named).
    """
    path = Path(path)
    declared, metadata, tensors = _read(path, architecture, weights=True)
    return Lifter(declared, tensors, metadata, path)


def write_lifter(path: str | Path, lifter: Lifter) -> Path:
    """Write ``lifter`` as a ``posestream-lifter/1`` safetensors file, atomically (a partial file
    never replaces a good one). ``lifter.metadata`` values are stored as JSON strings.

    Raises:
        ValueError: ``path`` does not end in ``.safetensors``, or a metadata key is ``format`` or
            ``architecture``, or a metadata value is not JSON-serialisable.
    """
    from safetensors.numpy import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: a lifter file's name ends in .safetensors")
    reserved = {"format", "architecture"} & set(lifter.metadata)
    if reserved:
        raise ValueError(f"metadata keys {sorted(reserved)} are written from the lifter itself")
    metadata = {"format": LIFTER_FORMAT, "architecture": lifter.architecture.to_json()}
    for key, value in lifter.metadata.items():
        try:
            metadata[key] = json.dumps(value)
        except TypeError as exc:
            raise ValueError(f"metadata {key!r}: {exc}") from exc
    with atomic_output(path) as tmp:
        tmp.write_bytes(save({k: np.ascontiguousarray(v) for k, v in lifter.weights.items()}, metadata=metadata))
    return path


class StreamState:
    """One sequence's place in a :class:`StreamingTemporalModel` (one per track).

    Attributes:
        frames: frames pushed since :meth:`StreamingTemporalModel.start`.

    Its ring buffers live in the model, in a slot that is given back when the state is
    garbage-collected.
    """

    __slots__ = ("frames", "_slot", "_owner", "__weakref__")

    def __init__(self, slot: int, owner: "StreamingTemporalModel"):
        self.frames = 0
        self._slot = slot
        self._owner = owner


class StreamingTemporalModel:
    """Frame-at-a-time inference of a trained lifter (eval mode: batch norm with its running
    statistics, no dropout), in NumPy, batched over any number of sequences.

    Layer ``l`` keeps the last ``(width − 1) · dilation + 1`` of its inputs in a ring; a new frame
    costs one product of each kernel with its taps, batch norm folded into the weights. The rings
    of all states are rows of one array per layer, so a step gathers every state's taps with one
    fancy index and runs one matrix product per layer. A state starts as if the first frame had
    been repeated forever before (VideoPose3D's edge padding), which every layer reaches exactly
    because a constant input gives a constant output.

    Not thread-safe: one instance per thread (states of one instance only).

    Args:
        lifter: :class:`Lifter` (its weights are copied, folded).

    Attributes:
        architecture: the lifter's :class:`LifterArchitecture`.
        receptive_field: input frames one output sees.
        delay: frames between an input and its output (0 causal, (RF − 1) / 2 symmetric).
    """

    def __init__(self, lifter: Lifter):
        a = self.architecture = lifter.architecture
        w = lifter.weights
        self.delay = a.delay
        self.receptive_field = a.receptive_field
        self._input_size = a.joints_in * a.in_features
        convs = [("expand_conv", "expand_bn")]
        convs += [(f"layers_conv.{2 * b}", f"layers_bn.{2 * b}") for b in range(len(a.filter_widths) - 1)]
        self._kernels, self._biases, self._offsets = [], [], []
        for (conv, bn), width, dilation in zip(convs, a.filter_widths, a.dilations):
            kernel, bias = _fold_batch_norm(w[f"{conv}.weight"], w, bn)
            # (C_out, C_in, K) → (C_out, K·C_in), columns in the order of the gathered taps (k, c);
            # the products are kernel @ taps.T: OpenBLAS is faster this way round for a few rows
            self._kernels.append(np.ascontiguousarray(kernel.transpose(0, 2, 1).reshape(kernel.shape[0], -1)))
            self._biases.append(bias)
            self._offsets.append(np.arange(width - 1, -1, -1) * dilation)  # frames back: oldest tap first
        self._pointwise = []
        for b in range(len(a.filter_widths) - 1):
            kernel, bias = _fold_batch_norm(w[f"layers_conv.{2 * b + 1}.weight"], w, f"layers_bn.{2 * b + 1}")
            self._pointwise.append((np.ascontiguousarray(kernel[:, :, 0]), bias))
        self._shrink = (np.ascontiguousarray(w["shrink.weight"][:, :, 0]), w["shrink.bias"].copy())
        inputs = [self._input_size] + [a.channels] * (len(a.filter_widths) - 1)
        lengths = [int(o[0]) + 1 for o in self._offsets]
        self._rings = [np.zeros((0, length, size), np.float32) for length, size in zip(lengths, inputs)]
        self._free: list[int] = []

    def _allocate(self) -> int:
        if not self._free:
            capacity = len(self._rings[0])
            grown = max(4, 2 * capacity)
            self._rings = [np.concatenate([r, np.zeros((grown - capacity, *r.shape[1:]), np.float32)]) for r in self._rings]
            self._free.extend(range(grown - 1, capacity - 1, -1))
        return self._free.pop()

    def _conv(self, layer: int, taps: np.ndarray) -> np.ndarray:
        """(B, K·C_in) taps of layer ``layer`` → (B, C_out) after its folded batch norm and ReLU."""
        out = (self._kernels[layer] @ taps.T).T
        out += self._biases[layer]
        return np.maximum(out, 0, out=out)

    def _pointwise_residual(self, block: int, x: np.ndarray, residual: np.ndarray) -> np.ndarray:
        kernel, bias = self._pointwise[block]
        out = (kernel @ x.T).T
        out += bias
        np.maximum(out, 0, out=out)
        out += residual
        return out

    def _check_frames(self, keypoints: np.ndarray, batch: int) -> np.ndarray:
        a = self.architecture
        keypoints = np.asarray(keypoints, np.float32)
        if keypoints.shape != (batch, a.joints_in, a.in_features):
            raise ValueError(f"expected ({batch}, {a.joints_in}, {a.in_features}) keypoints, got {keypoints.shape}")
        return keypoints.reshape(batch, a.joints_in * a.in_features)

    def start(self, first: np.ndarray) -> StreamState:
        """A new state, primed with ``first`` repeated (no output is produced).

        Args:
            first: (J_in, in_features) normalised keypoints of the sequence's first frame.

        Raises:
            ValueError: wrong shape.
        """
        value = self._check_frames(np.asarray(first)[None], 1)[0]
        slot = self._allocate()
        for layer, ring in enumerate(self._rings):
            ring[slot] = value
            out = self._conv(layer, np.tile(value, len(self._offsets[layer]))[None])
            value = out[0] if layer == 0 else self._pointwise_residual(layer - 1, out, value[None])[0]
        state = StreamState(slot, self)
        weakref.finalize(state, self._free.append, slot)
        return state

    def step(self, states: list[StreamState], keypoints: np.ndarray) -> np.ndarray:
        """Push one frame into each state; all states advance together (batched).

        Args:
            states: B distinct states from this model's :meth:`start`.
            keypoints: (B, J_in, in_features) normalised keypoints, one frame per state.

        Returns:
            (B, J_out, 3) float32 metres: for causal models the frame just pushed, for symmetric
            ones the frame ``delay`` pushes ago (while a state has had fewer than ``delay + 1``
            frames, its row is the output for a padding frame before the first: discard it).

        Raises:
            ValueError: wrong keypoint shape, a state of another model, a state given twice.
        """
        batch = len(states)
        value = self._check_frames(keypoints, batch)
        if batch == 0:
            return np.zeros((0, self.architecture.joints_out, 3), np.float32)
        if any(s._owner is not self for s in states):
            raise ValueError("a state that another StreamingTemporalModel started")
        slots = np.fromiter((s._slot for s in states), np.intp, batch)
        if batch > 1 and len(np.unique(slots)) != batch:
            raise ValueError("a state is given twice in one step")
        t = np.fromiter((s.frames for s in states), np.int64, batch)
        for layer, ring in enumerate(self._rings):
            length = ring.shape[1]
            ring[slots, t % length] = value
            taps = ring[slots[:, None], (t[:, None] - self._offsets[layer]) % length]  # (B, K, C_in)
            out = self._conv(layer, taps.reshape(batch, -1))
            if layer == 0:
                value = out
            else:
                residual = value if self.architecture.causal else ring[slots, (t - (length - 1) // 2) % length]
                value = self._pointwise_residual(layer - 1, out, residual)
        for s in states:
            s.frames += 1
        kernel, bias = self._shrink
        out = np.ascontiguousarray((kernel @ value.T).T)
        out += bias
        return out.reshape(batch, self.architecture.joints_out, 3)

    def lift_sequence(self, keypoints: np.ndarray) -> np.ndarray:
        """Lift one whole sequence by streaming it (the last frame repeated ``delay`` times at the
        end): the same outputs as VideoPose3D's whole-sequence evaluation with edge padding.

        Args:
            keypoints: (T, J_in, in_features) normalised keypoints, T ≥ 1.

        Returns:
            (T, J_out, 3) float32 metres, root-relative, camera space.

        Raises:
            ValueError: wrong shape or no frame.
        """
        keypoints = np.asarray(keypoints, np.float32)
        if keypoints.ndim != 3 or len(keypoints) == 0:
            raise ValueError(f"expected (T >= 1, J, F) keypoints, got {keypoints.shape}")
        state = self.start(keypoints[0])
        frames = list(keypoints) + [keypoints[-1]] * self.delay
        outputs = [self.step([state], frame[None])[0] for frame in frames]
        return np.stack(outputs[self.delay:])


def _fold_batch_norm(weight: np.ndarray, weights: Mapping[str, np.ndarray], bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight (C_out, C_in, K) and the eval-mode batch norm named ``bn`` → folded float32
    weight and (C_out,) bias: ``γ (W x − μ) / √(σ² + ε) + β``."""
    scale = weights[f"{bn}.weight"].astype(np.float64) / np.sqrt(weights[f"{bn}.running_var"].astype(np.float64) + BN_EPS)
    bias = weights[f"{bn}.bias"] - weights[f"{bn}.running_mean"] * scale
    return (weight * scale[:, None, None]).astype(np.float32), bias.astype(np.float32)
