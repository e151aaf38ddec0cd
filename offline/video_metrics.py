"""``posestream metrics REAL GENERATED --out DIR``: how good is a generated pose video?

Three groups of numbers, written flat to ``DIR/metrics.json`` (atomically) and printed as a table:

1. **FID and KID** between the frames of REAL and GENERATED (:mod:`posestream.offline.fid`): the
   real frames are resized and centre-cropped to the generated size first
   (:class:`posestream.offline.align.ResizeCrop`, the seed workflow of FOLLOW_YOUR_POSE.md §6),
   then every frame goes to 299×299 with PIL bicubic (clean-fid) and through the standard FID
   Inception-v3 (:mod:`posestream.offline.inception`; ``fid_network`` says which weights).
   Below 2048 frames per side FID is biased upwards (``fid_biased``); read KID beside it.
2. **Pose fidelity** (``--skeleton``; :mod:`posestream.offline.pose_fidelity`): posestream's own
   pose pipeline on each generated frame against the skeleton frame that drove it
   (``stride · i``): ``pck`` (PCK@0.1 of the torso), ``oks``, ``person_found``,
   ``joint_error_px``; with ``--input`` the same for the original input against its own
   skeleton (``input_*``, the upper bound).
3. **Temporal consistency**: ``temporal_diff_*``, the mean absolute difference of consecutive
   frames (0–255 per channel value); ``jitter_px_*``, the mean second difference of the matched
   person's keypoints (pixels of the generated frame per frame², see
   :func:`posestream.offline.pose_fidelity.keypoint_jitter`).

Keys that do not apply (no ``--skeleton``, no ``--input``) are null; ``n_real`` and
``n_generated`` are always there. torch is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

#: Joint names of COCO-17, for the table.
_JOINTS = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
           "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
JITTER_DEFINITION = "mean |p(t+1) - 2 p(t) + p(t-1)| (second difference), px of the generated frame per frame^2"
TEMPORAL_DEFINITION = "mean |frame(t+1) - frame(t)| over pixels and channels, 0-255"


def _frame_size(frames: list[np.ndarray], what: str) -> tuple[int, int]:
    sizes = {f.shape[:2] for f in frames}
    if len(sizes) != 1:
        raise ValueError(f"{what}: frames of several sizes ({', '.join(f'{w}x{h}' for h, w in sorted(sizes))})")
    height, width = sizes.pop()
    return width, height


def temporal_difference(frames: list[np.ndarray], step: int = 1) -> float | None:
    """Mean absolute difference between frames ``step`` apart, over all pixels and channels, on
    the 0–255 scale (frames (H, W, C) uint8 of one size); None with fewer than ``step + 1``
    frames."""
    if len(frames) <= step:
        return None
    total = 0.0
    for a, b in zip(frames[:-step], frames[step:]):
        total += float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))
    return total / (len(frames) - step)


def compute_metrics(real: str | Path, generated: str | Path, skeleton: str | Path | None = None,
                    input_video: str | Path | None = None, stride: int = 5, inception: str | Path | None = None,
                    allow_random_inception: bool = False, subsets: int = 100, subset_size: int = 1000,
                    pipeline=None, progress: bool = True) -> dict:
    """Every metric of the command as one flat dict (JSON-ready: floats, ints, strings, lists, None).

    Args:
        real, generated: videos, GIFs or frame folders (:func:`posestream.offline.video_io.read_frames`).
        skeleton: the driving skeleton's ``.jsonl`` (pose fidelity when given).
        input_video: the original input video (the upper bound of pose fidelity; needs ``skeleton``).
        stride: generated frame i was driven by skeleton frame stride · i.
        inception: the FID weights file (else the standard lookup of
            :func:`posestream.offline.inception.find_inception_weights`).
        allow_random_inception: use seeded random Inception weights (tests only; the numbers are
            not comparable with papers and ``fid_network`` says so).
        subsets, subset_size: KID protocol (100 × 1000 by default, capped at N).
        pipeline: a :class:`~posestream.stream.pipeline.PosePipeline` (default: the default models).

    Raises:
        FileNotFoundError: a missing input.
        ValueError: unreadable or corrupt inputs, frames of several sizes, fewer than 2 frames a
            side, a skeleton too short for the generated clip, ``--input`` without ``--skeleton``.
        posestream.engines.errors.ModelError: the FID weights (or the pose models) cannot be had.
    """
    from posestream.offline import fid as fidlib
    from posestream.offline.pose_fidelity import frame_mapping
    from posestream.offline.video_io import read_frames

    if stride < 1:
        raise ValueError(f"--stride must be ≥ 1, got {stride}")
    if input_video is not None and skeleton is None:
        raise ValueError("--input needs --skeleton (the input is scored against its own skeleton)")
    generated_frames, _, _ = read_frames(generated)
    real_frames, _, _ = read_frames(real)
    gen_w, gen_h = _frame_size(generated_frames, str(generated))
    real_w, real_h = _frame_size(real_frames, str(real))
    if len(generated_frames) < 2 or len(real_frames) < 2:
        raise ValueError(f"FID needs at least 2 frames a side, got {len(real_frames)} real and "
                         f"{len(generated_frames)} generated")
    if (real_w, real_h) != (gen_w, gen_h):
        to_generated = frame_mapping(real_w, real_h, gen_w, gen_h)
        real_frames = [to_generated.image(f) for f in real_frames]

    from posestream.offline import inception as inc

    if allow_random_inception:
        model, network = inc.random_inception(0), inc.RANDOM_NAME
    else:
        model, network = inc.standard_inception(inception, progress=progress), inc.STANDARD_NAME
    start = time.perf_counter()
    real_features = inc.inception_features(real_frames, model)
    generated_features = inc.inception_features(generated_frames, model)
    feature_seconds = time.perf_counter() - start
    del model

    n_real, n_generated = len(real_features), len(generated_features)
    kid_mean, kid_std = fidlib.kid(real_features, generated_features, subsets=subsets, subset_size=subset_size)
    metrics = {
        "fid": fidlib.fid(real_features, generated_features),
        "fid_biased": min(n_real, n_generated) < fidlib.FID_MIN_SAMPLES,
        "kid_mean": kid_mean, "kid_std": kid_std,
        "kid_subsets": 1 if min(subset_size, n_real, n_generated) == n_real == n_generated else subsets,
        "kid_subset_size": min(subset_size, n_real, n_generated),
        "n_real": n_real, "n_generated": n_generated, "fid_network": network,
        "fid_resize": "real frames resize-and-centre-crop to the generated size (OpenCV area/bicubic), then "
                      "299x299 PIL bicubic per channel in float (clean-fid)",
        "real_size": [real_w, real_h], "generated_size": [gen_w, gen_h],
        "features_per_second": (n_real + n_generated) / feature_seconds if feature_seconds > 0 else None,
        "temporal_diff_generated": temporal_difference(generated_frames),
        "temporal_diff_real": temporal_difference(real_frames),
        "temporal_diff_real_stride": temporal_difference(real_frames, stride),
        "temporal_definition": TEMPORAL_DEFINITION,
        "stride": stride,
    }
    metrics.update(_pose_metrics(generated_frames, skeleton, input_video, stride, pipeline))
    return metrics


def _empty_pose(prefix: str) -> dict:
    return {f"{prefix}pck": None, f"{prefix}oks": None, f"{prefix}person_found": None,
            f"{prefix}joint_error_px": None, f"{prefix}pose_frames": 0, f"{prefix}pck_frames": 0}


def _pose_metrics(generated_frames, skeleton, input_video, stride, pipeline) -> dict:
    from posestream.offline import pose_fidelity as pf

    out = {**_empty_pose(""), **_empty_pose("input_"), "jitter_px_generated": None, "jitter_px_input": None,
           "jitter_definition": JITTER_DEFINITION, "pose_frames_per_second": None, "pck_threshold": None}
    if skeleton is None:
        return out
    gen_h, gen_w = generated_frames[0].shape[:2]
    driving = pf.load_skeleton(skeleton)
    mapping = pf.skeleton_mapping(skeleton, driving, gen_w, gen_h)
    reference = pf.driving_reference(driving, mapping, len(generated_frames), stride, gen_w, gen_h)
    input_frames = None
    if input_video is not None:
        from posestream.offline.video_io import read_frames

        frames, _, _ = read_frames(input_video, max_frames=stride * (len(generated_frames) - 1) + 1)
        if frames[0].shape[:2] != (driving.height, driving.width):
            raise ValueError(f"--input is {frames[0].shape[1]}x{frames[0].shape[0]}, its skeleton "
                             f"{driving.width}x{driving.height}: not the video the skeleton was made from")
        input_frames = frames[::stride]
    if pipeline is None:
        from posestream.stream.config import RunConfig
        from posestream.stream.pipeline import PosePipeline

        config = RunConfig.from_yaml(None)
        config.check_models()
        pipeline = PosePipeline.from_config(config.pipeline)
    generated = pf.pose_fidelity(generated_frames, reference, pipeline)
    out.update(generated.summary())
    out["jitter_px_generated"] = pf.keypoint_jitter(generated.keypoints)
    out["pose_frames_per_second"] = len(generated_frames) / generated.seconds if generated.seconds > 0 else None
    out["pck_threshold"] = f"{pf.PCK_ALPHA} x torso (shoulder centre to hip centre of the driving pose)"
    if input_frames is not None:
        upper_reference = pf.driving_reference(driving, mapping, len(input_frames), stride, gen_w, gen_h)
        upper = pf.pose_fidelity(input_frames, upper_reference, pipeline, mapping=mapping)
        out.update(upper.summary("input_"))
        out["jitter_px_input"] = pf.keypoint_jitter(upper.keypoints)
    return out


def _json_ready(value):
    """NaN/inf → None, numpy scalars → Python, recursively (metrics.json is strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_metrics(metrics: dict, out_dir: str | Path) -> Path:
    """Write ``out_dir/metrics.json`` atomically (strict JSON, NaN as null); returns the path."""
    from posestream.engines.files import atomic_output

    path = Path(out_dir) / "metrics.json"
    text = json.dumps(_json_ready(metrics), indent=2, allow_nan=False)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text + "\n")
    return path


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(metrics: dict) -> list[str]:
    """The printed table, one string per line."""
    m = metrics
    lines = [f"FID  {_fmt(m['fid'], 2):>10}   N real {m['n_real']}, N generated {m['n_generated']}"
             + ("   (biased: N < 2048, read KID)" if m["fid_biased"] else ""),
             (f"KID  {_fmt(m['kid_mean'], 4):>10} ± {_fmt(m['kid_std'], 4)}   ({m['kid_subsets']} subsets of "
              f"{m['kid_subset_size']})"),
             f"     network: {m['fid_network']}",
             (f"temporal diff (0-255)   generated {_fmt(m['temporal_diff_generated'], 2)}   real "
              f"{_fmt(m['temporal_diff_real'], 2)}   real at stride {m['stride']} "
              f"{_fmt(m['temporal_diff_real_stride'], 2)}")]
    if m.get("pose_frames"):
        lines.append(f"{'pose fidelity':24}{'generated':>12}{'input':>12}")
        for key, label in (("pck", "PCK@0.1 torso"), ("oks", "OKS"), ("person_found", "person found")):
            lines.append(f"{label:24}{_fmt(m[key]):>12}{_fmt(m['input_' + key]):>12}")
        lines.append(f"{'jitter (px/frame²)':24}{_fmt(m['jitter_px_generated'], 2):>12}{_fmt(m['jitter_px_input'], 2):>12}")
        errors, upper = m["joint_error_px"], m["input_joint_error_px"] or [None] * 17
        lines.append("joint error (px)")
        for name, e, u in zip(_JOINTS, errors, upper):
            lines.append(f"  {name:22}{_fmt(e, 1):>12}{_fmt(u, 1):>12}")
    return lines


