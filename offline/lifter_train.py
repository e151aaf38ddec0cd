"""Training, fine-tuning and evaluation of the lifter (:class:`posestream.offline.lifter_model.TemporalModel`).

As VideoPose3D trains: Adam with AMSGrad, MPJPE loss on root-relative 3D, the learning rate
multiplied by ``lr_decay`` at intervals, batch-norm momentum decayed from 0.1 to 0.001. Chunks of
``receptive field − 1 + outputs`` frames give ``outputs`` supervised frames each.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from posestream.engines.layouts import H36M17_FLIP_INDICES
from posestream.offline.lifter_data import mirror_2d
from posestream.offline.lifter_model import TemporalModel
from posestream.offline.metrics3d import mpjpe, n_mpjpe, p_mpjpe

log = logging.getLogger(__name__)

#: A source of training chunks: ``(rng, batch size) -> (x (B, F, J, 2), y (B, F, 17, 3))`` float32.
BatchSource = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings.

    Attributes:
        steps: optimiser steps. batch_size: chunks per step. outputs: supervised frames per chunk.
        lr: initial learning rate (VideoPose3D: 1e-3; fine-tuning: lower, e.g. 1e-4).
        lr_decay: factor applied every ``decay_every`` steps (VideoPose3D: 0.95 per epoch).
        eval_every: steps between evaluations (0: only at the end).
        freeze: parameter-name prefixes left untouched (their batch norms keep their statistics),
            e.g. ``("expand_", "layers_conv.0", "layers_bn.0")``; ``("backbone",)`` = all but ``shrink``.
        start_frames: probability that a chunk begins with its first frame repeated, as a stream starts.
        seed: numpy and torch seed. threads: torch CPU threads (0: torch's default).
    """

    steps: int = 6000
    batch_size: int = 128
    outputs: int = 32
    lr: float = 1e-3
    lr_decay: float = 0.95
    decay_every: int = 200
    eval_every: int = 500
    freeze: tuple[str, ...] = ()
    start_frames: float = 0.1
    seed: int = 0
    threads: int = 0


@dataclass
class History:
    """Loss and evaluation curves: ``train`` = (step, mean loss mm since the last entry),
    ``evals`` = (step, metrics dict)."""

    train: list[tuple[int, float]] = field(default_factory=list)
    evals: list[tuple[int, dict]] = field(default_factory=list)
    seconds: float = 0.0


def target_slice(model: TemporalModel, frames: int) -> slice:
    """Which of a chunk's ``frames`` the model's outputs belong to (causal: the last ones)."""
    rf = model.receptive_field
    start = rf - 1 if model.architecture.causal else (rf - 1) // 2
    return slice(start, start + frames - rf + 1)


def _frozen(name: str, prefixes: tuple[str, ...]) -> bool:
    if "backbone" in prefixes:
        return not name.startswith("shrink")
    return any(name.startswith(p) for p in prefixes)


def _set_train_mode(model: TemporalModel, prefixes: tuple[str, ...]) -> None:
    model.train()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm1d) and _frozen(name + ".weight", prefixes):
            module.eval()  # frozen layers keep their running statistics


def _with_stream_starts(rng: np.random.Generator, x: np.ndarray, rate: float, rf: int) -> np.ndarray:
    for b in np.flatnonzero(rng.random(len(x)) < rate):
        k = rng.integers(1, rf)
        x[b, :k] = x[b, k]
    return x


