"""Fine-tuning Follow-Your-Pose's temporal layers on one clip (stage 2 of the paper, on the user's video).

As the public code (FOLLOW_YOUR_POSE.md §2, §4): AdamW (lr 3e-5) on the parameters whose names
contain ``attn1.to_q``, ``attn2.to_q``, ``attn_temp`` or ``conv_temporal``; each step a window of
``frames`` frames at ``stride`` from the clip (resized and centre-cropped to ``size``), VAE
latents × 0.18215, a timestep drawn uniformly from the SD schedule's 1000, DDPM forward noise,
loss = MSE between predicted and true noise. The improvement users asked for, on by default:
the clip's own skeletons (from posestream) go through the pose adapter, so the model learns
this person's motion under pose guidance (``with_pose=False`` switches them off, as the public
stage-2 code does).

Reproducible and resumable: every random draw of step k (window start, VAE sample, noise,
timestep) comes from a generator seeded with (seed, k), so a run resumed from a checkpoint
(trained parameters + AdamW state) continues exactly as the uninterrupted run would have.

Run folder (``out``)::

    fyp_run.json                      base model, prompt, settings (makes the folder loadable)
    train_log.jsonl                   {"step", "loss", "lr", "seconds"} per step
    loss.png                          the loss curve (matplotlib), rewritten at each checkpoint
    checkpoint-NNNNNN/trained.safetensors, optimizer.pt, state.json   every ``checkpoint_every`` steps
    samples/step-NNNNNN.gif           validation clips from the clip's skeleton
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import FYPModel, RUN_FILE, apply_trained, latest_checkpoint
from .defaults import TRAIN_FRAMES as DEFAULT_FRAMES
from .defaults import TRAIN_LR as DEFAULT_LR
from .defaults import TRAIN_STRIDE as DEFAULT_STRIDE
from .sampling import encode_prompts, encode_video, generate
from .video_unet import TRAINABLE_MODULES, trainable_parameters

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Settings of one run (written to ``fyp_run.json``).

    Attributes:
        prompt: caption of the clip. steps: total optimiser steps. frames, stride: the window.
        size: square frame side, pixels. lr: AdamW learning rate. seed: seed of every draw.
        with_pose: feed the clip's skeletons through the adapter. trainable: name fragments.
        checkpoint_every, validate_every: steps between checkpoints / validation clips (0: never).
        validation_steps: DDIM steps of a validation clip. validation_frames: its length.
        mixed_precision: "no", "fp16" or "bf16" (CUDA autocast). gradient_checkpointing: recompute
            activations in the backward pass.
    """

    prompt: str
    steps: int = 500
    frames: int = DEFAULT_FRAMES
    stride: int = DEFAULT_STRIDE
    size: int = 512
    lr: float = DEFAULT_LR
    seed: int = 33
    with_pose: bool = True
    trainable: tuple = TRAINABLE_MODULES
    checkpoint_every: int = 100
    validate_every: int = 100
    validation_steps: int = 20
    validation_frames: int = 8
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False

    def check(self, clip_frames: int) -> None:
        """Raises ValueError for a setting out of range or a clip too short for the window."""
        if not self.prompt or not self.prompt.strip():
            raise ValueError("the prompt is empty: describe the clip")
        for name in ("steps", "frames", "stride", "size", "validation_steps", "validation_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"--mixed-precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        need = (self.frames - 1) * self.stride + 1
        if clip_frames < need:
            raise ValueError(f"the clip has {clip_frames} frames: a window of {self.frames} frames at stride "
                             f"{self.stride} needs {need} (lower --frames or --stride)")


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def _atomic_text(path: Path, text: str) -> None:
    from posestream.engines.files import atomic_output

    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)


def _read_log(path: Path, upto: int) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by a kill while it was written
            continue
    return [r for r in rows if isinstance(r, dict) and r.get("step", upto + 1) <= upto]


