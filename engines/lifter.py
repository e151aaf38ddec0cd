"""The 2D→3D lifter: VideoPose3D's temporal convolution network, whole-sequence and streaming.

:class:`TemporalModel` has VideoPose3D's parameter names and shapes (Pavllo et al., CVPR 2019,
``common/model.py``: ``expand_conv``, ``expand_bn``, ``layers_conv.{i}``, ``layers_bn.{i}``,
``shrink``), so its ``.bin`` checkpoints (the state dict under ``model_pos``) load here. Input:
(B, T, J_in, 2) keypoints normalised by :func:`normalize_screen_coordinates`; output:
(B, T', J_out, 3) camera-space positions relative to the root joint, metres.

Block ``i`` (1-based) is a convolution of width ``filter_widths[i]`` dilated by the product of the
widths before it, batch norm, ReLU, dropout, then a 1×1 convolution, batch norm, ReLU, dropout,
added to the block's input (the residual is cut at the output's centre, or at its newest frame
when causal). The receptive field is the product of the widths (27, 81, 243 for 3, 4, 5 widths of 3).

:class:`StreamingTemporalModel` runs a trained model one frame at a time with a ring buffer per
layer, so each frame costs one output per layer whatever the receptive field; its outputs equal
those of the whole model over the sequence padded as VideoPose3D pads it (the first and last
frames repeated). Causal models answer for the frame just given; symmetric ones ``delay`` =
(receptive field − 1) / 2 frames later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .files import atomic_output
from .errors import ModelError, ModelNotFoundError, ModelSignatureError


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
    """Everything that fixes a :class:`TemporalModel`'s parameters and behaviour.

    Attributes:
        joints_in: 2D keypoints per frame (17 for COCO-17; RunningPose-style sets with feet use more).
        joints_out: 3D joints per frame (17 for H36M-17).
        filter_widths: temporal kernel width per layer; the receptive field is their product.
        causal: outputs look only at the past (True) or centred on their frame (False).
        channels: feature channels of every layer (VideoPose3D uses 1024).
        dropout: dropout probability while training.
        in_features: values per input keypoint (2: x, y).
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
        if self.joints_in < 1 or self.joints_out < 1 or self.channels < 1:
            raise ValueError("joints_in, joints_out and channels must be positive")

    @property
    def receptive_field(self) -> int:
        """Input frames that one output sees."""
        return int(np.prod(self.filter_widths))

    @property
    def delay(self) -> int:
        """Frames between an input and its output in a stream: 0 causal, (RF − 1) / 2 symmetric."""
        return 0 if self.causal else (self.receptive_field - 1) // 2


