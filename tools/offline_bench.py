"""Offline-analysis speed: skeleton rendering and FID Inception features, frames per second.

    python tools/offline_bench.py [--video PATH] [--frames 100]

Skeleton rendering: ``posestream run``'s keypoints of the clip (the pipeline runs first, not
timed) drawn by :func:`posestream.offline.skeleton.write_skeleton_video` at the source size and
at 512² (drawing + H.264 encoding). FID features: PIL-bicubic resizing to 299² and the FID
Inception-v3 forward pass (random weights: the cost of the standard network, not its values),
batch 16, on the CPU with torch's default threads.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    shared = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(shared / "media" / "har-wave" / "wave.mp4"))
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(shared / "models"))

    import torch

    from posestream.offline.inception import inception_features, random_inception
    from posestream.offline.skeleton import read_results, write_skeleton_video
    from posestream.offline.video_io import read_frames
    from posestream.stream.cli import main as posestream

    work = Path(tempfile.mkdtemp())
    name = Path(args.video).stem
    assert posestream(["run", args.video, "--out", str(work), "--max-frames", str(args.frames), "--quiet"]) == 0
    results = read_results(work / f"{name}.jsonl")
    print(f"input: {args.video}, {len(results)} frames of {results[0].width}x{results[0].height}; "
          f"torch threads {torch.get_num_threads()}")
    for size in (None, 512):
        summary = write_skeleton_video(results, 25.0, work / f"s{size}", name, size=size, progress=False)
        print(f"skeleton rendering at {size or 'source'}{'²' if size else ' size'}: "
              f"{summary.frames / summary.seconds:.0f} frames/s")
    frames, _, _ = read_frames(args.video, max_frames=args.frames)
    model = random_inception(0)
    inception_features(frames[:16], model)  # warm-up
    start = time.perf_counter()
    features = inception_features(frames, model)
    seconds = time.perf_counter() - start
    print(f"FID features (resize to 299² + Inception-v3 pool3): {len(features) / seconds:.1f} frames/s")


if __name__ == "__main__":
    main()