def train_lifter(model: TemporalModel, batches: BatchSource, config: TrainConfig = TrainConfig(),
                 evaluate: Callable[[TemporalModel], dict] | None = None, progress: bool = True) -> History:
    """Train ``model`` in place.

    Args:
        model: the network (fresh, or loaded for fine-tuning).
        batches: training chunks of ``receptive field − 1 + config.outputs`` frames.
        config: :class:`TrainConfig`.
        evaluate: called with the model in eval mode every ``eval_every`` steps and at the end;
            returns metrics (logged and kept in the history).
        progress: log a line at each evaluation.

    Returns:
        :class:`History`.

    Raises:
        ValueError: ``freeze`` leaves nothing to train.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(not _frozen(name, config.freeze))
        if parameter.requires_grad:
            trainable.append(parameter)
    if not trainable:
        raise ValueError(f"freeze={config.freeze} leaves no parameter to train")
    optimizer = torch.optim.Adam(trainable, lr=config.lr, amsgrad=True)
    window = target_slice(model, model.receptive_field - 1 + config.outputs)
    history, losses, start = History(), [], time.perf_counter()
    for step in range(1, config.steps + 1):
        _set_train_mode(model, config.freeze)
        model.set_bn_momentum(0.1 * (0.001 / 0.1) ** ((step - 1) / max(config.steps - 1, 1)))
        x, y = batches(rng, config.batch_size)
        x = _with_stream_starts(rng, x, config.start_frames, model.receptive_field)
        predicted = model(torch.from_numpy(x))
        target = torch.from_numpy(y[:, window])
        loss = torch.linalg.vector_norm(predicted - target, dim=-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item() * 1000)
        if step % config.decay_every == 0:
            for group in optimizer.param_groups:
                group["lr"] *= config.lr_decay
        last = step == config.steps
        if (config.eval_every and step % config.eval_every == 0) or last:
            history.train.append((step, float(np.mean(losses))))
            losses = []
            if evaluate is not None:
                model.eval()
                metrics = evaluate(model)
                history.evals.append((step, metrics))
            if progress:
                log.info("step %d/%d  train MPJPE %.1f mm  %s  (%.0f s)", step, config.steps, history.train[-1][1],
                         "" if evaluate is None else "  ".join(f"{k} {v:.1f}" for k, v in history.evals[-1][1].items()
                                                               if isinstance(v, float)),
                         time.perf_counter() - start)
    model.eval()
    history.seconds = time.perf_counter() - start
    return history


def sequence_batches(sequences: list[tuple[str, np.ndarray, np.ndarray]], frames: int, mirror: bool = True) -> BatchSource:
    """Random ``frames``-long chunks of fixed (name, x, y) sequences (e.g. from
    :func:`posestream.offline.lifter_data.load_npz_pairs`); shorter sequences are edge-padded; mirrored half
    the time when ``mirror``."""
    lengths = np.array([len(x) for _, x, _ in sequences], np.float64)
    weights = lengths / lengths.sum()

    def batches(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for i in rng.choice(len(sequences), size=size, p=weights):
            _, x, y = sequences[i]
            if len(x) < frames:
                pad = ((frames - len(x), 0), (0, 0), (0, 0))
                x, y = np.pad(x, pad, mode="edge"), np.pad(y, pad, mode="edge")
            s = rng.integers(len(x) - frames + 1)
            x, y = x[s:s + frames], y[s:s + frames]
            if mirror and rng.random() < 0.5:
                x, y = mirror_2d(x), y[:, list(H36M17_FLIP_INDICES)] * np.array([-1, 1, 1], np.float32)
            xs.append(x)
            ys.append(y)
        return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)

    return batches


def evaluate_lifter(model, sequences: list[tuple[str, np.ndarray, np.ndarray]]) -> dict:
    """Lift each whole (name, x, y) sequence (VideoPose3D padding) and score it against ``y``.

    Args:
        model: anything with ``lift_sequence((T, J, 2)) -> (T, 17, 3)``: a torch
            :class:`~posestream.offline.lifter_model.TemporalModel`, or the runtime's NumPy
            :class:`~posestream.stream.lift.model.StreamingTemporalModel` (same outputs).
        sequences: (name, x (T, 17, 2) normalised 2D, y (T, 17, 3) metres) triples.

    Returns:
        ``{"mpjpe", "p_mpjpe", "n_mpjpe"}`` in millimetres over all frames (the root joint set to 0
        in both, as the lifter's output is root-relative), and ``frames``.
    """
    predictions, targets = [], []
    for _, x, y in sequences:
        predicted = model.lift_sequence(x)
        predictions.append(predicted - predicted[:, :1])
        targets.append(y - y[:, :1])
    p, t = np.concatenate(predictions), np.concatenate(targets)
    return {"mpjpe": 1000 * mpjpe(p, t), "p_mpjpe": 1000 * p_mpjpe(p, t), "n_mpjpe": 1000 * n_mpjpe(p, t),
            "frames": int(len(p))}


def plot_history(history: History, path: str | Path, title: str = "lifter training") -> Path:
    """Save the training loss and evaluation MPJPE curves as a PNG (matplotlib, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from posestream.engines.files import atomic_output

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    if history.train:
        steps, values = zip(*history.train)
        ax.plot(steps, values, label="train MPJPE (noisy 2D, augmented)")
    for key in ("mpjpe", "p_mpjpe"):
        points = [(s, m[key]) for s, m in history.evals if key in m]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o", label=f"held-out {key.upper().replace('_', '-')}")
    ax.set_xlabel("step")
    ax.set_ylabel("mm")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(path)
    with atomic_output(path) as tmp:
        FigureCanvasAgg(fig).print_png(str(tmp))
    return path
