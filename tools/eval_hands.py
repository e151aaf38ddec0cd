"""Hand keypoint accuracy against COCO-WholeBody ground truth, and what hands cost.

    python tools/eval_hands.py                       # the 4 shared COCO-WholeBody images
    python tools/eval_hands.py --clip VIDEO --frames 100   # + body-only vs with-hands ms/frame

Accuracy: PCK@0.2 of each valid hand (``lefthand_valid`` / ``righthand_valid``) over its labelled
points, a point being correct when its error, divided per axis by the ground-truth hand box's
width and height (mmpose ``PCKAccuracy`` with ``norm_item='bbox'``), is under 0.2; also the mean
error in pixels. Three ways of finding the hand:

* ``gt-box``: the pipeline's BlazePose on the ground-truth person box, the hand cropped from its
  wrist/index/pinky points (as ``posestream run --hands``), first pass + aligned second pass;
* ``det-box``: the same on the detector's box matched to the person (IoU ≥ 0.5; a person without
  one counts every point wrong);
* ``gt-crop``: the hand model on a crop around the ground-truth hand points (an upper bound: what
  the model does with a perfect crop);
* ``pipeline`` / ``pipeline+palms``: what ``posestream run --hands`` reports for the person of the
  ground-truth box (:meth:`PosePipeline.add_hands`, size gate lifted): a hand not ``ok`` counts
  every point wrong; without and with the palm detector (``pipeline.palm_detection``), which
  looks for the hands whose wrist the body does not see;
* ``palm-box``: the palm detector alone on the ground-truth person box, the hand model on the
  crops of its palms, the hand of the annotated side (by the model's handedness, most present first).

The size gate (``pipeline.min_hand_size``) is lifted here so that every hand is measured; how
many hands it would have kept is printed beside. Cost: ms per hand crop of the hand model on
this machine's cores (batches of 1 and 4 crops; a hand seen for the first time takes two crops,
a tracked one one), and with ``--clip`` the mean ms per frame of the tracked pipeline with hands
off and on (gate lifted, so that the hand model really runs).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared"))
WHOLEBODY = SHARED / "media" / "mmpose-testdata" / "coco" / "test_coco_wholebody.json"


def pck(pred: np.ndarray, gt: np.ndarray, box: list[float], threshold: float = 0.2) -> tuple[int, int, float]:
    """(correct points, labelled points, summed pixel error) of one hand.

    Args:
        pred: (21, 2) predicted pixels (NaN: missed). gt: (21, 3) x, y, visibility.
        box: the ground-truth hand box [x, y, w, h] pixels.
    """
    labelled = gt[:, 2] > 0
    error = np.linalg.norm(pred - gt[:, :2], axis=1)
    normalised = np.linalg.norm((pred - gt[:, :2]) / np.maximum(box[2:], 1.0), axis=1)
    correct = np.where(np.isfinite(normalised), normalised < threshold, False)
    return int((correct & labelled).sum()), int(labelled.sum()), float(np.nan_to_num(error[labelled], nan=0).sum())


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo, hi = np.maximum(a[:2], b[:, :2]), np.minimum(a[2:], b[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda x: np.prod(x[..., 2:] - x[..., :2], axis=-1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def evaluate(pipeline, min_hand_size: float) -> dict:
    """PCK per way of finding the hand (module docstring) on the shared COCO-WholeBody images."""
    from posestream.stream.pose.hands import hand_rois_from_body, hand_rois_from_landmarks

    data = json.loads(WHOLEBODY.read_text())
    files = {i["id"]: i["file_name"] for i in data["images"]}
    modes = ("gt-box", "det-box", "gt-crop", "pipeline", "pipeline+palms", "palm-box")
    totals = {m: [0, 0, 0.0, 0] for m in modes}  # correct, labelled, px error, present
    sizes, gated = [], 0
    hands = pipeline.hands
    for image_id, name in files.items():
        image = cv2.imread(str(WHOLEBODY.parent / name))
        detected, _ = pipeline.detect(image)
        for ann in data["annotations"]:
            if ann["image_id"] != image_id:
                continue
            x, y, w, h = ann["bbox"]
            gt_box = np.array([x, y, x + w, y + h], np.float32)
            boxes = {"gt-box": gt_box}
            if len(detected):
                ious = _iou(gt_box, detected)
                if ious.max() >= 0.5:
                    boxes["det-box"] = detected[int(ious.argmax())]
            for s, side in enumerate(("left", "right")):
                if not ann[f"{side}hand_valid"]:
                    continue
                gt = np.asarray(ann[f"{side}hand_kpts"], np.float64).reshape(21, 3)
                box = ann[f"{side}hand_box"]
                sizes.append(max(box[2:]))
                for mode in ("gt-box", "det-box"):
                    if mode not in boxes:
                        c, n, _ = pck(np.full((21, 2), np.nan), gt, box)
                        totals[mode][1] += n
                        continue
                    poses = pipeline.estimator(image, boxes[mode][None])
                    wrist, index, pinky = poses.hand_points[0, s]
                    middle = (2 * index + pinky) / 3
                    if mode == "gt-box" and 2 * np.linalg.norm(middle - wrist) < min_hand_size:
                        gated += 1
                    crops = hands(image, hand_rois_from_body(wrist[None], index[None], pinky[None]))
                    c, n, e = pck(crops.keypoints[0], gt, box)
                    totals[mode] = [totals[mode][0] + c, totals[mode][1] + n, totals[mode][2] + e,
                                    totals[mode][3] + int(crops.presence[0] >= pipeline.config.hand_presence_threshold)]
                crops = hands.run(image, hand_rois_from_landmarks(gt[None, :, :2]))
                c, n, e = pck(crops.keypoints[0], gt, box)
                totals["gt-crop"] = [totals["gt-crop"][0] + c, totals["gt-crop"][1] + n, totals["gt-crop"][2] + e,
                                     totals["gt-crop"][3] + int(crops.presence[0] >= pipeline.config.hand_presence_threshold)]
                for mode, (points, present) in _pipeline_hands(pipeline, image, gt_box, s).items():
                    c, n, e = pck(points, gt, box)
                    totals[mode] = [totals[mode][0] + c, totals[mode][1] + n, totals[mode][2] + e,
                                    totals[mode][3] + int(present)]
    return {"hands": len(sizes), "hand_box_px": (min(sizes), float(np.median(sizes)), max(sizes)),
            "under_gate": gated, "modes": totals}


def _pipeline_hands(pipeline, image: np.ndarray, person_box: np.ndarray, side: int) -> dict:
    """Mode → ((21, 2) keypoints, NaN where not reported ``ok``; present) of hand ``side`` (0 left,
    1 right) of the person in ``person_box``: the pipeline's hands without and with palms, and the
    palm detector's hands alone."""
    from dataclasses import replace

    from posestream.stream.capture.files import Frame
    from posestream.stream.pipeline import PosePipeline, _frame_result
    from posestream.stream.pose.palms import hand_rois_from_palms

    out = {}
    config = replace(pipeline.config, min_hand_size=0.0)
    frame = Frame(image=image, frame_id=1, pts=0.0)
    poses = pipeline.estimator(image, person_box[None])
    for mode, palms in (("pipeline", None), ("pipeline+palms", pipeline.palms)):
        if mode == "pipeline+palms" and palms is None:
            continue
        local = PosePipeline(None, pipeline.estimator, config, pipeline.hands, palms)
        result = _frame_result(frame, person_box[None], np.ones(1, np.float32), poses, np.array([0]), {})
        local.add_hands(image, result, poses, np.array([0]))
        out[mode] = (result.hand_keypoints[0, side], result.hand_status[0, side] == "ok")
    if pipeline.palms is not None:
        found = pipeline.palms(image, person_box)
        crops = pipeline.hands(image, hand_rois_from_palms(found.boxes, found.keypoints))
        fits = np.flatnonzero((crops.right >= 0.5) == bool(side))
        best = fits[np.argmax(crops.presence[fits])] if len(fits) else None
        out["palm-box"] = ((crops.keypoints[best], crops.presence[best] >= config.hand_presence_threshold)
                           if best is not None else (np.full((21, 2), np.nan), False))
    return out


