"""Per-track cues that might tell a person from a person-shaped object, on the shared clips.

    python tools/person_cues.py [--clips har-stand har-wave ...] [--frames N] [--out cues.npz]

Runs ``posestream run``'s tracking (defaults of ``configs/run.yaml``) on each clip and, beside
the shipped BlazePose graph, the *full* converted graph on the same crops, to read the heads the
runtime prunes (segmentation ``Identity_2``, heatmaps ``Identity_3``, world landmarks
``Identity_4``). Per reported person and frame it records the detector score, pose flag,
keypoint scores, the segmentation mask's mean inside the hull of the confident keypoints, the
fraction of confident keypoints on the mask, and the keypoints; per track it prints medians and
the keypoint motion (median frame-to-frame displacement of the trunk, in torso lengths / s).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]

from posestream.engines.transforms import crop_warp_matrix, warp_crops  # noqa: E402
from posestream.stream.capture.files import open_source  # noqa: E402
from posestream.stream.config import RunConfig  # noqa: E402
from posestream.stream.pipeline import PosePipeline, PoseStream  # noqa: E402

CLIPS = {
    "har-wave": "har-wave/wave.mp4",
    "har-stand": "har-stand/stand.mp4",
    "falldet-sit": "falldet-sit/sit.mp4",
    "falldet-walk": "falldet-walk/walk.mp4",
    "pose_1": "tfjs-pose-testdata/pose_1.mp4",
    "pose_squats": "tfjs-pose-testdata/pose_squats.mp4",
    "hand-reach": "mediapipe-hand-reach/test_video.mp4",
    "intel": "intel-one-by-one-person/one-by-one-person-detection.mp4",
    "vtest": "opencv-vtest/vtest.avi",
    "openpose": "openpose-video/video.avi",
}
COCO = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]


def _sig(x):
    return 1 / (1 + np.exp(-np.clip(x, -80, 80)))


class FullHeads:
    """The full BlazePose graph run on the crops the shipped estimator uses; features per crop."""

    def __init__(self, path: Path):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def features(self, image, rois):
        out = []
        for r in rois:
            m = crop_warp_matrix(r[:2], (r[2], r[2]), r[3], (256, 256))
            t = warp_crops(image, [m], (256, 256)).astype(np.float32) / 255.0
            lm, _, seg, heat, world = self.session.run(None, {"input_1": t})  # landmarks, flag, mask, heatmap, world
            lm = lm.reshape(39, 5)
            score = _sig(lm[:33, 3]) * _sig(lm[:33, 4])
            mask = _sig(seg[0, :, :, 0])
            pts = lm[:33, :2]
            ok = score[COCO] >= 0.5
            p = pts[COCO][ok]
            if len(p) >= 3:
                hull = cv2.convexHull(p.astype(np.float32)).astype(np.int32)
                region = np.zeros((256, 256), np.uint8)
                cv2.fillConvexPoly(region, hull, 1)
                inside = mask[region > 0].mean() if region.any() else np.nan
            else:
                inside = np.nan
            q = np.clip(np.round(pts[COCO]).astype(int), 0, 255)
            on = (mask[q[:, 1], q[:, 0]] > 0.5)[ok].mean() if ok.any() else np.nan
            w = world.reshape(39, 3)[:33]
            out.append([inside, on, mask.mean(), float(heat.max()), _sig(lm[:33, 3])[COCO].mean(),
                        _sig(lm[:33, 4])[COCO].mean(), *w[COCO].ravel()])
        return np.asarray(out, np.float32).reshape(len(rois), -1)


def people_with_crop_values(pipeline, config, video: Path, frames: int, stash: dict):
    """Track ``video`` (its first ``frames`` frames; 0: all) and yield ``(result, index, value)``
    for every reported person: ``value`` is what the wrapped estimator put in ``stash`` for the
    crop whose keypoint scores are that person's (keyed by its 33 landmark scores' bytes), None
    when no crop matches. ``stash`` is cleared before each frame."""
    stream = PoseStream(pipeline, config.tracking, classify=None)
    for n, frame in enumerate(open_source(video)):
        if frames and n >= frames:
            break
        stash.clear()
        result = stream(frame)
        for i in range(len(result)):
            value = None
            for key, v in stash.items():
                if np.array_equal(np.frombuffer(key, np.float32)[COCO], result.keypoint_scores[i]):
                    value = v
            yield result, i, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--frames", type=int, default=0)
    parser.add_argument("--out", default="cues.npz")
    args = parser.parse_args()
    shared = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared"))
    config = RunConfig.from_yaml(None)
    pipeline = PosePipeline.from_config(config.pipeline)
    heads = FullHeads(shared / "models" / "blazepose_landmark_full.onnx")
    estimator = pipeline.estimator
    original = estimator._run
    stash = {}

    def run(image, rois):
        points, scores = original(image, rois)
        feats = heads.features(image, rois)
        for s, f in zip(scores, feats):
            stash[s[:33].tobytes()] = f
        return points, scores

    estimator._run = run
    rows = []
    for clip in args.clips:
        for r, i, f in people_with_crop_values(pipeline, config, shared / "media" / CLIPS[clip], args.frames, stash):
            f = f if f is not None else np.full(6 + 51, np.nan, np.float32)
            rows.append(dict(clip=clip, frame=r.frame_id, t=r.pts, track=int(r.track_ids[i]),
                             box=r.bboxes[i], score=float(r.bbox_scores[i]), kp=r.keypoints[i],
                             kps=r.keypoint_scores[i], w=r.width, h=r.height, f=f))
        print(clip, "done", flush=True)
    np.savez_compressed(args.out, rows=np.array(rows, dtype=object))
    summarise(rows)


def summarise(rows) -> None:
    print(f"{'clip':12s} {'id':>3s} {'n':>4s} {'box x1':>6s} {'w×h':>9s} {'det':>5s} {'kps':>5s} {'segIn':>5s} "
          f"{'onMask':>6s} {'segAll':>6s} {'vis':>5s} {'pres':>5s} {'motion':>6s}")
    keys = sorted({(r["clip"], r["track"]) for r in rows}, key=lambda k: (list(CLIPS).index(k[0]), k[1]))
    for clip, tid in keys:
        rs = [r for r in rows if r["clip"] == clip and r["track"] == tid]
        box = np.median([r["box"] for r in rs], axis=0)
        f = np.array([r["f"][:6] for r in rs])
        kp = np.array([r["kp"] for r in rs])
        t = np.array([r["t"] for r in rs])
        torso = np.linalg.norm(kp[:, [5, 6]].mean(1) - kp[:, [11, 12]].mean(1), axis=1)
        trunk = kp[:, [5, 6, 11, 12]].mean(1)
        if len(rs) > 1:
            motion = np.median(np.linalg.norm(np.diff(trunk, axis=0), axis=1) / torso[1:] / np.maximum(np.diff(t), 1e-3))
        else:
            motion = np.nan
        print(f"{clip:12s} {tid:3d} {len(rs):4d} {box[0]:6.0f} {box[2]-box[0]:4.0f}×{box[3]-box[1]:<4.0f} "
              f"{np.median([r['score'] for r in rs]):5.2f} {np.median([r['kps'].mean() for r in rs]):5.2f} "
              f"{np.nanmedian(f[:, 0]):5.2f} {np.nanmedian(f[:, 1]):6.2f} {np.nanmedian(f[:, 2]):6.3f} "
              f"{np.nanmedian(f[:, 4]):5.2f} {np.nanmedian(f[:, 5]):5.2f} {motion:6.2f}  p10 segIn {np.nanpercentile(f[:, 0], 10):.2f}")


if __name__ == "__main__":
    main()