def plot_loss(rows: list[dict], path: Path) -> Path:
    """Write the loss curve (per step and a 20-step running mean) to ``path`` (PNG, matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in rows])
    loss = np.array([r["loss"] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, loss, lw=0.8, alpha=0.5, label="loss")
    if len(loss) >= 5:
        window = min(20, len(loss))
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, lw=1.5, label=f"{window}-step mean")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE on noise")
    ax.legend()
    fig.tight_layout()
    from posestream.engines.files import atomic_output

    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


class Trainer:
    """One fine-tuning run on one clip.

    Args:
        model: loaded model (on its device; float32 weights).
        clip: (1, 3, N, S, S) float32 RGB in [-1, 1] video (:func:`~.sampling.video_tensor`).
        skeleton: (1, 3, N, S, S) float32 RGB in [0, 1] skeleton frames of the same N frames.
        settings: :class:`TrainSettings`. out: run folder. base_model: the model folder to record.
    """

    def __init__(self, model: FYPModel, clip: torch.Tensor, skeleton: torch.Tensor, settings: TrainSettings,
                 out: Path, base_model: Path):
        settings.check(clip.shape[2])
        self.model, self.settings, self.out, self.base_model = model, settings, Path(out), Path(base_model)
        self.device = model.video_unet.unet.device
        self.unet = model.video_unet
        self.unet.requires_grad_(False)
        self.params = trainable_parameters(self.unet.unet, tuple(settings.trainable))
        for p in self.params.values():
            p.requires_grad_(True)
        self.optimizer = torch.optim.AdamW(list(self.params.values()), lr=settings.lr)
        from diffusers import DDPMScheduler

        self.noise_scheduler = DDPMScheduler.from_config(model.scheduler_config)
        self.latent_mean, self.latent_std = encode_video(model, clip)
        self.skeleton = skeleton
        self.embeds = encode_prompts(model, [settings.prompt], self.device)
        if settings.gradient_checkpointing:
            self.unet.unet.enable_gradient_checkpointing()
        self.scaler = (torch.amp.GradScaler("cuda")
                       if settings.mixed_precision == "fp16" and self.device.type == "cuda" else None)
        self.step = 0
        self.rows: list[dict] = []

    # -- state -----------------------------------------------------------------------------
    def write_run_file(self) -> None:
        """Write ``out/fyp_run.json`` (base model, settings, clip length) atomically."""
        info = {"format": "posestream-fyp-run/1", "base_model": str(self.base_model.resolve()),
                "settings": {**asdict(self.settings), "trainable": list(self.settings.trainable)},
                "clip_frames": int(self.latent_mean.shape[2])}
        self.out.mkdir(parents=True, exist_ok=True)
        _atomic_text(self.out / RUN_FILE, json.dumps(info, indent=1))

    def resume(self) -> int:
        """Load the newest checkpoint of ``out`` (trained parameters, AdamW state, log); returns its
        step (0 when there is none)."""
        for stale in self.out.glob("checkpoint-*.part"):  # an interrupted checkpoint write
            shutil.rmtree(stale, ignore_errors=True)
        self._check_same_run()
        checkpoint = latest_checkpoint(self.out)
        if checkpoint is None:
            return 0
        from .checkpoint import load_weights

        apply_trained(self.unet.unet, load_weights(checkpoint / "trained.safetensors"), str(checkpoint))
        self.optimizer.load_state_dict(torch_load_optimizer(checkpoint / "optimizer.pt"))
        state = json.loads((checkpoint / "state.json").read_text())
        self.step = int(state["step"])
        self.rows = _read_log(self.out / "train_log.jsonl", self.step)
        _atomic_text(self.out / "train_log.jsonl", "".join(json.dumps(r) + "\n" for r in self.rows))
        return self.step

    #: Settings that may change when a run is resumed (the others must match the run file).
    RESUMABLE = ("steps", "checkpoint_every", "validate_every", "validation_steps", "validation_frames",
                 "mixed_precision", "gradient_checkpointing")

    def _check_same_run(self) -> None:
        """Raises ValueError when ``out``'s run file names another base model or other settings."""
        path = self.out / RUN_FILE
        if not path.is_file():
            return
        stored = json.loads(path.read_text())
        mine = {**asdict(self.settings), "trainable": list(self.settings.trainable)}
        differ = [k for k, v in stored.get("settings", {}).items() if k not in self.RESUMABLE and mine.get(k) != v]
        if Path(stored.get("base_model", "")).resolve() != self.base_model.resolve():
            differ.insert(0, "model")
        if differ:
            was = [f"{k}={stored['settings'].get(k)!r}" for k in differ if k != "model"]
            if "model" in differ:
                was.append("model=" + str(stored.get("base_model")))
            raise ValueError(f"--resume: {self.out} was trained with other {', '.join(differ)} ({'; '.join(was)}): "
                             "resume with the same settings or start a new run")

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint-NNNNNN/`` (atomically: a ``.part`` folder renamed) and ``loss.png``."""
        from safetensors.torch import save_file

        final = self.out / f"checkpoint-{self.step:06d}"
        part = final.with_name(final.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        save_file({k: p.detach().float().cpu().contiguous() for k, p in self.params.items()},
                  part / "trained.safetensors", metadata={"format": "posestream-fyp-trained/1"})
        torch.save(self.optimizer.state_dict(), part / "optimizer.pt")
        (part / "state.json").write_text(json.dumps({"step": self.step, "seed": self.settings.seed}))
        shutil.rmtree(final, ignore_errors=True)
        part.rename(final)
        if self.rows:
            plot_loss(self.rows, self.out / "loss.png")
        return final

    # -- one step ------------------------------------------------------------------------------
    def loss_at(self, step: int) -> torch.Tensor:
        """The training loss of ``step`` (its draws fixed by (seed, step)); builds the graph."""
        s = self.settings
        g = _step_generator(s.seed, step)
        clip_frames = self.latent_mean.shape[2]
        start = int(torch.randint(0, clip_frames - (s.frames - 1) * s.stride, (1,), generator=g))
        index = start + torch.arange(s.frames) * s.stride
        mean, std = self.latent_mean[:, :, index], self.latent_std[:, :, index]
        # every draw on the CPU generator (the same on any device), then moved to the model's
        latents = mean + std * torch.randn(mean.shape, generator=g).to(mean.device)
        noise = torch.randn(latents.shape, generator=g).to(latents.device)
        t = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (1,), generator=g).to(latents.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, t)
        features = None
        if s.with_pose and self.unet.adapter is not None:
            with torch.no_grad():
                features = self.unet.pose_features(self.skeleton[:, :, index].to(self.device))
        autocast = s.mixed_precision != "no" and self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16 if s.mixed_precision == "bf16" else torch.float16,
                            enabled=autocast):
            pred = self.unet(noisy.to(self.device), t.to(self.device), self.embeds, features)
        return F.mse_loss(pred.float(), noise.to(self.device).float())

    def train_step(self) -> float:
        """One optimiser step (the next step number); appends its log line; returns its loss."""
        self.step += 1
        start = time.perf_counter()
        loss = self.loss_at(self.step)
        if self.scaler is not None:  # fp16: scale the loss so that small gradients do not underflow
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        row = {"step": self.step, "loss": float(loss.detach()), "lr": self.settings.lr,
               "seconds": round(time.perf_counter() - start, 4)}
        self.rows.append(row)
        with open(self.out / "train_log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        return row["loss"]

    def validate(self) -> Path:
        """A validation GIF from the clip's skeleton (its first frames at the training stride)."""
        from posestream.offline.video_io import VideoWriter

        s = self.settings
        count = min(s.validation_frames, (self.skeleton.shape[2] - 1) // s.stride + 1)
        index = torch.arange(count) * s.stride
        was = self.unet.training
        self.unet.eval()
        clip = generate(self.model, self.skeleton[:, :, index] if s.with_pose else None, s.prompt,
                        steps=s.validation_steps, seed=s.seed, frames=count, size=self.skeleton.shape[-1],
                        progress=False)
        self.unet.train(was)
        path = self.out / "samples" / f"step-{self.step:06d}.gif"
        path.parent.mkdir(parents=True, exist_ok=True)
        with VideoWriter(path, 8.0) as writer:
            for frame in clip.frames:
                writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
        return path

    def run(self, progress: bool = True) -> dict:
        """Train to ``settings.steps``; returns {"steps", "final_loss", "seconds_per_step", "checkpoints", "samples"}."""
        from tqdm import tqdm

        s = self.settings
        self.write_run_file()
        checkpoints, samples = [], []
        times = []
        self.unet.train()
        bar = tqdm(total=s.steps, initial=self.step, unit="step", desc="train", disable=not progress)
        try:
            while self.step < s.steps:
                start = time.perf_counter()
                loss = self.train_step()
                times.append(time.perf_counter() - start)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if s.validate_every and self.step % s.validate_every == 0:
                    samples.append(self.validate())
                if (s.checkpoint_every and self.step % s.checkpoint_every == 0) or self.step == s.steps:
                    checkpoints.append(self.save_checkpoint())
        finally:
            bar.close()
        return {"steps": self.step, "final_loss": self.rows[-1]["loss"] if self.rows else None,
                "seconds_per_step": float(np.median(times)) if times else None,
                "checkpoints": checkpoints, "samples": samples}


def torch_load_optimizer(path: Path) -> dict:
    """An AdamW state dict saved by :meth:`Trainer.save_checkpoint`, loaded with ``weights_only=True``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        from posestream.engines.errors import ModelError

        raise ModelError(f"{path}: not a readable optimizer state ({str(exc).splitlines()[0]})") from exc
