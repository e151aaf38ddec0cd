"""Follow-Your-Pose sampling: prompt encoding, skeleton frames, DDIM with classifier-free guidance,
VAE encoding/decoding.

Conventions of the public pipeline (FOLLOW_YOUR_POSE.md §4): skeleton frames taken at stride 5
(frames 0, 5, 10, …), resized and centre-cropped to the square size, RGB in [0, 1]; latents
scaled by the VAE's ``scaling_factor`` (0.18215 for SD); DDIM (η = 0) over the SD noise
schedule, 50 steps, guidance scale 12.5; the same skeleton features for the conditional and the
unconditional half. Noise is drawn on the CPU from ``torch.Generator().manual_seed(seed)`` so a
seed gives the same clip on every device (up to the device's arithmetic).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .checkpoint import FYPModel

from .defaults import SAMPLE_GUIDANCE, SAMPLE_SEED, SAMPLE_STEPS


def encode_prompts(model: FYPModel, prompts: list[str], device) -> torch.Tensor:
    """CLIP text-encoder states of ``prompts``: (len, 77, D) in the text encoder's dtype
    (padded/truncated to the tokenizer's ``model_max_length``, as SD, at most the encoder's positions)."""
    length = min(model.tokenizer.model_max_length, model.text_encoder.config.max_position_embeddings)
    tokens = model.tokenizer(prompts, padding="max_length", max_length=length,
                             truncation=True, return_tensors="pt")
    with torch.no_grad():
        return model.text_encoder(tokens.input_ids.to(device))[0]


def skeleton_tensor(frames_bgr: list[np.ndarray], size: int) -> torch.Tensor:
    """Skeleton frames for the adapter: (1, 3, F, size, size) float32 RGB in [0, 1].

    Frames that are not ``size`` × ``size`` are resized (shorter side) and centre-cropped, the
    same transform ``posestream skeleton --size`` applies.
    """
    from posestream.offline.align import ResizeCrop

    out = []
    for frame in frames_bgr:
        if frame.shape[:2] != (size, size):
            frame = ResizeCrop(frame.shape[1], frame.shape[0], size).image(frame)
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return torch.from_numpy(np.stack(out)).permute(3, 0, 1, 2)[None].float() / 255.0


def video_tensor(frames_bgr: list[np.ndarray], size: int) -> torch.Tensor:
    """Video frames for the VAE: (1, 3, F, size, size) float32 RGB in [-1, 1] (resized + centre-cropped)."""
    return skeleton_tensor(frames_bgr, size) * 2.0 - 1.0


def encode_video(model: FYPModel, video: torch.Tensor, batch: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """VAE posterior of each frame: (mean, std), each (1, 4, F, size/8, size/8), already times
    the VAE's ``scaling_factor``. ``video``: (1, 3, F, H, W) in [-1, 1]."""
    frames = video[0].transpose(0, 1)
    means, stds = [], []
    vae = model.vae
    with torch.no_grad():
        for i in range(0, len(frames), batch):
            dist = vae.encode(frames[i:i + batch].to(vae.device, vae.dtype)).latent_dist
            means.append(dist.mean)
            stds.append(dist.std)
    scale = vae.config.scaling_factor
    return (torch.cat(means).transpose(0, 1)[None].float() * scale, torch.cat(stds).transpose(0, 1)[None].float() * scale)


