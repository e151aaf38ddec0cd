"""Tracking quality and speed with the detector every 1, 3, 5, 10 frames, on the shared clips.

    python tools/eval_tracking.py [--intervals 1 3 5 10] [--frames N] [--clips vtest openpose intel]
                                  [--appearance]

Prints, per clip and detection interval: frames per second of detect+pose+track (this machine),
people per frame, distinct tracks, interior births (tracks starting away from the border after
the first frame: fragments or late finds), agreement with the every-frame run (recall,
precision, mean OKS of matched poses), and on the one-person-at-a-time intel clip the
fragments, coverage and false frames against its hand-labelled visits (tests/data).
``--appearance``: per clip, what ``tracking.reid_appearance`` is set against instead — the
distances between one person's trunk-and-thigh colour histograms 1 s apart and between two
people's in one frame (percentiles, and the shares within the setting), on tracks made without
re-identification (``reid_distance`` 0), from the reported people's (smoothed) keypoints where the
tracker uses each frame's raw poses.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from posestream.offline.track_eval import (agreement, appearance_separation, interior_births, load_visits,  # noqa: E402
                                           score_visits)
from posestream.stream.track.appearance import appearance_histograms  # noqa: E402
from posestream.stream.config import RunConfig  # noqa: E402
from posestream.stream.pipeline import PosePipeline, PoseStream  # noqa: E402
from posestream.stream.capture.files import open_source  # noqa: E402
from posestream.stream.track.tracker import TrackerConfig  # noqa: E402

CLIPS = {
    "vtest": "opencv-vtest/vtest.avi",
    "openpose": "openpose-video/video.avi",
    "intel": "intel-one-by-one-person/one-by-one-person-detection.mp4",
    "basketball": "mmaction2-basketball/test_video_structuralize.mp4",
}
VISITS = {"intel": REPO / "tests" / "data" / "intel-one-by-one-visits.csv"}


def run(pipeline: PosePipeline, tracking: TrackerConfig, video: Path, frames: int | None, descriptors=None):
    stream = PoseStream(pipeline, tracking, classify=None)
    results, seconds = [], 0.0
    for frame in open_source(video):
        if frames and len(results) >= frames:
            break
        t0 = time.perf_counter()
        results.append(stream(frame))
        seconds += time.perf_counter() - t0
        if descriptors is not None:
            r = results[-1]
            found = appearance_histograms(frame.image, r.keypoints, r.keypoint_scores, tracking.keypoint_threshold)
            descriptors += [(r.pts, int(t), d) for t, d in zip(r.track_ids, found)]
    return results, len(results) / seconds


def print_appearance(clip: str, pipeline: PosePipeline, tracking: TrackerConfig, video: Path, frames: int | None):
    """The --appearance lines of one clip."""
    descriptors: list = []
    run(pipeline, TrackerConfig(**{**tracking.__dict__, "reid_distance": 0.0}), video, frames, descriptors)
    same, different = appearance_separation(descriptors)
    limit = tracking.reid_appearance
    if not len(same) or not len(different):
        print(f"{clip}: too few pairs ({len(same)} of one person 1 s apart, {len(different)} of two people at once)")
        return
    print(f"{clip}: same person 1 s apart {len(same)} pairs, distance 50/90/95/99th percentile "
          f"{' / '.join(f'{v:.2f}' for v in np.percentile(same, [50, 90, 95, 99]))}, within {limit:g}: "
          f"{np.mean(same <= limit):.3f}; two people in one frame {len(different)} pairs, 1/5/10/50th "
          f"{' / '.join(f'{v:.2f}' for v in np.percentile(different, [1, 5, 10, 50]))}, beyond {limit:g}: "
          f"{np.mean(different > limit):.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intervals", type=int, nargs="+", default=[1, 3, 5, 10])
    parser.add_argument("--frames", type=int, help="first N frames of each clip")
    parser.add_argument("--clips", nargs="+", default=["vtest", "openpose", "intel"], choices=list(CLIPS))
    parser.add_argument("--config", help="YAML settings (configs/run.yaml layout)")
    parser.add_argument("--appearance", action="store_true",
                        help="what tracking.reid_appearance is set against, per clip (instead of the table)")
    args = parser.parse_args()
    media = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared")) / "media"
    config = RunConfig.from_yaml(args.config)
    pipeline = PosePipeline.from_config(config.pipeline)
    intervals = sorted(set([1] + args.intervals))
    if args.appearance:
        for clip in args.clips:
            print_appearance(clip, pipeline, config.tracking, media / CLIPS[clip], args.frames)
        return
    print(f"{'clip':10s} {'N':>3s} {'frames':>6s} {'fps':>6s} {'ppl/fr':>6s} {'tracks':>6s} {'int.births':>10s} "
          f"{'recall':>6s} {'prec':>6s} {'OKS':>5s}   visits: fragments coverage false_frames")
    for clip in args.clips:
        reference = None
        for n in intervals:
            tracking = TrackerConfig(**{**config.tracking.__dict__, "detect_interval": n})
            results, fps = run(pipeline, tracking, media / CLIPS[clip], args.frames)
            reference = results if n == 1 else reference
            tracks, births = interior_births(results)
            agree = agreement(results, reference)
            people = sum(len(r) for r in results) / max(len(results), 1)
            line = (f"{clip:10s} {n:3d} {len(results):6d} {fps:6.1f} {people:6.2f} {tracks:6d} {births:10d} "
                    f"{agree['recall']:6.3f} {agree['precision']:6.3f} {agree['mean_oks']:5.3f}")
            if clip in VISITS:
                v = score_visits(results, load_visits(VISITS[clip]))
                line += f"   {v.visits} visits: {v.fragments} {v.coverage:.3f} {v.false_frames}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
