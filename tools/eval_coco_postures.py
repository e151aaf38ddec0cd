"""Posture rules on real people in still photographs: the shared COCO images, labelled by eye.

    python tools/eval_coco_postures.py [--pipeline]

``tests/data/coco-mini-postures.csv`` labels the 58 people of the shared COCO images
(``media/coco-mini``) whose hips and knees COCO marks: standing, sitting, or ignore (neither, or
not seen). Sports, kitchens, crowds, spectators, children: viewpoints and bodies nobody tuned a
rule on. Prints, per rule variant, the share of labelled people read right and the people read
wrong (label → reading):

* on COCO's own keypoints (marked by people: a keypoint labelled, visible or not, counts as
  seen), the default rules on 2D (a lifter cannot lift a body with keypoints missing) and the
  reference (hafizas) rules;
* with ``--pipeline``, on what ``posestream run`` finds in each image (the configured detector,
  pose model and lifter; each labelled person is the reported person whose box overlaps COCO's
  most, IoU ≥ 0.3, else not found: read ``unknown``): the default rules with depth, on 2D
  alone, and the reference.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from posestream.offline.classify_eval import load_coco_postures
from posestream.offline.classify_sweep import rule_variants
from posestream.stream.classify.rules import classify_instance
from posestream.stream.track.matching import box_iou

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "tests" / "data" / "coco-mini-postures.csv"


def report(name: str, people: list[dict], readings: list[str]) -> None:
    right = [p["posture"] == r for p, r in zip(people, readings)]
    by_class = {c: [ok for p, ok in zip(people, right) if p["posture"] == c] for c in ("standing", "sitting")}
    wrong = [f"{p['file']}:{p['posture']}→{r}" for p, r in zip(people, readings) if p["posture"] != r]
    print(f"{name:11s} {np.mean(right):.3f} of {len(people)}  (standing {sum(by_class['standing'])}/"
          f"{len(by_class['standing'])}, sitting {sum(by_class['sitting'])}/{len(by_class['sitting'])}; "
          f"read sitting when standing: {sum(r == 'sitting' for p, r in zip(people, readings) if p['posture'] == 'standing')})")
    print("            wrong: " + ", ".join(wrong))


def main() -> None:
    shared = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", action="store_true", help="also read what posestream run finds in the images")
    parser.add_argument("--config", help="YAML settings (configs/run.yaml layout) for --pipeline")
    args = parser.parse_args()
    try:
        people = load_coco_postures(LABELS, shared / "media")
    except (OSError, KeyError) as exc:
        parser.error(f"cannot read the labelled COCO people: {exc} (set POSESTREAM_SHARED)")
    print(f"{len(people)} labelled people: {sum(p['posture'] == 'sitting' for p in people)} sitting, "
          f"{sum(p['posture'] == 'standing' for p in people)} standing\n\non COCO's keypoints:")
    for name, config in rule_variants().items():
        if name != "default":  # no lift of bodies with keypoints missing: 2D alone
            report(name, people, [classify_instance(p["keypoints"], p["keypoint_scores"], None, config)[0] for p in people])
    if not args.pipeline:
        return
    from posestream.stream.capture.files import open_source
    from posestream.stream.config import RunConfig
    from posestream.stream.pipeline import PosePipeline, PoseStream

    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(shared / "models"))
    try:
        config = RunConfig.from_yaml(args.config, {})
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    stream = PoseStream(PosePipeline.from_config(config.pipeline), None, classify=None, lifter=config.lift.load(),
                        lift_min_extent=config.lift.min_extent)
    found = []
    for p in people:
        source = open_source(shared / "media" / "coco-mini" / p["split"] / p["file"])
        try:
            result = stream(next(iter(source)))
        finally:
            source.close()
        x, y, w, h = p["bbox"]
        iou = box_iou(np.array([[x, y, x + w, y + h]]), result.bboxes)[0] if len(result) else np.zeros(0)
        found.append((result, int(np.argmax(iou))) if len(iou) and iou.max() >= 0.3 else (None, None))
    print(f"\nwith the pipeline ({config.pipeline.detector}, {config.pipeline.pose}); "
          f"found {sum(r is not None for r, _ in found)} of {len(people)}:")
    for name, rules in rule_variants(config.classify.__dict__).items():
        readings = []
        for result, i in found:
            if result is None:
                readings.append("unknown")
                continue
            lifted = None if result.keypoints_3d is None else result.keypoints_3d[i]
            readings.append(classify_instance(result.keypoints[i], result.keypoint_scores[i], lifted, rules)[0])
        report(name, people, readings)


if __name__ == "__main__":
    main()
