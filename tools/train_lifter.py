#!/usr/bin/env python
"""Train (or fine-tune) the causal 2D→3D lifter and report MPJPE / P-MPJPE / N-MPJPE in mm.

Data: the BVH mocap in ``$POSESTREAM_SHARED/mocap`` seen by random virtual cameras (see
``offline/lifter_data.py``), and/or a paired VideoPose3D-style npz dataset (``--npz-2d/--npz-3d``).
Held-out mocap trials (``--holdout``) are never trained on; they are scored through 4 seeded
cameras each, with exact and with noisy 2D, and so are the Human3.6M samples in
``media/mmpose-testdata/h36m``. Writes the lifter as the runtime reads it (a ``.safetensors`` file:
VideoPose3D's tensor names, metadata ``architecture``, ``metrics``, ``command``, ``steps``; see
``stream/lift/model.py``), ``<lifter>.json`` (metrics, curves) and ``<lifter>.png`` (curves).

The shipped default lifter was made in five steps (each with the generator of its time): on the mocap alone (then written as a PyTorch
checkpoint and converted with ``posestream convert-lifter``; today ``--out`` is the
``.safetensors`` file itself); fine-tuned with procedural sitting, waving, "stop" and
hand-at-mouth motion (``offline/synthetic_motion.py``), which the mocap lacks; fine-tuned again
with near and high cameras too (``--camera-*``, ``--log-distance``: webcams, cameras mounted in a
room), which the default cameras seldom are; and once more, the same way, after the procedural
hand at the mouth was corrected (the wrist a hand's span short of the mouth, not on it); and a
last time after the procedural bodies' hips and shoulders were put as far apart as joint centres
are (they had Winter's breadths over the skin: hips 1.8, shoulders 1.4 times too wide) and their
seats given a wider range (feet under the seat to stretched out). ``engines/weights/lifter_coco_h36m_causal27.json`` and ``.png`` record the last step::

    python tools/train_lifter.py --out mocap.safetensors --steps 6000 --threads 2
    python tools/train_lifter.py --resume mocap.safetensors --synthetic 300 --synthetic-share 0.4 \\
        --lr 3e-4 --decay-every 100 --steps 1500 --eval-every 500 --threads 2 --out sitting.safetensors
    python tools/train_lifter.py --resume sitting.safetensors --synthetic 300 --synthetic-share 0.4 \\
        --lr 3e-4 --decay-every 100 --steps 1500 --eval-every 500 --threads 2 \\
        --camera-fov 40,90 --camera-distance 1.5,8 --camera-height 0.3,3.5 --log-distance --out near.safetensors
    python tools/train_lifter.py --resume near.safetensors --synthetic 300 --synthetic-share 0.4 \\
        --lr 3e-4 --decay-every 100 --steps 1500 --eval-every 500 --threads 2 \\
        --camera-fov 40,90 --camera-distance 1.5,8 --camera-height 0.3,3.5 --log-distance --out mouth.safetensors
    python tools/train_lifter.py --resume mouth.safetensors --synthetic 300 --synthetic-share 0.4 \\
        --lr 3e-4 --decay-every 100 --steps 1500 --eval-every 500 --threads 2 \\
        --camera-fov 40,90 --camera-distance 1.5,8 --camera-height 0.3,3.5 --log-distance \\
        --out engines/weights/lifter_coco_h36m_causal27.safetensors

With ``--synthetic`` the procedural clips held out are also scored through near and high cameras
(``NEAR_HIGH``, ``offline/lifter_data.py``), whatever the training cameras.

Fine-tuning (RunningPose-style) from it on your own data, lower learning rate, frozen backbone
(``--resume`` also takes a PyTorch checkpoint: VideoPose3D's ``.bin``, with ``--symmetric`` for its
centred releases)::

    python tools/train_lifter.py --resume engines/weights/lifter_coco_h36m_causal27.safetensors \\
        --npz-2d data_2d_custom_x.npz --npz-3d data_3d_x.npz --no-mocap --lr 1e-4 --freeze backbone \\
        --steps 500 --out finetuned.safetensors
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from posestream.engines.files import atomic_output  # noqa: E402
from posestream.offline.lifter_model import TemporalModel, load_torch_lifter, read_lifter, save_lifter  # noqa: E402
from posestream.offline.lifter_data import (HOLDOUT, NEAR_HIGH, CameraRange, NoiseConfig, MocapSampler,  # noqa: E402
                                           fixed_views, h36m_samples, load_npz_pairs)
from posestream.offline.lifter_train import TrainConfig, evaluate_lifter, plot_history, sequence_batches, train_lifter  # noqa: E402
from posestream.offline.mocap import load_mocap_cached  # noqa: E402
from posestream.offline.synthetic_motion import synthetic_clips  # noqa: E402
from posestream.stream.lift.model import LifterArchitecture  # noqa: E402


def _pair(text: str) -> tuple[float, float]:
    """``MIN,MAX`` → (min, max), refusing anything but two numbers (:class:`CameraRange` checks the range)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give MIN,MAX (two numbers)") from None
    return low, high