def _metrics(args: argparse.Namespace) -> int:
    for name in ("real", "generated"):
        if not Path(getattr(args, name)).exists():
            raise FileNotFoundError(f"no such file or folder: {getattr(args, name)}")
    if args.skeleton is not None and not Path(args.skeleton).is_file():
        raise FileNotFoundError(f"no such skeleton file: {args.skeleton}")
    if args.input is not None and not Path(args.input).exists():
        raise FileNotFoundError(f"no such input video: {args.input}")
    metrics = compute_metrics(args.real, args.generated, skeleton=args.skeleton, input_video=args.input,
                              stride=args.stride, inception=args.inception,
                              allow_random_inception=args.allow_random_inception, subsets=args.subsets,
                              subset_size=args.subset_size)
    for line in format_table(metrics):
        print(line)
    print(f"wrote {write_metrics(metrics, args.out)}")
    return 0


def metrics_command(sub) -> None:
    """Add ``posestream metrics REAL GENERATED --out DIR [--skeleton S] [--input VIDEO]
    [--stride 5] [--inception PATH] [--subsets 100 --subset-size 1000]`` to ``sub`` (argparse
    sub-parsers)."""
    parser = sub.add_parser("metrics", parents=[sub.parent_parser],
                            help="FID/KID, pose fidelity and temporal consistency of a generated video (needs torch)")
    parser.add_argument("real", help="real frames: video, GIF or folder of PNG/JPG frames (e.g. the input video)")
    parser.add_argument("generated", help="generated frames: video, GIF or frame folder")
    parser.add_argument("--out", required=True, help="output folder (metrics.json)")
    parser.add_argument("--skeleton", help="the driving skeleton's .jsonl (from posestream run/skeleton): pose fidelity")
    parser.add_argument("--input", help="the original input video: pose fidelity of the input itself (upper bound)")
    parser.add_argument("--stride", type=int, default=5,
                        help="generated frame i was driven by skeleton frame stride*i (default 5)")
    parser.add_argument("--inception", metavar="PATH",
                        help="pt_inception-2015-12-05-6726825d.pth (default: POSESTREAM_MODEL_DIR, the cache, "
                             "then pytorch-fid's release)")
    parser.add_argument("--subsets", type=int, default=100, help="KID subsets (default 100)")
    parser.add_argument("--subset-size", type=int, default=1000, help="KID subset size (default 1000, capped at N)")
    parser.add_argument("--allow-random-inception", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=_metrics)
