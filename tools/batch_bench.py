"""posestream batch scaling: frames/s of a plain in-process loop, one Ray actor, and N Ray actors.

    python tools/batch_bench.py [VIDEOS…] [--workers 2]

Default input: the seven labelled shared clips (``$POSESTREAM_SHARED/media``). Each
configuration processes every video once (no annotated video: the pipeline's own cost) into a
fresh folder; ONNX Runtime threads per worker = cores / workers. Prints frames/s, the ratio of
N actors to N × one actor, and Ray's overhead for one worker against the plain loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    shared = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared"))
    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(shared / "models"))
    sys.path.insert(0, str(REPO / "tools"))
    from eval_classify import shared_pairs

    from posestream.offline.batch import collect_jobs, run_batch
    from posestream.stream.config import RunConfig

    videos = args.videos or [str(v) for v, _ in shared_pairs()]
    config = RunConfig.from_yaml(None, {})
    rows = {}
    one_thread = RunConfig.from_yaml(None, {"pipeline": {"threads": 1}})
    for name, workers, use_ray, cfg in (("plain loop, 1 worker", 1, False, config), ("Ray, 1 actor", 1, True, config),
                                        ("Ray, 1 actor, 1 thread", 1, True, one_thread),
                                        (f"Ray, {args.workers} actors", args.workers, True, config)):
        out = Path(tempfile.mkdtemp())
        jobs = collect_jobs(videos, out)
        counts = run_batch(jobs, cfg, out, workers=workers, options={"write_video": False}, progress=False,
                           use_ray=use_ray)
        rows[name] = (counts["frames"], counts["seconds"], counts["frames"] / counts["seconds"])
        print(f"{name:24s} {counts['frames']:6d} frames in {counts['seconds']:6.1f} s: {rows[name][2]:6.1f} frames/s "
              f"({counts['ok']} ok, {counts['failed']} failed)", flush=True)
    plain, ray1, ray1t, rayn = rows.values()
    print(f"Ray, 1 actor: {ray1[2] / plain[2]:.2f} of the plain loop's frames/s ({ray1[1] - plain[1]:+.1f} s, "
          "mostly starting Ray)")
    print(f"{args.workers} actors ({os.cpu_count()} cores, {max(1, (os.cpu_count() or 1) // args.workers)} thread(s) each) vs {args.workers} x one "
          f"1-thread actor: {rayn[2] / (args.workers * ray1t[2]):.2f}; vs one actor with every core: "
          f"{rayn[2] / ray1[2]:.2f}x ({len(videos)} videos)")


if __name__ == "__main__":
    main()