def main(argv=None) -> int:
    shared = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="lifter file to write (.safetensors)")
    parser.add_argument("--mocap", type=Path, default=shared / "mocap")
    parser.add_argument("--no-mocap", action="store_true", help="train on the npz dataset only")
    parser.add_argument("--npz-2d", type=Path, help="VideoPose3D custom 2D dataset (pixels, COCO-17)")
    parser.add_argument("--npz-3d", type=Path, help="matching positions_3d (camera space, metres, H36M-17)")
    parser.add_argument("--holdout", default=",".join(HOLDOUT), help="mocap trials to hold out (comma-separated)")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="also N procedural clips (offline/synthetic_motion.py: sitting down and standing up, "
                             "waving, stop, a hand at the mouth; 8 s at 30 fps each); 40 more, another seed, are scored")
    parser.add_argument("--synthetic-share", type=float, default=0.5,
                        help="fraction of each training batch drawn from the procedural clips (with --synthetic; "
                             "the other sources share the rest evenly)")
    parser.add_argument("--h36m", type=Path, default=shared / "media" / "mmpose-testdata" / "h36m")
    parser.add_argument("--resume", type=Path, help="start from this lifter (fine-tuning): .safetensors, or a PyTorch "
                        ".pt/.bin (causal unless --symmetric when the checkpoint does not say)")
    parser.add_argument("--filter-widths", default="3,3,3")
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument("--symmetric", action="store_true", help="centred (non-causal) convolutions (new models, and "
                        "--resume checkpoints that do not store their architecture)")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--lr-decay", type=float, default=TrainConfig.lr_decay)
    parser.add_argument("--decay-every", type=int, default=TrainConfig.decay_every)
    parser.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    parser.add_argument("--freeze", default="", help="parameter prefixes to keep fixed, comma-separated; 'backbone' = all but shrink")
    parser.add_argument("--noise", type=float, default=NoiseConfig.sigma, help="max 2D noise, fraction of person height")
    parser.add_argument("--camera-fov", type=_pair, default=CameraRange.fov, metavar="MIN,MAX",
                        help="training cameras' horizontal field of view, degrees (default 40,80)")
    parser.add_argument("--camera-distance", type=_pair, default=CameraRange.distance, metavar="MIN,MAX",
                        help="training cameras' distance from the motion, metres (default 2.5,8; never so near "
                             "that the motion leaves the view)")
    parser.add_argument("--camera-height", type=_pair, default=CameraRange.height, metavar="MIN,MAX",
                        help="training cameras' height above the lowest foot, metres (default 0.3,2.5)")
    parser.add_argument("--log-distance", action="store_true",
                        help="draw the distance log-uniform (near cameras, with strong perspective, as often as far)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "posestream")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.suffix != ".safetensors":
        parser.error(f"--out {args.out}: a lifter file's name ends in .safetensors")
    try:
        cameras = CameraRange(fov=args.camera_fov, distance=args.camera_distance, height=args.camera_height,
                              log_distance=args.log_distance)
    except ValueError as exc:
        parser.error(f"--camera-*: {exc}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.resume:
        if args.resume.suffix == ".safetensors":
            model = read_lifter(args.resume)
        else:
            model = load_torch_lifter(args.resume, causal=not args.symmetric)
        model.architecture = LifterArchitecture(**{**model.architecture.__dict__, "dropout": args.dropout})
        model.drop.p = args.dropout
    else:
        model = TemporalModel(LifterArchitecture(filter_widths=tuple(int(w) for w in args.filter_widths.split(",")),
                                                 causal=not args.symmetric, channels=args.channels, dropout=args.dropout))
    frames = model.receptive_field - 1 + TrainConfig.outputs
    holdout = {t for t in args.holdout.split(",") if t}
    sources, evaluations = [], {}
    if not args.no_mocap:
        clips = load_mocap_cached(args.mocap, args.cache)
        train_clips = [c for c in clips if c.name not in holdout]
        test_clips = [c for c in clips if c.name in holdout]
        print(f"mocap: {len(train_clips)} training trials ({sum(len(c.joints) for c in train_clips)} frames), "
              f"{len(test_clips)} held out ({sum(len(c.joints) for c in test_clips)} frames): {', '.join(c.name for c in test_clips)}")
        sources.append(MocapSampler(train_clips, frames, NoiseConfig(sigma=args.noise), cameras).batch)
        if test_clips:
            evaluations["mocap held-out, exact 2D"] = fixed_views(test_clips, 4, seed=1)
            evaluations["mocap held-out, noisy 2D"] = fixed_views(test_clips, 4, seed=1, noise=NoiseConfig(sigma=0.01, outlier_rate=0.01))
    if not 0.0 <= args.synthetic_share <= 1.0:
        parser.error(f"--synthetic-share {args.synthetic_share}: a fraction from 0 to 1")
    synthetic_source = None
    if args.synthetic:
        made = synthetic_clips(args.synthetic, seed=args.seed + 1000)
        scored = synthetic_clips(40, seed=args.seed + 2000)
        print(f"procedural: {len(made)} training clips ({sum(len(c.joints) for c in made)} frames), "
              f"{len(scored)} scored ({sum(len(c.joints) for c in scored)} frames)")
        synthetic_source = MocapSampler(made, frames, NoiseConfig(sigma=args.noise), cameras).batch
        evaluations["procedural held-out, exact 2D"] = fixed_views(scored, 2, seed=3)
        evaluations["procedural held-out, noisy 2D"] = fixed_views(scored, 2, seed=3, noise=NoiseConfig(sigma=0.01, outlier_rate=0.01))
        evaluations["procedural held-out, near/high, noisy"] = fixed_views(
            scored, 2, seed=4, noise=NoiseConfig(sigma=0.01, outlier_rate=0.01), cameras=NEAR_HIGH)
    if args.npz_2d or args.npz_3d:
        pairs = load_npz_pairs(args.npz_2d, args.npz_3d)
        print(f"npz: {len(pairs)} sequences, {sum(len(x) for _, x, _ in pairs)} frames")
        sources.append(sequence_batches(pairs, frames))
        evaluations["npz dataset (training data)"] = pairs
    # the procedural clips take --synthetic-share of each batch, the other sources the rest evenly
    weights = [1.0] * len(sources)
    if synthetic_source is not None:
        weights = [(1 - args.synthetic_share) / len(sources)] * len(sources) + [args.synthetic_share] if sources else [1.0]
        sources.append(synthetic_source)
    if not sources:
        parser.error("no training data: give mocap, --synthetic or --npz-2d/--npz-3d")
    if args.h36m.is_dir():
        evaluations["Human3.6M samples (4 frames)"] = h36m_samples(args.h36m)

    chances = np.asarray(weights, np.float64) / np.sum(weights)

    def batches(rng, size):
        # every batch mixes the sources (in proportion, on average): a batch from one source
        # alone would pull the batch-norm statistics towards it, step after step
        counts = rng.multinomial(size, chances)
        parts = [sources[i](rng, int(n)) for i, n in enumerate(counts) if n]
        return tuple(np.concatenate(arrays) for arrays in zip(*parts))

    first = next(iter(evaluations))

    def evaluate(m):
        return evaluate_lifter(m, evaluations[first])

    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay,
                         decay_every=args.decay_every, eval_every=args.eval_every,
                         freeze=tuple(p for p in args.freeze.split(",") if p), seed=args.seed, threads=args.threads)
    history = train_lifter(model, batches, config, evaluate if evaluations else None)
    table = {name: evaluate_lifter(model, sequences) for name, sequences in evaluations.items()}
    print(f"\n{model.architecture}, receptive field {model.receptive_field}, "
          f"{sum(p.numel() for p in model.parameters())} parameters, {history.seconds / 60:.1f} min")
    print(f"{'evaluation':38s} {'frames':>7s} {'MPJPE':>7s} {'P-MPJPE':>8s} {'N-MPJPE':>8s}  (mm)")
    for name, m in table.items():
        print(f"{name:38s} {m['frames']:7d} {m['mpjpe']:7.1f} {m['p_mpjpe']:8.1f} {m['n_mpjpe']:8.1f}")
    command = "python tools/train_lifter.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    save_lifter(args.out, model, metrics=table, command=command, steps=args.steps)
    with atomic_output(args.out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"command": command, "metrics": table, "train": history.train,
                                   "evals": history.evals, "seconds": history.seconds}, indent=1))
    plot_history(history, args.out.with_suffix(".png"), title=f"lifter {model.architecture.filter_widths} "
                 f"{'causal' if model.architecture.causal else 'symmetric'}")
    print(f"wrote {args.out}, {args.out.with_suffix('.json')}, {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