class TemporalModel(nn.Module):
    """VideoPose3D's temporal convolution network (see the module docstring for the layers).

    Args:
        architecture: :class:`LifterArchitecture`.
    """

    def __init__(self, architecture: LifterArchitecture = LifterArchitecture()):
        super().__init__()
        a = self.architecture = architecture
        widths, channels = a.filter_widths, a.channels
        self.expand_conv = nn.Conv1d(a.joints_in * a.in_features, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        convs, norms, self.dilations = [], [], [1]
        dilation = widths[0]
        for width in widths[1:]:
            convs += [nn.Conv1d(channels, channels, width, dilation=dilation, bias=False),
                      nn.Conv1d(channels, channels, 1, bias=False)]
            norms += [nn.BatchNorm1d(channels, momentum=0.1), nn.BatchNorm1d(channels, momentum=0.1)]
            self.dilations.append(dilation)
            dilation *= width
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(norms)
        self.shrink = nn.Conv1d(channels, a.joints_out * 3, 1)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(a.dropout)

    @property
    def receptive_field(self) -> int:
        """Input frames one output sees (the product of the filter widths)."""
        return self.architecture.receptive_field

    def set_bn_momentum(self, momentum: float) -> None:
        """Batch-norm momentum of every layer (VideoPose3D decays it from 0.1 while training)."""
        for bn in [self.expand_bn, *self.layers_bn]:
            bn.momentum = momentum

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        """(B, T, J_in, 2) normalised keypoints → (B, T − RF + 1, J_out, 3) metres, root-relative.

        Raises:
            ValueError: wrong joint count or feature size, or fewer than RF frames.
        """
        a = self.architecture
        if keypoints.ndim != 4 or keypoints.shape[2:] != (a.joints_in, a.in_features):
            raise ValueError(f"expected (B, T, {a.joints_in}, {a.in_features}) keypoints, got {tuple(keypoints.shape)}")
        if keypoints.shape[1] < a.receptive_field:
            raise ValueError(f"{keypoints.shape[1]} frames is less than the receptive field {a.receptive_field}")
        batch = keypoints.shape[0]
        x = keypoints.reshape(batch, keypoints.shape[1], -1).permute(0, 2, 1)
        x = self.drop(self.relu(self.expand_bn(self.expand_conv(x))))
        for block, width in enumerate(a.filter_widths[1:]):
            span = (width - 1) * self.dilations[block + 1]
            residual = x[:, :, span:] if a.causal else x[:, :, span // 2: x.shape[2] - span // 2]
            x = self.drop(self.relu(self.layers_bn[2 * block](self.layers_conv[2 * block](x))))
            x = residual + self.drop(self.relu(self.layers_bn[2 * block + 1](self.layers_conv[2 * block + 1](x))))
        x = self.shrink(x)
        return x.permute(0, 2, 1).reshape(batch, -1, a.joints_out, 3)

    @torch.no_grad()
    def lift_sequence(self, keypoints: np.ndarray) -> np.ndarray:
        """Lift one whole sequence, padded as VideoPose3D does (edge frames repeated: RF − 1 in
        front when causal, (RF − 1) / 2 on each side when symmetric). Uses eval mode.

        Args:
            keypoints: (T, J_in, 2) normalised keypoints, T ≥ 1.

        Returns:
            (T, J_out, 3) float32 metres, root-relative, camera space.
        """
        pad = self.receptive_field - 1
        before, after = (pad, 0) if self.architecture.causal else (pad // 2, pad // 2)
        padded = np.pad(np.asarray(keypoints, np.float32), ((before, after), (0, 0), (0, 0)), mode="edge")
        was_training = self.training
        self.eval()
        try:
            out = self(torch.from_numpy(padded)[None])[0]
        finally:
            self.train(was_training)
        return out.numpy()


def architecture_from_state_dict(state: dict, causal: bool, dropout: float = 0.25) -> LifterArchitecture:
    """Read the architecture off a VideoPose3D state dict's shapes (which do not say ``causal``).

    Raises:
        ModelSignatureError: keys missing or shapes that no TemporalModel has.
    """
    try:
        channels, inputs, first = state["expand_conv.weight"].shape
        outputs = state["shrink.weight"].shape[0]
        widths = [first]
        i = 0
        while f"layers_conv.{i}.weight" in state:
            widths.append(state[f"layers_conv.{i}.weight"].shape[2])
            i += 2
    except (KeyError, ValueError, AttributeError) as exc:
        raise ModelSignatureError(f"not a VideoPose3D TemporalModel state dict: {exc!r}") from exc
    if inputs % 2 or outputs % 3:
        raise ModelSignatureError(f"expand_conv takes {inputs} values per frame and shrink gives {outputs}: "
                                  "expected 2 per input joint and 3 per output joint")
    return LifterArchitecture(joints_in=inputs // 2, joints_out=outputs // 3, filter_widths=tuple(widths),
                              causal=causal, channels=channels, dropout=dropout)


def _describe_mismatch(model: TemporalModel, state: dict) -> list[str]:
    expected = model.state_dict()
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    return problems


def load_lifter(path: str | Path, architecture: LifterArchitecture | None = None,
                causal: bool | None = None) -> TemporalModel:
    """Load a lifter checkpoint (VideoPose3D ``.bin`` or ours) in eval mode.

    The weights are the state dict under ``model_pos`` (loaded with ``weights_only=True``). Our
    checkpoints also store ``architecture``; VideoPose3D's do not, so theirs is read off the shapes
    and ``causal`` must be given (its released models are symmetric).

    Args:
        path: checkpoint file.
        architecture: the architecture the caller expects; refused if the checkpoint differs.
        causal: for checkpoints without ``architecture``; default False (VideoPose3D's releases).

    Raises:
        ModelNotFoundError: no such file.
        ModelError: not a torch checkpoint, or no ``model_pos``.
        ModelSignatureError: the checkpoint's architecture differs from ``architecture`` (each
            difference named), or its weights do not fit the architecture it declares.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"lifter checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a loadable torch checkpoint ({exc})") from exc
    if not isinstance(checkpoint, dict) or "model_pos" not in checkpoint:
        raise ModelError(f"{path}: no 'model_pos' state dict (keys: {list(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__})")
    state = checkpoint["model_pos"]
    stored = checkpoint.get("architecture")
    if stored is not None:
        try:
            declared = LifterArchitecture(**{**stored, "filter_widths": tuple(stored["filter_widths"])})
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelSignatureError(f"{path}: bad 'architecture' entry {stored!r} ({exc})") from exc
    else:
        declared = architecture_from_state_dict(state, causal=bool(causal), dropout=architecture.dropout if architecture else 0.25)
    if architecture is not None:
        differences = [f"{k}: checkpoint {getattr(declared, k)!r} vs expected {getattr(architecture, k)!r}"
                       for k in ("joints_in", "joints_out", "filter_widths", "causal", "channels", "in_features")
                       if getattr(declared, k) != getattr(architecture, k)]
        if differences:
            raise ModelSignatureError(f"{path}: lifter architecture differs: " + "; ".join(differences))
    model = TemporalModel(declared)
    problems = _describe_mismatch(model, state)
    if problems:
        raise ModelSignatureError(f"{path}: weights do not fit {declared}: " + "; ".join(problems[:10]))
    model.load_state_dict(state)
    model.eval()
    return model


def save_lifter(path: str | Path, model: TemporalModel, **extra) -> Path:
    """Write ``{'model_pos': state dict, 'architecture': dict, **extra}`` atomically. ``extra`` values must be plain data (numbers, strings, lists, dicts, tensors) so that
    the file loads with ``weights_only=True``."""
    path = Path(path)
    arch = asdict(model.architecture)
    arch["filter_widths"] = list(arch["filter_widths"])
    payload = {"model_pos": model.state_dict(), "architecture": arch, **extra}
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
    return path


class StreamState:
    """One sequence's ring buffers in a :class:`StreamingTemporalModel` (one per track)."""

    __slots__ = ("buffers", "position", "frames")

    def __init__(self, buffers: list[torch.Tensor]):
        self.buffers = buffers  # per layer: (C_in, L) ring of that layer's inputs
        self.position = 0  # ring slot of the newest input (the same for every layer)
        self.frames = 0  # frames pushed since start, the first included


class StreamingTemporalModel:
    """Frame-at-a-time inference of a trained :class:`TemporalModel` (eval mode, no dropout).

    Layer ``l`` keeps the last ``(width − 1) · dilation + 1`` of its inputs; a new frame costs
    one dot product of each kernel with its taps, batch norm folded into the weights. A state
    starts as if the first frame had been repeated forever before (VideoPose3D's edge padding),
    which every layer reaches exactly because a constant input gives a constant output.

    Args:
        model: the trained network (its weights are copied; later changes to it are not seen).
    """

    def __init__(self, model: TemporalModel):
        a = self.architecture = model.architecture
        self.delay = a.delay
        self.receptive_field = a.receptive_field
        layers = [(model.expand_conv, model.expand_bn, 1)]
        layers += [(model.layers_conv[2 * i], model.layers_bn[2 * i], model.dilations[i + 1])
                   for i in range(len(a.filter_widths) - 1)]
        self._kernels, self._biases, self._taps, self._lengths = [], [], [], []
        with torch.no_grad():
            for conv, bn, dilation in layers:
                kernel, bias = _fold_batch_norm(conv.weight, bn)
                width = conv.weight.shape[2]
                self._kernels.append(kernel.reshape(kernel.shape[0], -1).T.contiguous())  # (C_in·K, C_out)
                self._biases.append(bias)
                self._taps.append(torch.arange(width) * dilation - (width - 1) * dilation)  # oldest first, 0 = newest
                self._lengths.append((width - 1) * dilation + 1)
            self._pointwise = []
            for i in range(len(a.filter_widths) - 1):
                kernel, bias = _fold_batch_norm(model.layers_conv[2 * i + 1].weight, model.layers_bn[2 * i + 1])
                self._pointwise.append((kernel[:, :, 0].T.contiguous(), bias))
            self._shrink = (model.shrink.weight[:, :, 0].T.detach().clone(), model.shrink.bias.detach().clone())
        self._ring = max(self._lengths)

    def _layer(self, index: int, taps: torch.Tensor) -> torch.Tensor:
        """(B, C_in, K) taps of conv layer ``index`` → (B, C_out) after BN and ReLU."""
        return torch.relu(taps.reshape(taps.shape[0], -1) @ self._kernels[index] + self._biases[index])

    def _block_output(self, block: int, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        kernel, bias = self._pointwise[block]
        return residual + torch.relu(x @ kernel + bias)

    @torch.no_grad()
    def start(self, first: np.ndarray) -> StreamState:
        """A new state, primed with ``first`` repeated (no output is produced).

        Args:
            first: (J_in, 2) normalised keypoints of the sequence's first frame.
        """
        x = torch.as_tensor(np.asarray(first, np.float32).reshape(-1))
        buffers = [x[:, None].repeat(1, self._ring)]
        width0 = len(self._taps[0])
        value = self._layer(0, x[None, :, None].expand(1, -1, width0))[0]
        for block in range(len(self._taps) - 1):
            buffers.append(value[:, None].repeat(1, self._ring))
            width = len(self._taps[block + 1])
            inner = self._layer(block + 1, value[None, :, None].expand(1, -1, width))
            value = self._block_output(block, inner, value[None])[0]
        return StreamState(buffers)

    @torch.no_grad()
    def step(self, states: list[StreamState], keypoints: np.ndarray) -> np.ndarray:
        """Push one frame into each state; all states advance together (batched).

        Args:
            states: B states from :meth:`start`.
            keypoints: (B, J_in, 2) normalised keypoints, one frame per state.

        Returns:
            (B, J_out, 3) float32 metres: for causal models the frame just pushed, for symmetric
            ones the frame ``delay`` pushes ago (while a state has had fewer than ``delay + 1``
            frames, its row is the output for a padding frame before the first: discard it).
        """
        batch = len(states)
        value = torch.as_tensor(np.asarray(keypoints, np.float32).reshape(batch, -1))
        positions = [(s.position + 1) % self._ring for s in states]
        for layer, offsets in enumerate(self._taps):
            taps, residuals = [], []
            for s, p, v in zip(states, positions, value):
                buffer = s.buffers[layer]
                buffer[:, p] = v
                taps.append(buffer[:, (offsets + p) % self._ring])
                if layer and not self.architecture.causal:
                    residuals.append(buffer[:, (p - (self._lengths[layer] - 1) // 2) % self._ring])
            taps = torch.stack(taps)  # (B, C_in, K)
            out = self._layer(layer, taps)
            if layer == 0:
                value = out
            else:
                residual = taps[:, :, -1] if self.architecture.causal else torch.stack(residuals)
                value = self._block_output(layer - 1, out, residual)
        for s, p in zip(states, positions):
            s.position = p
            s.frames += 1
        kernel, bias = self._shrink
        return (value @ kernel + bias).reshape(batch, self.architecture.joints_out, 3).numpy()


def _fold_batch_norm(weight: torch.Tensor, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv weight (C_out, C_in, K) and eval-mode batch norm → folded weight and (C_out,) bias."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (weight * scale[:, None, None]).detach(), (bn.bias - bn.running_mean * scale).detach()
