#!/usr/bin/env python3
"""COCO keypoint AP (OKS, pycocotools) of the posestream pipeline on a COCO-layout folder.

The folder holds ``annotations/person_keypoints_<split>.json`` and ``<split>/`` images (e.g.
``../shared/media/coco-mini``). Each split is scored with the full pipeline (detector boxes)
and with ground-truth boxes, for every crop variant asked for, and one table is printed.

    python tools/eval_coco.py ../shared/media/coco-mini --splits val2017 train2017

Instance score (what AP ranks by): "rescored" = box score × pose score × mean keypoint score
(ground-truth boxes: box score 1), as mmpose's top-down evaluation rescores; "box" = the
detector's box score alone, for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np


from posestream.stream.pose import BlazePoseLandmark  # noqa: E402
from posestream.engines.transforms import apply_affine  # noqa: E402
from posestream.stream.config import PipelineConfig  # noqa: E402
from posestream.stream.pipeline import PosePipeline  # noqa: E402

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR")


def turn(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate an image about its centre by ``degrees`` (counter-clockwise on screen) onto a
    canvas large enough to hold all of it; returns the image and the (2, 3) forward matrix."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    corners = apply_affine(np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64), matrix)
    low, high = corners.min(0), corners.max(0)
    matrix[:, 2] -= low
    size = tuple(int(np.ceil(v)) for v in high - low)
    return cv2.warpAffine(image, matrix, size, borderValue=(0, 0, 0)), matrix


def predict(pipeline: PosePipeline, coco, image_dir: Path, gt_boxes: bool, rescore: bool = True,
            rotate: float = 0.0) -> list[dict]:
    """COCO keypoint results (``[{image_id, category_id, keypoints, score}]``) for every image.

    With ``rotate``, each image is turned by that many degrees first and the keypoints found
    are mapped back by the inverse rotation before scoring (ground-truth boxes: the box
    enclosing the turned ground-truth box).
    """
    results = []
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        image = cv2.imread(str(image_dir / info["file_name"]))
        if image is None:
            raise SystemExit(f"cannot read {image_dir / info['file_name']}")
        matrix = np.array([[1.0, 0, 0], [0, 1, 0]])
        if rotate:
            image, matrix = turn(image, rotate)
        if gt_boxes:
            anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False)) if a["bbox"][2] > 1]
            corners = np.array([[[x, y], [x + w, y], [x, y + h], [x + w, y + h]] for x, y, w, h in
                                (a["bbox"] for a in anns)], np.float64).reshape(-1, 4, 2)
            corners = apply_affine(corners, matrix)
            boxes = np.concatenate([corners.min(1), corners.max(1)], axis=1).astype(np.float32).reshape(-1, 4)
            box_scores = np.ones(len(boxes), np.float32)
        else:
            detections = pipeline.detector(image)
            boxes, box_scores = detections.bboxes, detections.scores
        poses = pipeline.estimator(image, boxes)
        back = cv2.invertAffineTransform(matrix)
        for i in range(len(poses)):
            points = apply_affine(poses.keypoints[i], back)
            keypoints = np.concatenate([points, poses.keypoint_scores[i][:, None]], axis=1)
            score = float(box_scores[i] * (poses.pose_scores[i] * poses.keypoint_scores[i].mean() if rescore else 1))
            results.append({"image_id": image_id, "category_id": 1, "keypoints": keypoints.ravel().tolist(),
                            "score": score})
    return results


def evaluate(coco, results: list[dict]) -> dict[str, float]:
    """COCOeval keypoint stats: AP, AP50, AP75, APm, APl, AR."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        return dict.fromkeys(STAT_NAMES, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        detections = coco.loadRes(results)
        evaluator = COCOeval(coco, detections, "keypoints")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(STAT_NAMES, evaluator.stats[:6]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="COCO-layout folder")
    parser.add_argument("--splits", nargs="+", default=["val2017", "train2017"])
    parser.add_argument("--det", default="yolox-nano")
    parser.add_argument("--pose", default="blazepose-full")
    parser.add_argument("--variants", nargs="+", default=["square", "square-1.0", "aligned"],
                        help="BlazePose crops: square (box-centred, 1.25 × longer side), square-1.0 (no margin), "
                             "aligned (second body-aligned pass); ignored for RTMPose")
    parser.add_argument("--rotate", type=float, nargs="+", default=[0.0],
                        help="also score each image turned by these angles (degrees), keypoints mapped back")
    parser.add_argument("--out", type=Path, help="write the table as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "models"))

    from pycocotools.coco import COCO

    base = PosePipeline.from_config(PipelineConfig(detector=args.det, pose=args.pose, det_score_threshold=0.05))
    rows = []
    for split in args.splits:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(args.root / "annotations" / f"person_keypoints_{split}.json"))
        people = len(coco.getAnnIds(iscrowd=False))
        variants = args.variants if isinstance(base.estimator, BlazePoseLandmark) else ["default"]
        for variant in variants:
            if isinstance(base.estimator, BlazePoseLandmark):
                base.estimator.refine = variant == "aligned"
                base.estimator.padding = 1.0 if variant == "square-1.0" else 1.25
            for angle in args.rotate:
                settings = ((False, False), (False, True), (True, True)) if angle == 0 else ((False, True), (True, True))
                for gt_boxes, rescore in settings:
                    stats = evaluate(coco, predict(base, coco, args.root / split, gt_boxes, rescore, angle))
                    rows.append({"split": split, "images": len(coco.getImgIds()), "people": people,
                                 "crop": variant, "turn": angle, "boxes": "ground truth" if gt_boxes else args.det,
                                 "score": "rescored" if rescore else "box", **stats})
    header = f"{'split':9s} {'imgs':>4s} {'people':>6s} {'crop':11s} {'turn':>4s} {'boxes':13s} {'score':9s}" + " ".join(f"{s:>6s}" for s in STAT_NAMES)
    print(f"pose model {args.pose}, detector {args.det}")
    print(header)
    for r in rows:
        print(f"{r['split']:9s} {r['images']:4d} {r['people']:6d} {r['crop']:11s} {r['turn']:4.0f} {r['boxes']:13s} {r['score']:9s}"
              + " ".join(f"{r[s]:6.3f}" for s in STAT_NAMES))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
