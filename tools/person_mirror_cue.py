"""Mirror consistency of BlazePose on the pipeline's own crops, per reported track.

    python tools/person_mirror_cue.py FRAMES CLIP [CLIP ...]   (FRAMES 0 = all; clips as in person_cues.py)

Each crop the tracked pipeline runs is also run mirrored (same batch); the mirrored landmarks are
flipped back with left and right swapped and compared with the crop's own by OKS (COCO-17,
keypoints scoring >= 0.5 in both, area of their box). Prints per track the median, mean, 10th
percentile and first three frames. A test-time-augmentation consistency cue: measured here as a
candidate person/non-person gate (it does not separate: see the README's tracking section).
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from person_cues import CLIPS, COCO, people_with_crop_values  # noqa: E402
from posestream.stream.config import RunConfig
from posestream.stream.pipeline import PosePipeline
from posestream.engines.transforms import crop_warp_matrix, warp_crops
from posestream.engines.layouts import COCO17_SIGMAS

#: BlazePose's 33 landmarks with left and right swapped (its landmark order: nose, then left/right pairs).
SWAP = [0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 24, 23, 26, 25, 28, 27,
        30, 29, 32, 31]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, clipped against overflow."""
    return 1 / (1 + np.exp(-np.clip(x, -80, 80)))


def consistency(landmarks: np.ndarray, mirrored: np.ndarray) -> float:
    """OKS between one crop's (39, 5) BlazePose landmarks and those of the mirrored crop flipped
    back (256-pixel crop units), over COCO-17 points whose visibility × presence is ≥ 0.5 in both."""
    a = landmarks[:33, :2]
    b = mirrored[SWAP, :2].copy()
    b[:, 0] = 256 - b[:, 0]
    sa = sigmoid(landmarks[:33, 3]) * sigmoid(landmarks[:33, 4])
    sb = (sigmoid(mirrored[:33, 3]) * sigmoid(mirrored[:33, 4]))[SWAP]
    a, b, sa, sb = a[COCO], b[COCO], sa[COCO], sb[COCO]
    vis = (sa >= 0.5) & (sb >= 0.5)
    if vis.sum() < 2:
        return 0.0
    p = a[vis]
    area = np.prod(p.max(0) - p.min(0)) + 1e-6
    k = 2 * np.asarray(COCO17_SIGMAS)[vis]
    d2 = ((a[vis] - b[vis]) ** 2).sum(1)
    return float(np.exp(-d2 / (2 * area * k ** 2)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", type=int, help="frames per clip (0: all)")
    parser.add_argument("clips", nargs="+", choices=sorted(CLIPS), help="clip names of person_cues.py")
    args = parser.parse_args()
    config = RunConfig.from_yaml(None)
    pipeline = PosePipeline.from_config(config.pipeline)
    est = pipeline.estimator
    original = est._run  # the estimator's crop call, wrapped to also run each crop mirrored
    stash = {}

    def run(image, rois):
        mats = [crop_warp_matrix(r[:2], (r[2], r[2]), r[3], (256, 256)) for r in rois]
        t = warp_crops(image, mats, (256, 256)).astype(np.float32) / 255
        both = np.concatenate([t, t[:, :, ::-1]])
        lm, _ = est.backend.run({"input_1": np.ascontiguousarray(both)}, ["Identity", "Identity_1"])
        lm = lm.reshape(len(both), 39, 5)
        points, scores = original(image, rois)
        for i, s in enumerate(scores):
            stash[s[:33].tobytes()] = consistency(lm[i], lm[i + len(t)])
        return points, scores

    est._run = run
    shared = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    rows = []
    for clip in args.clips:
        for r, i, value in people_with_crop_values(pipeline, config, shared / "media" / CLIPS[clip], args.frames, stash):
            rows.append((clip, r.frame_id, int(r.track_ids[i]), np.nan if value is None else value))
        for t in sorted({t for c, _, t, _ in rows if c == clip}):
            v = np.array([x[3] for x in rows if x[0] == clip and x[2] == t])
            print(f"{clip:12s} {t:3d} n={len(v):4d} med {np.nanmedian(v):.2f} mean {np.nanmean(v):.2f} "
                  f"p10 {np.nanpercentile(v, 10):.2f} first3 {' '.join(f'{x:.2f}' for x in v[:3])}", flush=True)


if __name__ == "__main__":
    main()
