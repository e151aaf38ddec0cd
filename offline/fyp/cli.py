"""``posestream fyp fetch | generate | train``: the Follow-Your-Pose commands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

#: Hugging Face repository of the released weights (FOLLOW_YOUR_POSE.md §3).
RELEASED_REPO = "YueMafighting/FollowYourPose_v1"
#: What ``fyp fetch`` downloads: SD v1.4's folders, the adapter and the UNet weights of the
#: accelerate checkpoint, at the repository root or one folder down; never the optimizer and
#: random-state pickles of the checkpoint, nor SD's safety checker and other formats' copies.
FETCH_PATTERNS = ["*stable-diffusion-v1-4/*", "*pose_encoder.pth", "*followyourpose_checkpoint-1000/pytorch_model.bin",
                  "*followyourpose_checkpoint-1000/model.safetensors"]
FETCH_IGNORE = ["*safety_checker/*", "*feature_extractor/*", "*.ckpt", "*.msgpack", "*.h5", "*.onnx", "*.pb"]
#: Options that lower GPU memory, named in the out-of-memory message.
MEMORY_OPTIONS = "--attention-slicing 1, --vae-batch 1, fewer --frames, a smaller --size, or --dtype float16"


def _require_offline() -> None:
    """Raise one clear ImportError when the [offline] extra (torch, diffusers, transformers) is missing."""
    import importlib.util

    missing = [name for name in ("torch", "diffusers", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"posestream fyp needs {', '.join(missing)}: pip install 'posestream[offline]'")


def _quiet_libraries(verbose: bool) -> None:
    """diffusers/transformers print loading bars and advice; keep them for -v only."""
    if verbose:
        return
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


def _device_dtype(device: str, dtype: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available (use --device cpu)")
    if dtype == "auto":
        dtype = "float16" if device.startswith("cuda") else "float32"
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"--dtype must be auto, float32, float16 or bfloat16, got {dtype!r}")
    if device == "cpu" and dtype == "float16":
        raise ValueError("--dtype float16 needs a CUDA device; on the CPU use float32 or bfloat16")
    return torch.device(device), getattr(torch, dtype)


def _out_of_memory(exc: BaseException) -> ValueError:
    return ValueError(f"out of GPU memory ({str(exc).splitlines()[0]}); lower it with {MEMORY_OPTIONS}")


def _skeleton_check(frames: list[np.ndarray], path: Path) -> list[str]:
    """Refuse what is not a skeleton video; return warnings for one the adapter may read badly.

    Raises:
        ValueError: most pixels are not black (a normal video, not a skeleton).
    """
    sample = np.stack(frames[:: max(1, len(frames) // 16)])
    lit = sample.max(axis=-1) > 40
    lit_fraction = float(lit.mean())
    if lit_fraction > 0.5:
        raise ValueError(f"{path}: {lit_fraction:.0%} of the pixels are not black: this is not a skeleton video "
                         "(make one with 'posestream skeleton VIDEO --out DIR --size 512')")
    warnings = []
    if lit_fraction == 0:
        warnings.append(f"{path}: every sampled frame is black: the adapter gets no pose")
    else:
        from posestream.offline.skeleton import LINKS

        palette = np.array(sorted({c for _, _, c in LINKS}), np.int32)  # BGR
        # compare colours at full brightness: anti-aliased edges are darker copies of the limb colour
        pixels = sample[lit].astype(np.float64)
        pixels /= pixels.max(axis=1, keepdims=True)
        palette = palette / palette.max(axis=1, keepdims=True)
        near = np.min(np.abs(pixels[:, None, :] - palette[None]).max(axis=-1), axis=1) < 0.25
        if near.mean() < 0.5:
            warnings.append(f"{path}: only {near.mean():.0%} of the drawn pixels have the adapter's colours (left "
                            "green, right azure, centre orange as RGB): draw it with 'posestream skeleton'")
    height, width = frames[0].shape[:2]
    if height != width:
        warnings.append(f"{path}: {width}x{height} frames are resized and centre-cropped to a square")
    return warnings


def _generate(args: argparse.Namespace) -> int:
    _require_offline()
    import torch

    from posestream.offline.align import require_clip
    from posestream.offline.video_io import VideoWriter, read_frames, write_frames

    from .checkpoint import load_model
    from .sampling import generate, skeleton_tensor
    from .video_unet import set_attention_slicing

    if not args.prompt or not args.prompt.strip():
        raise ValueError("--prompt is empty: say what the generated video shows")
    for name in ("frames", "stride", "steps", "vae_batch"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.size < 64 or args.size % 64:
        raise ValueError(f"--size must be a multiple of 64 (SD's latent grid halves three times), got {args.size}")
    if args.fps <= 0:
        raise ValueError(f"--fps must be positive, got {args.fps}")
    out = Path(args.out)
    skeleton_path = Path(args.skeleton)
    if skeleton_path.is_file() and skeleton_path.suffix.lower() == ".jsonl":
        raise ValueError(f"{skeleton_path} is JSON lines: draw it first with 'posestream skeleton {skeleton_path} "
                         "--out DIR --size 512' and pass the _skeleton.mp4")
    frames, _, _ = read_frames(skeleton_path)
    indices = require_clip(args.frames, args.stride, len(frames), what=f"the skeleton video {skeleton_path}")
    used = [frames[i] for i in indices]
    for warning in _skeleton_check(used, skeleton_path):
        print(f"posestream: warning: {warning}", file=sys.stderr)
    device, dtype = _device_dtype(args.device, args.dtype)
    _quiet_libraries(args.verbose)
    start = time.perf_counter()
    model = load_model(args.model).to(device, dtype)
    load_seconds = time.perf_counter() - start
    if args.attention_slicing:
        set_attention_slicing(model.video_unet.unet, args.attention_slicing)
    skeleton = skeleton_tensor(used, args.size)
    print(f"{len(frames)} skeleton frames, using {args.frames} at stride {args.stride} (frames 0…{indices[-1]}), "
          f"{args.size}x{args.size}, {args.steps} DDIM steps, guidance {args.guidance:g}, seed {args.seed}, "
          f"on {device.type} ({str(dtype).replace('torch.', '')})")

    def estimate(seconds: float) -> None:
        if device.type == "cpu":
            print(f"CPU run: the first step took {seconds:.1f} s, so about {seconds * args.steps / 60:.1f} min "
                  f"for {args.steps} steps", file=sys.stderr)

    try:
        result = generate(model, skeleton, args.prompt, negative_prompt=args.negative_prompt, steps=args.steps,
                          guidance=args.guidance, seed=args.seed, pose_scale=args.pose_scale,
                          vae_batch=args.vae_batch, progress=not args.quiet, on_first_step=estimate)
    except torch.cuda.OutOfMemoryError as exc:
        raise _out_of_memory(exc) from exc
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    out.mkdir(parents=True, exist_ok=True)
    bgr = [np.ascontiguousarray(f[:, :, ::-1]) for f in result.frames]
    written = []
    for suffix in (".gif", ".mp4"):
        with VideoWriter(out / f"generated{suffix}", args.fps) as writer:
            for frame in bgr:
                writer.write(frame)
        written.append(out / f"generated{suffix}")
    skeleton_bgr = [np.ascontiguousarray((f.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8))
                    for f in skeleton[0].transpose(0, 1)]
    written.append(write_frames(out / "skeleton_frames", skeleton_bgr))
    from posestream.offline.compare import compare

    side = compare([out / "skeleton_frames", out / "generated.gif"], ["skeleton", args.prompt],
                   out / "compare.gif", fps=args.fps, height=args.size, progress=False)
    written.append(side["path"])
    info = {
        "prompt": args.prompt, "negative_prompt": args.negative_prompt, "seed": args.seed, "steps": args.steps,
        "guidance_scale": args.guidance, "pose_scale": args.pose_scale, "frames": args.frames,
        "stride": args.stride, "size": args.size, "fps": args.fps, "scheduler": "DDIM (eta 0)",
        "skeleton": str(skeleton_path), "skeleton_frames_used": [int(i) for i in indices],
        "model": str(model.path), "model_layout": model.layout, "model_sha256": model.hashes(),
        "device": device.type, "dtype": str(dtype).replace("torch.", ""),
        "seconds": {"load": round(load_seconds, 3), "per_step_median": round(float(np.median(result.step_seconds)), 4),
                    "denoise": round(float(np.sum(result.step_seconds)), 3), "decode": round(result.decode_seconds, 3)},
        "peak_gpu_memory_gib": round(peak, 3) if peak is not None else None,
    }
    from posestream.engines.files import atomic_output

    with atomic_output(out / "generation.json") as tmp:
        Path(tmp).write_text(json.dumps(info, indent=1))
    written.append(out / "generation.json")
    print(f"{args.frames} frames generated in {info['seconds']['denoise']:.1f} s "
          f"({info['seconds']['per_step_median']:.3f} s per DDIM step)")
    for path in written:
        print(f"  wrote {path}")
    return 0


def _clip_and_skeleton(args: argparse.Namespace, out: Path):
    """Frames of ``args.video`` and their skeletons (from ``--skeleton`` or the pipeline), as tensors."""
    from posestream.offline.skeleton import pipeline_results, render_skeleton
    from posestream.offline.video_io import read_frames
    from posestream.stream.capture.files import open_source

    from .sampling import skeleton_tensor, video_tensor

    frames, _, _ = read_frames(args.video, max_frames=args.max_frames)
    if args.skeleton:
        skeleton_frames, _, _ = read_frames(args.skeleton, max_frames=len(frames))
        if len(skeleton_frames) < len(frames):
            raise ValueError(f"{args.skeleton} has {len(skeleton_frames)} frames, the clip {len(frames)}")
    elif args.no_pose:
        skeleton_frames = [np.zeros((args.size, args.size, 3), np.uint8)] * len(frames)
    else:
        from posestream.offline.align import ResizeCrop

        source = open_source(Path(args.video))
        pipeline_args = argparse.Namespace(det=args.det, pose=args.pose, device=None, config=None,
                                           max_frames=len(frames), quiet=args.quiet, out=str(out), source=args.video)
        results, _ = pipeline_results(pipeline_args, source)
        transform = ResizeCrop(results[0].width, results[0].height, args.size)
        skeleton_frames = [render_skeleton(r, transform) for r in results[:len(frames)]]
        if len(skeleton_frames) < len(frames):
            frames = frames[:len(skeleton_frames)]
    return video_tensor(frames, args.size), skeleton_tensor(skeleton_frames, args.size)


def _train(args: argparse.Namespace) -> int:
    _require_offline()
    import torch

    from .checkpoint import RUN_FILE, load_model
    from .train import Trainer, TrainSettings

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.resume:
        raise ValueError(f"{out} is not empty: pass --resume to continue that run, or choose a new folder")
    if args.resume and not (out / RUN_FILE).is_file():
        raise ValueError(f"--resume: {out} holds no run ({RUN_FILE} missing)")
    if args.size < 64 or args.size % 64:
        raise ValueError(f"--size must be a multiple of 64, got {args.size}")
    if not Path(args.video).exists():
        raise FileNotFoundError(f"no such file: {args.video}")
    settings = TrainSettings(prompt=args.prompt, steps=args.steps, frames=args.frames, stride=args.stride,
                             size=args.size, lr=args.lr, seed=args.seed, with_pose=not args.no_pose,
                             trainable=tuple(args.trainable), checkpoint_every=args.checkpoint_every,
                             validate_every=args.validate_every, validation_steps=args.validation_steps,
                             validation_frames=args.validation_frames, mixed_precision=args.mixed_precision,
                             gradient_checkpointing=args.gradient_checkpointing)
    settings.check(10**9)  # ranges first; the clip length once it is read
    device, _ = _device_dtype(args.device, "float32")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        clip, skeleton = _clip_and_skeleton(args, out)
        _quiet_libraries(args.verbose)
        model = load_model(args.model).to(device)
        trainer = Trainer(model, clip, skeleton, settings, out, Path(args.model))
    except BaseException:
        if created:  # a run that never started leaves nothing behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    try:
        if args.resume:
            step = trainer.resume()
            print(f"resuming {out} at step {step}")
        summary = trainer.run(progress=not args.quiet)
    except torch.cuda.OutOfMemoryError as exc:
        raise _out_of_memory(exc) from exc
    print(f"{summary['steps']} steps, final loss {summary['final_loss']:.4f}, "
          f"{summary['seconds_per_step']:.3f} s per step" if summary["seconds_per_step"] else
          f"{summary['steps']} steps (nothing left to train)")
    for path in [out / RUN_FILE, out / "train_log.jsonl", out / "loss.png", *summary["checkpoints"], *summary["samples"]]:
        if path.exists():
            print(f"  wrote {path}")
    print(f"generate with it: posestream fyp generate --model {out} --skeleton SKELETON.mp4 --prompt ...")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from .checkpoint import LICENCE, detect_layout

    print(f"licence: {LICENCE}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ImportError("posestream fyp fetch needs huggingface_hub (pip install 'posestream[offline]')") from exc
    out = Path(args.out)
    try:
        path = Path(snapshot_download(repo_id=args.repo, revision=args.revision, local_dir=out,
                                      allow_patterns=FETCH_PATTERNS, ignore_patterns=FETCH_IGNORE,
                                      endpoint=args.endpoint or os.environ.get("HF_ENDPOINT") or None))
    except Exception as exc:  # noqa: BLE001 -- offline, unknown repo, HTTP errors: one line
        raise ValueError(f"could not download {args.repo}: {str(exc).splitlines()[0]}") from exc
    candidates = [path] + sorted(p for p in path.iterdir() if p.is_dir())
    for candidate in candidates:
        try:
            detect_layout(candidate)
        except FileNotFoundError:
            continue
        print(f"  wrote {candidate}")
        print(f"use it with: posestream fyp generate --model {candidate} ...")
        return 0
    raise ValueError(f"{path}: downloaded, but no folder in it has the released layout")


def fyp_command(sub) -> None:
    """Add ``posestream fyp fetch | generate | train`` to ``sub`` (argparse sub-parsers)."""
    from .defaults import SAMPLE_FPS as DEFAULT_FPS
    from .defaults import SAMPLE_FRAMES as DEFAULT_FRAMES
    from .defaults import SAMPLE_GUIDANCE as DEFAULT_GUIDANCE
    from .defaults import SAMPLE_SEED as DEFAULT_SEED
    from .defaults import SAMPLE_STEPS as DEFAULT_STEPS
    from .defaults import SAMPLE_STRIDE as DEFAULT_STRIDE
    from .defaults import TRAIN_FRAMES, TRAIN_STRIDE, TRAINABLE_MODULES
    from .defaults import TRAIN_LR as DEFAULT_LR

    parser = sub.add_parser("fyp", parents=[sub.parent_parser],
                            help="Follow-Your-Pose: pose-guided text-to-video (fetch, generate, train)",
                            description="Follow-Your-Pose (Ma et al., AAAI 2024) on diffusers: fetch the released "
                                        "weights, generate a clip from a skeleton video and a prompt, or fine-tune "
                                        "the temporal layers on your own clip.")
    fyp = parser.add_subparsers(dest="fyp_command", metavar="{fetch,generate,train}", required=True)

    fetch = fyp.add_parser("fetch", parents=[sub.parent_parser], help="download the released weights (Hugging Face)")
    fetch.add_argument("--out", required=True, help="folder to download into")
    fetch.add_argument("--repo", default=RELEASED_REPO, help=f"Hugging Face repository (default {RELEASED_REPO})")
    fetch.add_argument("--revision", help="branch, tag or commit (default: main)")
    fetch.add_argument("--endpoint", help="Hub address, e.g. a mirror (default: $HF_ENDPOINT, else huggingface.co)")
    fetch.set_defaults(func=_fetch)

    def runtime(p):
        p.add_argument("--model", required=True,
                       help="model folder: the released layout, one saved by posestream, or a training run")
        p.add_argument("--device", default="auto", help="cuda, cuda:N or cpu (default: cuda when available)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    gen = fyp.add_parser("generate", parents=[sub.parent_parser], help="skeleton video + prompt → generated clip",
                         description="DDIM sampling with classifier-free guidance, the skeleton frames "
                                     "0, S, 2S, … through the pose adapter. Writes DIR/generated.gif and .mp4, "
                                     "DIR/skeleton_frames/, DIR/compare.gif (skeleton beside the clip) and "
                                     "DIR/generation.json.")
    runtime(gen)
    gen.add_argument("--skeleton", required=True, help="skeleton video from 'posestream skeleton' (or frames folder)")
    gen.add_argument("--prompt", required=True, help='e.g. "an astronaut on the beach"')
    gen.add_argument("--negative-prompt", default="", help="text of the unconditional branch (default empty)")
    gen.add_argument("--out", required=True, help="output folder")
    gen.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help=f"clip length (default {DEFAULT_FRAMES})")
    gen.add_argument("--stride", type=int, default=DEFAULT_STRIDE,
                     help=f"skeleton frames between generated frames (default {DEFAULT_STRIDE})")
    gen.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"DDIM steps (default {DEFAULT_STEPS})")
    gen.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE,
                     help=f"classifier-free guidance scale (default {DEFAULT_GUIDANCE}; 1 turns it off)")
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"noise seed (default {DEFAULT_SEED})")
    gen.add_argument("--size", type=int, default=512, help="square frame side, multiple of 64 (default 512)")
    gen.add_argument("--fps", type=float, default=DEFAULT_FPS, help=f"output rate (default {DEFAULT_FPS:g})")
    gen.add_argument("--pose-scale", type=float, default=1.0, help="factor on the pose features (default 1)")
    gen.add_argument("--dtype", default="auto", help="float16 (CUDA default), bfloat16 or float32 (CPU default)")
    gen.add_argument("--attention-slicing", type=int, metavar="N",
                     help="compute attention N frames/rows at a time (less memory, slower)")
    gen.add_argument("--vae-batch", type=int, default=8, help="frames per VAE decode (VAE slicing; default 8)")
    gen.set_defaults(func=_generate)

    train = fyp.add_parser("train", parents=[sub.parent_parser], help="fine-tune the temporal layers on a clip",
                           description="Fine-tune attn1.to_q, attn2.to_q, attn_temp and conv_temporal on one clip "
                                       "(AdamW, MSE on noise), by default with the clip's own skeletons through the "
                                       "pose adapter. Writes RUN/fyp_run.json, train_log.jsonl, loss.png, "
                                       "checkpoint-NNNNNN/ and samples/; RUN loads with 'fyp generate --model RUN'.")
    runtime(train)
    train.add_argument("--video", required=True, help="the clip to learn")
    train.add_argument("--prompt", required=True, help="caption of the clip")
    train.add_argument("--out", required=True, help="run folder (new, or an earlier run with --resume)")
    train.add_argument("--steps", type=int, default=500, help="optimiser steps in all (default 500)")
    train.add_argument("--frames", type=int, default=TRAIN_FRAMES, help=f"frames per window (default {TRAIN_FRAMES})")
    train.add_argument("--stride", type=int, default=TRAIN_STRIDE, help=f"stride of the window (default {TRAIN_STRIDE})")
    train.add_argument("--size", type=int, default=512, help="square frame side, multiple of 64 (default 512)")
    train.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"AdamW learning rate (default {DEFAULT_LR:g})")
    train.add_argument("--seed", type=int, default=33, help="seed of every random draw (default 33)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    train.add_argument("--no-pose", action="store_true",
                       help="train without the skeletons, as the public stage-2 code does")
    train.add_argument("--skeleton", help="skeleton video of the clip (default: run posestream on it)")
    train.add_argument("--trainable", nargs="+", default=list(TRAINABLE_MODULES),
                       help=f"name fragments of the parameters to train (default {' '.join(TRAINABLE_MODULES)})")
    train.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)")
    train.add_argument("--validate-every", type=int, default=100, help="steps between validation GIFs (0: none)")
    train.add_argument("--validation-steps", type=int, default=20, help="DDIM steps of a validation GIF (default 20)")
    train.add_argument("--validation-frames", type=int, default=8, help="frames of a validation GIF (default 8)")
    train.add_argument("--mixed-precision", default="no", choices=("no", "fp16", "bf16"), help="CUDA autocast")
    train.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations (less memory)")
    train.add_argument("--max-frames", type=int, help="read at most this many frames of the clip")
    train.add_argument("--det", help="detector for the skeletons (default yolox-nano)")
    train.add_argument("--pose", help="pose model for the skeletons (default blazepose-full)")
    train.set_defaults(func=_train)
    logging.getLogger(__name__).debug("fyp commands registered")
