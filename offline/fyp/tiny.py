"""A tiny random Follow-Your-Pose model in the released folder layout, for tests and for anyone
without the real weights (``python tools/make_tiny_fyp.py DIR``).

Same architecture as the released model at a small width: SD-style UNet with block channels
(32, 64) (one cross-attention level, one plain level), 2 layers per block, 4 heads, text width 32;
a 4-level VAE (scale factor 8, 4 latent channels, scaling 0.18215 as SD); a 2-layer CLIP text
encoder with a byte-level tokenizer without merges (every byte one token; built here, no
download); the SD v1.4 noise schedule; a full T2I adapter with channels (32, 64), 2 residual blocks
per level, pixel-unshuffle 8. The temporal layers get small random (non-zero) weights so that
tests can tell a loaded checkpoint from a fresh inflation. Sizes: 64×64 frames → 8×8 latents.

Written exactly as :mod:`.checkpoint` documents the released layout: ``stable-diffusion-v1-4/``
(diffusers folders; the UNet as a torch ``.bin`` like the original release), ``pose_encoder.pth``
(the public code's ``Adapter`` key names) and ``followyourpose_checkpoint-1000/pytorch_model.bin``
(the video UNet with ``skeleton_adapter.*``) beside the accelerate files that must never be
unpickled (here placeholders that are not pickles at all).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from .checkpoint import (
    ADAPTER_FILE,
    CHECKPOINT_FOLDER,
    RELEASED_ADAPTER_PREFIX,
    SD_FOLDER,
    adapter_to_released,
)
from .video_unet import inflate

#: Frame side the tiny model is meant for, pixels.
TINY_SIZE = 64
#: SD v1.4's noise schedule (its scheduler/scheduler_config.json).
SD_SCHEDULE = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
               "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
               "steps_offset": 1, "clip_sample": False, "trained_betas": None}


def byte_vocabulary() -> dict:
    """CLIP-style byte-level vocabulary without merges: the 256 byte symbols (GPT-2's printable
    byte→unicode map), the same with the end-of-word mark ``</w>``, then the start and end tokens
    (ids 512 and 513)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            codes.append(256 + extra)
            extra += 1
    symbols = [chr(c) for c in codes]
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": 256 + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    return vocab


def tiny_components(seed: int = 0) -> dict:
    """Random tiny networks: {"unet" (2D, not inflated), "adapter", "vae", "text_encoder", "tokenizer"}."""
    from diffusers import AutoencoderKL, T2IAdapter, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=TINY_SIZE // 8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=2, cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8)
    adapter = T2IAdapter(in_channels=3, channels=[32, 64], num_res_blocks=2, downscale_factor=8,
                         adapter_type="full_adapter")
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16, 16, 16),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        latent_channels=4, layers_per_block=1, norm_num_groups=8, sample_size=TINY_SIZE,
                        scaling_factor=0.18215)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=32, intermediate_size=37,
                                                num_hidden_layers=2, num_attention_heads=4,
                                                max_position_embeddings=77, bos_token_id=512, eos_token_id=513,
                                                pad_token_id=513, projection_dim=32))
    tokenizer = CLIPTokenizer(vocab=byte_vocabulary(), merges=[], model_max_length=77)
    return {"unet": unet, "adapter": adapter, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer}


def _randomise_temporal(unet: torch.nn.Module, generator: torch.Generator) -> None:
    """Small random values in the zero-initialised temporal layers (a trained checkpoint's look)."""
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "attn_temp.to_out" in name or "conv_temporal.up" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)


def _placeholder(path: Path) -> None:
    path.write_bytes(b"posestream tiny model: an accelerate file the loader must never open\n")


def make_tiny_fyp(out: str | Path, seed: int = 0) -> Path:
    """Write a tiny random Follow-Your-Pose model folder in the released layout to ``out``.

    Args:
        out: a new (or empty) folder.
        seed: seed of every random weight: the same seed gives the same model.

    Returns:
        ``out``.

    Raises:
        FileExistsError: ``out`` exists and is not empty.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    parts = tiny_components(seed)
    part = out.with_name(out.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    sd = part / SD_FOLDER
    parts["unet"].save_pretrained(sd / "unet", safe_serialization=False)
    parts["vae"].save_pretrained(sd / "vae")
    parts["text_encoder"].save_pretrained(sd / "text_encoder")
    parts["tokenizer"].save_pretrained(sd / "tokenizer")
    (sd / "scheduler").mkdir()
    (sd / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "PNDMScheduler", **SD_SCHEDULE}, indent=1))
    (sd / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "PNDMScheduler"]}, indent=1))
    adapter_released = adapter_to_released(parts["adapter"].state_dict(), num_res_blocks=2)
    torch.save(adapter_released, part / ADAPTER_FILE)
    unet = parts["unet"]
    inflate(unet)
    _randomise_temporal(unet, torch.Generator().manual_seed(seed + 1))
    state = dict(unet.state_dict())
    state.update({RELEASED_ADAPTER_PREFIX + k: v for k, v in adapter_released.items()})
    checkpoint = part / CHECKPOINT_FOLDER
    checkpoint.mkdir()
    torch.save(state, checkpoint / "pytorch_model.bin")
    for name in ("optimizer.bin", "scheduler.bin", "random_states_0.pkl"):
        _placeholder(checkpoint / name)
    if out.exists():
        out.rmdir()
    part.rename(out)
    return out
