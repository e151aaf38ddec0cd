"""The real models (YOLOX-Nano + BlazePose full) on real shared images and videos, against
independent references: COCO ground truth, MediaPipe's own BlazePose output, MoveNet output,
and the anatomy of a standing person."""

import json

import cv2
import numpy as np
import pytest

from conftest import shared_file
from posestream.engines.layouts import BLAZEPOSE33_TO_COCO17, COCO17_NAMES, COCO17_SIGMAS
from posestream.stream.capture.files import VideoFileSource


def _torso(points):
    return np.linalg.norm((points[5] + points[6]) / 2 - (points[11] + points[12]) / 2)


def _best(result):
    """Keypoints of the highest-scoring person of a FrameResult."""
    return result.keypoints[int(np.argmax(result.bbox_scores))]


def test_standing_person_every_frame_ankles_below_knees_below_hips(real_pipeline):
    video = shared_file("media/har-stand/stand.mp4")
    frames = 0
    for frame in VideoFileSource(video):
        result = real_pipeline(frame)
        assert len(result) >= 1, f"no person in frame {frame.frame_id}"
        k = _best(result)
        shoulders, hips = k[[5, 6], 1].mean(), k[[11, 12], 1].mean()
        knees, ankles = k[[13, 14], 1].mean(), k[[15, 16], 1].mean()
        assert shoulders < hips < knees < ankles, f"frame {frame.frame_id}: y of shoulders {shoulders:.0f} " \
            f"hips {hips:.0f} knees {knees:.0f} ankles {ankles:.0f}"
        frames += 1
    assert frames == 106


def test_oks_against_coco_ground_truth(real_pipeline):
    """With ground-truth boxes, keypoints match COCO annotations (OKS, COCO sigmas); a left/right
    swap would score far lower."""
    root = shared_file("media/mmpose-testdata/coco")
    data = json.loads((root / "test_coco.json").read_text())
    images = {i["id"]: i for i in data["images"]}
    scores = {}
    for ann in data["annotations"]:
        if ann["num_keypoints"] < 8 or ann.get("iscrowd"):
            continue
        image = cv2.imread(str(root / images[ann["image_id"]]["file_name"]))
        x, y, w, h = ann["bbox"]
        pose = real_pipeline.estimator(image, np.array([[x, y, x + w, y + h]], np.float32))
        gt = np.array(ann["keypoints"], np.float64).reshape(17, 3)
        visible = gt[:, 2] > 0
        d2 = ((pose.keypoints[0] - gt[:, :2]) ** 2).sum(1)
        oks = np.exp(-d2 / (2 * ann["area"] * (2 * COCO17_SIGMAS) ** 2))[visible].mean()
        scores.setdefault(ann["image_id"], []).append(oks)
    all_scores = np.concatenate([v for v in scores.values()])
    assert len(all_scores) == 12
    assert all_scores.mean() > 0.65, all_scores.round(3)
    assert scores[785][0] > 0.85  # one skier, fully visible


def test_agrees_with_mediapipe_blazepose_on_squats(real_pipeline):
    """tfjs-models' expected BlazePose-33 output for pose_squats.mp4 (MediaPipe's own detector and
    ROI tracking): our COCO-17 keypoints lie within 10% of the torso length of it."""
    video = shared_file("media/tfjs-pose-testdata/pose_squats.mp4")
    reference = np.array(json.loads(shared_file("media/tfjs-pose-testdata/pose_squats.full.json").read_text()))
    reference = reference[:, list(BLAZEPOSE33_TO_COCO17), :2]
    errors = []
    for frame in VideoFileSource(video):
        result = real_pipeline(frame)
        assert len(result), f"no person in frame {frame.frame_id}"
        ref = reference[frame.frame_id - 1]
        errors.append(np.linalg.norm(_best(result) - ref, axis=1) / _torso(ref))
    errors = np.array(errors)
    assert errors.shape == (65, 17)
    assert (errors < 0.1).mean() > 0.9
    assert (errors < 0.2).mean() > 0.98


def test_agrees_with_movenet_on_pose_1(real_pipeline):
    """tfjs-models' expected MoveNet COCO-17 output for pose_1.mp4: a different model, so a looser bound."""
    video = shared_file("media/tfjs-pose-testdata/pose_1.mp4")
    reference = json.loads(shared_file("media/tfjs-pose-testdata/pose_1.json").read_text())
    errors = []
    for frame in VideoFileSource(video):
        result = real_pipeline(frame)
        assert len(result), f"no person in frame {frame.frame_id}"
        ref = np.array([[reference[frame.frame_id - 1][n]["x"], reference[frame.frame_id - 1][n]["y"]]
                        for n in COCO17_NAMES])
        errors.append(np.linalg.norm(_best(result) - ref, axis=1) / _torso(ref))
    errors = np.array(errors)
    assert (errors < 0.2).mean() > 0.9


def test_aligned_second_pass_follows_a_tilted_body(real_pipeline):
    """On the image turned by 45°, keypoints mapped back by the known inverse rotation land near
    those found on the upright image — within 8% of the torso length with the body-aligned
    second pass, and at least twice as close as with the upright square crop alone."""
    from posestream.stream.pose import BlazePoseLandmark
    from posestream.engines.transforms import apply_affine

    image = cv2.imread(str(shared_file("media/tfjs-pose-testdata/pose.jpg")))
    upright = real_pipeline(_frame(image))
    reference = _best(upright)
    border = 300
    padded = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT)
    turn = cv2.getRotationMatrix2D((padded.shape[1] / 2, padded.shape[0] / 2), 45, 1.0)
    turned = cv2.warpAffine(padded, turn, (padded.shape[1], padded.shape[0]))
    boxes = real_pipeline.detector(turned).bboxes[:1]
    assert len(boxes) == 1
    errors = {}
    for refine in (False, True):
        estimator = BlazePoseLandmark(real_pipeline.estimator.backend, refine=refine)
        found = estimator(turned, boxes).keypoints[0]
        back = apply_affine(found, cv2.invertAffineTransform(turn)) - border
        errors[refine] = np.median(np.linalg.norm(back - reference, axis=1)) / _torso(reference)
    assert errors[True] < 0.08, errors
    assert errors[True] < errors[False] / 2, errors


def _frame(image):
    from posestream.stream.capture.files import Frame

    return Frame(1, 0.0, image)


@pytest.mark.parametrize("count", [1, 3])
def test_blazepose_batched_equals_one_by_one(real_pipeline, count):
    image = cv2.imread(str(shared_file("media/tfjs-pose-testdata/pose.jpg")))
    box = real_pipeline.detector(image).bboxes[:1]
    boxes = np.repeat(box, count, axis=0) + np.arange(count)[:, None] * 3.0
    together = real_pipeline.estimator(image, boxes)
    for i in range(count):
        alone = real_pipeline.estimator(image, boxes[i:i + 1])
        np.testing.assert_allclose(together.keypoints[i], alone.keypoints[0], atol=1e-2)
