"""How far apart hips and shoulders are, in torso lengths: synthetic bodies against real ones.

    python tools/body_widths.py [RESULTS.jsonl ...]

A pose model's hip and shoulder keypoints mark joint centres, which lie closer together than the
body's breadths over the skin (Winter's 0.191 H hips, 0.259 H shoulders). Prints the median hip
width and shoulder width (3D distances) over the torso (shoulder centre to hip centre) of:
the shared CMU motion capture (the lifter's training data), the procedural bodies
(offline/synthetic_motion.py, standing and seated), the sweep's bodies (offline/classify_sweep.py)
and the CMU Panoptic reconstructions (offline/panoptic.py); and, for each RESULTS file (JSON lines
of tracked frames, e.g. the caches ``tools/eval_classify.py --cache DIR`` writes), the same
ratios of the pose model's 2D keypoints of people seen from the front or back (shoulders, hips
scored ≥ 0.7, shoulders at least half a torso apart in the image, where foreshortening of the
widths is small).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from posestream.offline.classify_sweep import body
from posestream.offline.mocap import coco17_points, load_mocap_cached
from posestream.offline.panoptic import load_bodies
from posestream.offline.synthetic_motion import Body, joints, seated, standing


def ratios(coco: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 17, D) COCO-17 points → hip width / torso, shoulder width / torso, each (N,)."""
    torso = np.linalg.norm((coco[:, 5] + coco[:, 6]) / 2 - (coco[:, 11] + coco[:, 12]) / 2, axis=-1)
    return (np.linalg.norm(coco[:, 11] - coco[:, 12], axis=-1) / torso,
            np.linalg.norm(coco[:, 5] - coco[:, 6], axis=-1) / torso)


def line(name: str, coco) -> None:
    """Print one row: ``name``, how many bodies of (N, 17, D) COCO-17 ``coco`` (any unit; NaN
    joints left out) and the medians of :func:`ratios` and of hips / shoulders."""
    hips, shoulders = ratios(np.asarray(coco, np.float64))
    keep = np.isfinite(hips) & np.isfinite(shoulders)
    print(f"{name:44s} {keep.sum():6d}  {np.median(hips[keep]):5.2f}  {np.median(shoulders[keep]):5.2f}  "
          f"{np.median(hips[keep] / shoulders[keep]):5.2f}")


def main() -> None:
    shared = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    print(f"{'source':44s} {'bodies':>6s}  {'hips':>5s}  {'shoulders':>5s}  hips/shoulders  (medians, torso lengths)")
    mocap_dir = shared / "mocap"
    if mocap_dir.is_dir():
        clips = load_mocap_cached(mocap_dir, None)
        line("CMU motion capture (every 30th frame)", np.concatenate([coco17_points(c.joints[::30]) for c in clips]))
    rng = np.random.default_rng(0)
    line("procedural bodies, standing", [coco17_points(joints(Body.random(rng), standing(rng))) for _ in range(200)])
    line("procedural bodies, seated", [coco17_points(joints(Body.random(rng), seated(rng))) for _ in range(200)])
    line("sweep bodies, standing", [body("standing", rng) for _ in range(200)])
    for scene in sorted((shared / "media/mmpose-testdata/panoptic_body3d").glob("*/hdPose3d_stage1_coco19")):
        bodies = [b.keypoints for f in sorted(scene.glob("*.json")) for b in load_bodies(f)]
        line(f"CMU Panoptic {scene.parent.name}", bodies)
    for path in sys.argv[1:]:
        seen = []
        with open(path) as f:
            for row in f:
                for instance in json.loads(row)["instances"]:
                    k, s = np.asarray(instance["keypoints"]), np.asarray(instance["keypoint_scores"])
                    if s[[5, 6, 11, 12]].min() >= 0.7 and ratios(k[None])[1][0] > 0.5:  # shoulders apart
                        seen.append(k)
        if seen:
            line(f"pose model: {Path(path).stem[:32]}", np.asarray(seen))
        else:
            print(f"{Path(path).stem[:44]:44s} no one seen from the front")


if __name__ == "__main__":
    main()