def cost_per_crop(hands, repeats: int = 20) -> dict[int, float]:
    """Median ms per crop of the hand model at batch sizes 1 and 4 (crops of a grey image)."""
    image = np.full((480, 640, 3), 128, np.uint8)
    out = {}
    for batch in (1, 4):
        rois = np.tile(np.array([[320, 240, 120, 0.0]], np.float32), (batch, 1))
        hands.run(image, rois)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            hands.run(image, rois)
            times.append((time.perf_counter() - t0) * 1e3 / batch)
        out[batch] = float(np.median(times))
    return out


def palm_cost(palms, repeats: int = 20) -> float:
    """Median ms of one palm detector call (crop, model, decoding) on a person box of a video frame."""
    from posestream.stream.capture.files import open_source

    clip = SHARED / "media" / "mediapipe-hand-reach" / "test_video.mp4"
    image = next(iter(open_source(str(clip)))).image if clip.exists() else np.full((360, 640, 3), 128, np.uint8)
    box = np.array([200, 60, 300, 270], np.float32)
    palms(image, box)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        palms(image, box)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def clip_cost(config, video: str, frames: int) -> dict[str, float]:
    """Mean ms per frame (detect + pose + track + hands) of the tracked pipeline, hands off and on."""
    from dataclasses import replace

    from posestream.stream.capture.files import open_source
    from posestream.stream.pipeline import PosePipeline, PoseStream

    out = {}
    for label, on in (("body-only", False), ("with-hands", True)):
        pipeline = PosePipeline.from_config(replace(config, hands=on, min_hand_size=0.0))
        stream = PoseStream(pipeline, classify=None)
        totals, count, ok = 0.0, 0, 0
        for frame in open_source(video):
            if count >= frames:
                break
            result = stream(frame)
            totals += sum(result.timings.get(k, 0.0) for k in ("detect", "pose", "track", "hands"))
            if result.hand_status is not None:
                ok += int((result.hand_status == "ok").sum())
            count += 1
        out[label] = totals / max(count, 1)
        if on:
            out["ok hands per frame"] = ok / max(count, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", help="a one-person video for the body-only vs with-hands cost per frame")
    parser.add_argument("--frames", type=int, default=100, help="frames of --clip (default 100)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: one per core)")
    args = parser.parse_args()
    os.environ.setdefault("POSESTREAM_MODEL_DIR", str(SHARED / "models"))
    from dataclasses import replace

    from posestream.stream.config import PipelineConfig
    from posestream.stream.pipeline import PosePipeline

    config = PipelineConfig(hands=True, threads=args.threads)
    pipeline = PosePipeline.from_config(config)
    result = evaluate(pipeline, config.min_hand_size)
    lo, med, hi = result["hand_box_px"]
    print(f"COCO-WholeBody ({WHOLEBODY.parent.name}/{WHOLEBODY.name}): {result['hands']} valid hands, "
          f"hand box longer side {lo:.0f}/{med:.0f}/{hi:.0f} px (min/median/max); "
          f"{result['under_gate']} of them under the {config.min_hand_size:g} px gate (lifted here)")
    for mode, (correct, labelled, error, present) in result["modes"].items():
        print(f"  {mode:14s} PCK@0.2(hand box) {correct / max(labelled, 1):.3f} ({correct}/{labelled} points), "
              f"mean error {error / max(labelled, 1):.1f} px, presence >= {config.hand_presence_threshold:g} "
              f"on {present}/{result['hands']} hands")
    if pipeline.palms is not None:
        print(f"palm detector: {palm_cost(pipeline.palms):.1f} ms per person box (letterbox, model, decoding, "
              f"{os.cpu_count()} cores, threads={args.threads or 'all'})")
    per_crop = cost_per_crop(pipeline.hands)
    print(f"hand model: {per_crop[1]:.1f} ms per crop alone, {per_crop[4]:.1f} ms per crop in a batch of 4 "
          f"({os.cpu_count()} cores, threads={args.threads or 'all'}); a new hand takes 2 crops, a tracked one 1")
    if args.clip:
        cost = clip_cost(replace(config, hands=False), args.clip, args.frames)
        print(f"{Path(args.clip).name}, first {args.frames} frames, tracked, ms/frame (detect+pose+track+hands): "
              + ", ".join(f"{k} {v:.1f}" for k, v in cost.items()))


if __name__ == "__main__":
    main()
