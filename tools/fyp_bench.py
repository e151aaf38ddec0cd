"""Follow-Your-Pose cost: seconds per DDIM sampling step and per training step.

    python tools/fyp_bench.py [--model DIR] [--frames 8] [--size 64] [--repeats 5] [--device cpu]
    python tools/fyp_bench.py --real-size --device cuda --frames 24 --size 512   (a GPU machine)

Without --model it builds the tiny random model (tools/make_tiny_fyp.py) in a temporary folder.
--real-size builds SD v1.4's UNet/VAE architecture and the released adapter's with *random*
weights (nothing is downloaded: the numbers are the cost of the real architecture, not its
output), which is what the released weights cost. Prints median seconds per step (CFG batch of
2 for sampling; one clip for training), peak GPU memory where there is a GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _real_size_model():
    from diffusers import AutoencoderKL, T2IAdapter, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from posestream.offline.fyp.checkpoint import FYPModel
    from posestream.offline.fyp.tiny import SD_SCHEDULE, byte_vocabulary
    from posestream.offline.fyp.video_unet import VideoUNet
    from transformers import CLIPTokenizer

    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)  # SD v1.4's config
    adapter = T2IAdapter(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=2, downscale_factor=8,
                         adapter_type="full_adapter")
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2,
                        sample_size=512, scaling_factor=0.18215)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, max_position_embeddings=77, bos_token_id=512,
                                        eos_token_id=513, pad_token_id=513))
    tokenizer = CLIPTokenizer(vocab=byte_vocabulary(), merges=[], model_max_length=77)
    return FYPModel(VideoUNet(unet, adapter), vae, text, tokenizer, {"_class_name": "DDIMScheduler", **SD_SCHEDULE},
                    Path("random-sd-v1.4-architecture"), "random")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: a fresh tiny model)")
    parser.add_argument("--real-size", action="store_true", help="SD v1.4-size architecture, random weights")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--train-frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()

    from posestream.offline.fyp.checkpoint import load_model
    from posestream.offline.fyp.sampling import generate
    from posestream.offline.fyp.train import Trainer, TrainSettings

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    tmp = Path(tempfile.mkdtemp())
    if args.real_size:
        model = _real_size_model()
        name = "SD v1.4 architecture, random weights"
    else:
        model_dir = Path(args.model) if args.model else None
        if model_dir is None:
            from posestream.offline.fyp.tiny import make_tiny_fyp

            model_dir = make_tiny_fyp(tmp / "tiny")
        model = load_model(model_dir)
        name = str(args.model or "tiny random model")
    print(f"model: {name}; device {device.type} ({args.dtype}); torch threads {torch.get_num_threads()}")
    model.to(device, dtype)
    skeleton = torch.rand(1, 3, args.frames, args.size, args.size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    result = generate(model, skeleton, "a person dancing", steps=args.repeats + 1, progress=False)
    steps = result.step_seconds[1:]
    peak = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if device.type == "cuda" else ""
    print(f"sampling: {args.frames} frames of {args.size}², CFG: {np.median(steps):.3f} s per DDIM step "
          f"(median of {len(steps)}), VAE decode {result.decode_seconds:.2f} s{peak}")
    if args.skip_train:
        return
    model.to(device, torch.float32)
    frames = (args.train_frames - 1) * 2 + 1
    clip = torch.rand(1, 3, frames, args.size, args.size) * 2 - 1
    pose = torch.rand(1, 3, frames, args.size, args.size)
    settings = TrainSettings(prompt="a person", steps=args.repeats + 1, frames=args.train_frames, stride=2,
                             size=args.size, checkpoint_every=0, validate_every=0,
                             mixed_precision="bf16" if device.type == "cuda" else "no",
                             gradient_checkpointing=device.type == "cuda")
    trainer = Trainer(model, clip, pose, settings, tmp / "run", tmp)
    trainer.write_run_file()
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(settings.steps):
        start = time.perf_counter()
        trainer.train_step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if device.type == "cuda" else ""
    print(f"training: {args.train_frames} frames of {args.size}²: {np.median(times[1:]):.3f} s per step "
          f"(median of {len(times) - 1}){peak}")


if __name__ == "__main__":
    main()
