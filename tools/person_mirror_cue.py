"""Mirror consistency of BlazePose on the pipeline's own crops, per reported track.

    python tools/person_mirror_cue.py FRAMES CLIP [CLIP ...]   (FRAMES 0 = all; clips as in person_cues.py)

Each crop the tracked pipeline runs is also run mirrored (same batch); the mirrored landmarks are
flipped back with left and right swapped and compared with the crop's own by OKS (COCO-17,
keypoints scoring >= 0.5 in both, area of their box). Prints per track the median, mean, 10th
percentile and first three frames. A test-time-augmentation consistency cue: measured here as a
candidate person/non-person gate (it does not separate: see the README's tracking section).
"""
import os
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parent))
from person_cues import CLIPS, COCO
from posestream.stream.capture.files import open_source
from posestream.stream.config import RunConfig
from posestream.stream.pipeline import PosePipeline, PoseStream
from posestream.engines.transforms import crop_warp_matrix, warp_crops
from posestream.engines.layouts import COCO17_SIGMAS

SWAP = [0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 24, 23, 26, 25, 28, 27, 30, 29, 32, 31]
def sig(x): return 1/(1+np.exp(-np.clip(x,-80,80)))
config = RunConfig.from_yaml(None)
pipeline = PosePipeline.from_config(config.pipeline)
est = pipeline.estimator
orig = est._run
stash = {}
def consistency(lm, lmf):
    a = lm[:33, :2]; b = lmf[SWAP, :2].copy(); b[:, 0] = 256 - b[:, 0]
    sa = sig(lm[:33, 3]) * sig(lm[:33, 4]); sb = (sig(lmf[:33, 3]) * sig(lmf[:33, 4]))[SWAP]
    a, b, sa, sb = a[COCO], b[COCO], sa[COCO], sb[COCO]
    vis = (sa >= 0.5) & (sb >= 0.5)
    if vis.sum() < 2: return 0.0
    p = a[vis]; area = np.prod(p.max(0) - p.min(0)) + 1e-6
    k = 2 * np.asarray(COCO17_SIGMAS)[vis]
    d2 = ((a[vis] - b[vis]) ** 2).sum(1)
    return float(np.exp(-d2 / (2 * area * k ** 2)).mean())
def run(image, rois):
    mats = [crop_warp_matrix(r[:2], (r[2], r[2]), r[3], (256, 256)) for r in rois]
    t = warp_crops(image, mats, (256, 256)).astype(np.float32) / 255
    both = np.concatenate([t, t[:, :, ::-1]])
    lm, _ = est.backend.run({"input_1": np.ascontiguousarray(both)}, ["Identity", "Identity_1"])
    lm = lm.reshape(len(both), 39, 5)
    points, scores = orig(image, rois)
    for i, s in enumerate(scores):
        stash[s[:33].tobytes()] = consistency(lm[i], lm[i + len(t)])
    return points, scores
est._run = run
shared = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
clips = sys.argv[2:]
frames = int(sys.argv[1])
rows = []
for clip in clips:
    stream = PoseStream(pipeline, config.tracking, classify=None)
    for n, frame in enumerate(open_source(shared / "media" / CLIPS[clip])):
        if frames and n >= frames: break
        stash.clear()
        r = stream(frame)
        for i in range(len(r)):
            v = np.nan
            for k, c in stash.items():
                if np.array_equal(np.frombuffer(k, np.float32)[COCO], r.keypoint_scores[i]): v = c
            rows.append((clip, r.frame_id, int(r.track_ids[i]), v, r.bboxes[i][0]))
    ts = sorted({t for c, f, t, v, x in rows if c == clip})
    for t in ts:
        v = np.array([x[3] for x in rows if x[0] == clip and x[2] == t])
        first = v[:3]
        print(f"{clip:12s} {t:3d} n={len(v):4d} med {np.nanmedian(v):.2f} mean {np.nanmean(v):.2f} p10 {np.nanpercentile(v,10):.2f} first3 {' '.join(f'{x:.2f}' for x in first)}", flush=True)
