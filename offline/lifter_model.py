"""The lifter in PyTorch: VideoPose3D's temporal convolution network for training and fine-tuning,
VideoPose3D/legacy checkpoints, and the conversion to the runtime's safetensors file.

:class:`TemporalModel` has VideoPose3D's parameter names and shapes (Pavllo et al., CVPR 2019,
``common/model.py``: ``expand_conv``, ``expand_bn``, ``layers_conv.{i}``, ``layers_bn.{i}``,
``shrink``), so its ``.bin`` checkpoints (the state dict under ``model_pos``) load here. Input:
(B, T, J_in, 2) keypoints normalised by
:func:`posestream.stream.lift.model.normalize_screen_coordinates`; output: (B, T − RF + 1, J_out, 3)
camera-space positions relative to the root joint, metres. The layers are described in
:mod:`posestream.stream.lift.model`, whose NumPy :class:`~posestream.stream.lift.model.StreamingTemporalModel`
runs the trained weights at run time without torch.

Files: the runtime reads only ``posestream-lifter/1`` safetensors files (:func:`save_lifter`
writes them; :func:`read_lifter` reads one back into a :class:`TemporalModel` to fine-tune it).
PyTorch checkpoints — VideoPose3D's ``.bin`` and posestream's former ``.pt`` — are read by
:func:`load_torch_lifter` (``torch.load(weights_only=True)``: plain data only) and converted by
:func:`convert_lifter` (``posestream convert-lifter``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from posestream.engines.errors import ModelError, ModelNotFoundError, ModelSignatureError
from posestream.stream.lift.model import Lifter, LifterArchitecture, load_lifter, write_lifter

#: Optional metadata that :func:`convert_lifter` carries over from a checkpoint.
CARRIED_METADATA = ("metrics", "command", "steps")


class TemporalModel(nn.Module):
    """VideoPose3D's temporal convolution network (see :mod:`posestream.stream.lift.model` for the layers).

    Args:
        architecture: :class:`~posestream.stream.lift.model.LifterArchitecture`.

    Attributes:
        dilations: dilation of each filter width's convolution (1, 3, 9, ... for widths of 3).
    """

    def __init__(self, architecture: LifterArchitecture = LifterArchitecture()):
        super().__init__()
        a = self.architecture = architecture
        widths, channels = a.filter_widths, a.channels
        self.expand_conv = nn.Conv1d(a.joints_in * a.in_features, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        convs, norms = [], []
        self.dilations = list(a.dilations)
        for width, dilation in zip(widths[1:], self.dilations[1:]):
            convs += [nn.Conv1d(channels, channels, width, dilation=dilation, bias=False),
                      nn.Conv1d(channels, channels, 1, bias=False)]
            norms += [nn.BatchNorm1d(channels, momentum=0.1), nn.BatchNorm1d(channels, momentum=0.1)]
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
        architecture_args = dict(filter_widths=tuple(widths), causal=causal, channels=channels, dropout=dropout)
    except (KeyError, ValueError, AttributeError, TypeError) as exc:
        raise ModelSignatureError(f"not a VideoPose3D TemporalModel state dict: {exc!r}") from exc
    if inputs % 2 or outputs % 3:
        raise ModelSignatureError(f"expand_conv takes {inputs} values per frame and shrink gives {outputs}: "
                                  "expected 2 per input joint and 3 per output joint")
    try:
        return LifterArchitecture(joints_in=inputs // 2, joints_out=outputs // 3, **architecture_args)
    except ValueError as exc:
        raise ModelSignatureError(f"not a VideoPose3D TemporalModel state dict: {exc}") from exc


def _describe_mismatch(model: TemporalModel, state: dict) -> list[str]:
    expected = model.state_dict()
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    return problems


def _read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise ModelNotFoundError(f"lifter checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a loadable torch checkpoint ({exc})") from exc
    if not isinstance(checkpoint, dict) or "model_pos" not in checkpoint:
        found = list(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ModelError(f"{path}: no 'model_pos' state dict (keys: {found})")
    return checkpoint


def _checkpoint_model(path: Path, checkpoint: dict, architecture: LifterArchitecture | None,
                      causal: bool | None) -> TemporalModel:
    state = checkpoint["model_pos"]
    stored = checkpoint.get("architecture")
    if stored is not None:
        try:
            declared = LifterArchitecture(**{**stored, "filter_widths": tuple(stored["filter_widths"])})
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelSignatureError(f"{path}: bad 'architecture' entry {stored!r} ({exc})") from exc
    else:
        declared = architecture_from_state_dict(state, causal=bool(causal),
                                                dropout=architecture.dropout if architecture else 0.25)
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
    return model.eval()


def load_torch_lifter(path: str | Path, architecture: LifterArchitecture | None = None,
                      causal: bool | None = None) -> TemporalModel:
    """Load a PyTorch lifter checkpoint (VideoPose3D ``.bin``, or posestream's former ``.pt``) in
    eval mode.

    The weights are the state dict under ``model_pos``, loaded with ``weights_only=True`` (plain
    data only: nothing else is unpickled). posestream's checkpoints also store ``architecture``;
    VideoPose3D's do not, so theirs is read off the shapes and ``causal`` must be given (its
    released models are symmetric).

    Args:
        path: checkpoint file.
        architecture: the architecture the caller expects; refused if the checkpoint differs.
        causal: for checkpoints without ``architecture``; default False (VideoPose3D's releases).

    Raises:
        ModelNotFoundError: no such file.
        ModelError: not a torch checkpoint (or one holding more than plain data), or no ``model_pos``.
        ModelSignatureError: the checkpoint's architecture differs from ``architecture`` (each
            difference named), or its weights do not fit the architecture it declares.
    """
    path = Path(path)
    return _checkpoint_model(path, _read_checkpoint(path), architecture, causal)


def lifter_arrays(model: TemporalModel) -> dict[str, np.ndarray]:
    """The model's weights as float32 NumPy arrays under VideoPose3D's names, without
    ``num_batches_tracked`` (what a lifter file holds)."""
    return {k: v.detach().cpu().numpy().astype(np.float32, copy=True) for k, v in model.state_dict().items()
            if not k.endswith(".num_batches_tracked")}


def numpy_lifter(model: TemporalModel, **metadata) -> Lifter:
    """The runtime's :class:`~posestream.stream.lift.model.Lifter` of a (trained) model: its
    weights copied, for :class:`~posestream.stream.lift.model.StreamingTemporalModel`."""
    return Lifter(model.architecture, lifter_arrays(model), metadata)


def save_lifter(path: str | Path, model: TemporalModel, **metadata) -> Path:
    """Write ``model`` as a ``posestream-lifter/1`` safetensors file, atomically.

    Args:
        path: the output, ending in ``.safetensors``.
        model: the network (its architecture is stored in the metadata).
        metadata: optional JSON-serialisable values, by convention ``metrics`` (evaluation name →
            ``{"mpjpe", "p_mpjpe", "n_mpjpe" (mm), "frames"}``), ``command`` (how it was made),
            ``steps`` (optimiser steps); stored as JSON strings.

    Returns:
        ``path``.

    Raises:
        ValueError: another suffix, a reserved key (``format``, ``architecture``), non-JSON metadata.
    """
    return write_lifter(path, numpy_lifter(model, **metadata))


def torch_model(lifter: Lifter) -> TemporalModel:
    """A :class:`TemporalModel` holding a runtime lifter's weights, in eval mode (batch-norm
    ``num_batches_tracked`` set to 0: the file does not keep it, and momentum-based batch norm
    does not use it)."""
    model = TemporalModel(lifter.architecture)
    state = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in lifter.weights.items()}
    state.update({k: torch.zeros((), dtype=torch.long) for k in model.state_dict() if k.endswith(".num_batches_tracked")})
    model.load_state_dict(state)
    return model.eval()


def read_lifter(path: str | Path, architecture: LifterArchitecture | None = None) -> TemporalModel:
    """A safetensors lifter file (:func:`posestream.stream.lift.model.load_lifter`) as a
    :class:`TemporalModel` in eval mode, e.g. to fine-tune it.

    Raises:
        The errors of :func:`posestream.stream.lift.model.load_lifter`.
    """
    return torch_model(load_lifter(path, architecture))


def convert_lifter(checkpoint: str | Path, out: str | Path, symmetric: bool = False) -> tuple[Path, LifterArchitecture, bool]:
    """Convert a PyTorch lifter checkpoint to the runtime's safetensors file.

    The ``metrics``, ``command`` and ``steps`` entries of posestream's checkpoints are kept in
    the metadata. The written file is read back with the runtime loader before returning.

    Args:
        checkpoint: VideoPose3D ``.bin`` or posestream ``.pt`` (see :func:`load_torch_lifter`).
        out: the ``.safetensors`` file to write.
        symmetric: for checkpoints that do not store their architecture (VideoPose3D's): the
            model is centred (VideoPose3D's releases are) rather than causal.

    Returns:
        (``out``, the architecture written, whether the checkpoint declared it itself).

    Raises:
        The errors of :func:`load_torch_lifter`; ModelSignatureError when ``symmetric`` contradicts
        a causal architecture that the checkpoint declares; ValueError for an ``out`` that does not
        end in ``.safetensors``.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"{out}: a lifter file's name ends in .safetensors")
    payload = _read_checkpoint(checkpoint)
    declared = payload.get("architecture") is not None
    model = _checkpoint_model(checkpoint, payload, None, causal=not symmetric)
    if declared and symmetric and model.architecture.causal:
        raise ModelSignatureError(f"{checkpoint}: declares a causal architecture; --symmetric contradicts it")
    metadata = {k: payload[k] for k in CARRIED_METADATA if k in payload}
    save_lifter(out, model, **metadata)
    load_lifter(out, model.architecture)
    return out, model.architecture, declared