def decode_latents(model: FYPModel, latents: torch.Tensor, batch: int = 8) -> np.ndarray:
    """Latents (1, 4, F, h, w) → (F, 8h, 8w, 3) uint8 RGB; ``batch`` frames per VAE call (VAE slicing)."""
    vae = model.vae
    frames = latents[0].transpose(0, 1) / vae.config.scaling_factor
    out = []
    with torch.no_grad():
        for i in range(0, len(frames), max(1, batch)):
            image = vae.decode(frames[i:i + batch].to(vae.device, vae.dtype)).sample
            out.append(((image.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu())
    return torch.cat(out).numpy()


@dataclass
class Generation:
    """Result of :func:`generate`.

    Attributes:
        frames: (F, H, W, 3) uint8 RGB generated frames.
        step_seconds: wall time of each denoising step, seconds.
        decode_seconds: VAE decoding time, seconds.
    """

    frames: np.ndarray
    step_seconds: list = field(default_factory=list)
    decode_seconds: float = 0.0


def generate(model: FYPModel, skeleton: torch.Tensor | None, prompt: str, *, negative_prompt: str = "",
             steps: int = SAMPLE_STEPS, guidance: float = SAMPLE_GUIDANCE, seed: int = SAMPLE_SEED,
             pose_scale: float = 1.0, frames: int | None = None, size: int | None = None, vae_batch: int = 8,
             progress: bool = True, on_first_step=None) -> Generation:
    """Generate a clip that follows ``skeleton`` and ``prompt``.

    Args:
        model: a loaded model, already on its device and dtype.
        skeleton: (1, 3, F, S, S) float RGB in [0, 1] (:func:`skeleton_tensor`), or None to
            generate without pose guidance (then ``frames`` and ``size`` are required).
        prompt: text; negative_prompt: the unconditional text ("" as SD).
        steps: DDIM steps (≥ 1); guidance: classifier-free guidance scale (1: no guidance pass).
        seed: noise seed; pose_scale: factor on the adapter features.
        vae_batch: frames decoded per VAE call.
        on_first_step: called with the first step's seconds (for an estimate of the whole run).

    Returns:
        :class:`Generation`.

    Raises:
        ValueError: an empty prompt, steps < 1, a size the UNet cannot halve enough times.
    """
    from diffusers import DDIMScheduler

    if not prompt or not prompt.strip():
        raise ValueError("the prompt is empty: say what the generated video shows")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    unet = model.video_unet
    device, dtype = unet.unet.device, unet.dtype
    if skeleton is not None:
        frames, size = skeleton.shape[2], skeleton.shape[-1]
    factor = 8 * 2 ** (len(unet.unet.config.block_out_channels) - 1)
    if size % factor:
        raise ValueError(f"the frame size must be a multiple of {factor} for this model, got {size}")
    scheduler = DDIMScheduler.from_config(model.scheduler_config)
    scheduler.set_timesteps(steps, device=device)
    use_cfg = guidance != 1.0
    texts = ([negative_prompt] if use_cfg else []) + [prompt]
    embeds = encode_prompts(model, texts, device).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn((1, unet.unet.config.in_channels, frames, size // 8, size // 8), generator=generator)
    latents = (latents * scheduler.init_noise_sigma).to(device, torch.float32)
    result = Generation(np.zeros(0))
    with torch.inference_mode():
        features = None
        if skeleton is not None and unet.adapter is not None:
            features = unet.pose_features(skeleton.to(device, dtype))
            if use_cfg:
                features = [torch.cat([f, f]) for f in features]
        for i, t in enumerate(tqdm(scheduler.timesteps, desc="DDIM", unit="step", disable=not progress)):
            start = time.perf_counter()
            model_input = torch.cat([latents, latents]) if use_cfg else latents
            model_input = scheduler.scale_model_input(model_input, t)
            noise = unet(model_input, t, embeds, features, pose_scale).float()
            if use_cfg:
                uncond, cond = noise.chunk(2)
                noise = uncond + guidance * (cond - uncond)
            latents = scheduler.step(noise, t, latents, eta=0.0).prev_sample
            if device.type == "cuda":
                torch.cuda.synchronize()
            result.step_seconds.append(time.perf_counter() - start)
            if i == 0 and on_first_step is not None:
                on_first_step(result.step_seconds[0])
        start = time.perf_counter()
        result.frames = decode_latents(model, latents, vae_batch)
        result.decode_seconds = time.perf_counter() - start
    return result
