"""Hand keypoints (issue 17): crops from the body, the batched hand model, the ``hands`` field,
its validation and drawing. References are hand-computed geometry and COCO-WholeBody ground truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import shared_file

from posestream.engines.layouts import HAND21_SKELETON
from posestream.stream.pose.hands import hand_rois_from_body, hand_rois_from_forearm, hand_rois_from_landmarks
from posestream.stream.results import FrameResult, validate_record


def test_hand_skeleton_is_five_chains_from_the_wrist():
    assert len(HAND21_SKELETON) == 20
    assert sorted(b for a, b in HAND21_SKELETON) == list(range(1, 21))
    assert [a for a, b in HAND21_SKELETON if a == 0] == [0] * 5


def test_crop_from_body_points_is_centred_on_the_knuckles_and_upright():
    # hand pointing up: wrist (100, 100), index (110, 60), pinky (80, 60) → middle knuckle (100, 60)
    roi = hand_rois_from_body([[100, 100]], [[110, 60]], [[80, 60]], scale=2.0)[0]
    np.testing.assert_allclose(roi, [100, 60, 2.0 * 2 * 40, 0.0], atol=1e-4)
    # pointing right (x grows): the crop is turned a quarter turn (clockwise on screen, +π/2)
    roi = hand_rois_from_body([[100, 100]], [[130, 100]], [[130, 100]], scale=1.0)[0]
    np.testing.assert_allclose(roi, [130, 100, 60, math.pi / 2], atol=1e-4)


def test_crop_from_forearm_continues_the_arm():
    # elbow (0, 100) → wrist (0, 0): forearm 100 px pointing up; hand 70 px; centre 35 px beyond the wrist
    roi = hand_rois_from_forearm([[0, 100]], [[0, 0]], scale=2.0)[0]
    np.testing.assert_allclose(roi, [0, -35, 140, 0.0], atol=1e-4)


def _upright_hand(cx: float = 200.0, wrist_y: float = 300.0, width: float = 40.0, length: float = 100.0):
    """21 points of a flat upright hand: wrist at the bottom, fingers spread over ``width``."""
    points = np.zeros((21, 2))
    points[0] = (cx, wrist_y)
    xs = np.linspace(cx - width / 2, cx + width / 2, 5)
    for f in range(5):
        for j in range(4):
            points[1 + 4 * f + j] = (xs[f], wrist_y - length * (0.4 + 0.2 * j))
    return points


def test_crop_from_landmarks_is_their_box_doubled_and_shifted_to_the_fingers():
    points = _upright_hand()  # box x 180..220, y 200..300 (side 100, centre (200, 250))
    roi = hand_rois_from_landmarks(points[None])[0]
    # side 2.0 × 100 = 200; centre moved 0.1 × 200 = 20 px towards the fingers (up)
    np.testing.assert_allclose(roi, [200, 230, 200, 0.0], atol=1e-3)


@pytest.fixture(scope="module")
def hand_model():
    from posestream.stream.pose.hands import HandLandmark, dynamic_batch_hand_graph
    from posestream.engines.backend import OnnxRuntimeBackend

    path = shared_file("models/hand_landmark_full.onnx")
    batched = HandLandmark(OnnxRuntimeBackend(dynamic_batch_hand_graph(path), "cpu", 2, name="hand"), refine=False)
    fixed = HandLandmark(OnnxRuntimeBackend(path, "cpu", 2), refine=False)  # batch 1: one call per crop
    return batched, fixed


WHOLEBODY = "media/mmpose-testdata/coco/test_coco_wholebody.json"


def _wholebody_hand(image_id: int, side: str):
    import cv2

    data = json.loads(shared_file(WHOLEBODY).read_text())
    name = next(i["file_name"] for i in data["images"] if i["id"] == image_id)
    image = cv2.imread(str(shared_file(f"media/mmpose-testdata/coco/{name}")))
    ann = next(a for a in data["annotations"] if a["image_id"] == image_id and a[f"{side}hand_valid"]
               and (side != "right" or a["bbox"][0] > 500))
    return image, np.asarray(ann[f"{side}hand_kpts"], np.float64).reshape(21, 3), ann[f"{side}hand_box"]


def test_dynamic_batch_equals_one_crop_at_a_time(hand_model):
    batched, fixed = hand_model
    assert batched.fixed_batch is None and fixed.fixed_batch == 1
    image, gt, _ = _wholebody_hand(197388, "right")
    roi = hand_rois_from_landmarks(gt[None, :, :2])[0]
    rois = np.stack([roi, roi + [5, -3, 10, 0.2], roi + [-4, 2, -6, -0.1]])
    many, one = batched.run(image, rois), fixed.run(image, rois)
    np.testing.assert_allclose(many.keypoints, one.keypoints, atol=1e-3)
    np.testing.assert_allclose(many.presence, one.presence, atol=1e-5)
    np.testing.assert_allclose(many.right, one.right, atol=1e-5)


def test_landmarks_match_wholebody_ground_truth_on_a_well_cropped_hand(hand_model):
    # a 20×22 px hand (COCO-WholeBody 197388, the right hand of the person on the right), cropped
    # around its ground-truth points: PCK@0.2 of the hand box (mmpose's normalisation per axis)
    batched, _ = hand_model
    image, gt, box = _wholebody_hand(197388, "right")
    crops = batched.run(image, hand_rois_from_landmarks(gt[None, :, :2]))
    distance = np.linalg.norm((crops.keypoints[0] - gt[:, :2]) / box[2:], axis=1)
    assert (distance[gt[:, 2] > 0] < 0.2).mean() >= 0.8


def _record(hands) -> dict:
    return {"frame_id": 1, "pts": 0.0, "width": 64, "height": 48, "events": [],
            "instances": [{"bbox": [1, 2, 30, 60], "bbox_score": 0.9, "keypoints": [[5, 6]] * 17,
                           "keypoint_scores": [0.8] * 17, "extra_keypoints": None, "extra_keypoint_scores": None,
                           "track_id": 3, "keypoints_3d": None, "posture": None, "gesture": None, "hands": hands}]}


OK_HAND = {"status": "ok", "presence": 0.9, "handedness": 0.2, "keypoints": [[1, 2]] * 21, "keypoint_scores": [0.9] * 21}
NO_HAND = {"status": "small", "presence": 0.0, "handedness": 0.5, "keypoints": None, "keypoint_scores": None}


@pytest.mark.parametrize("hands, match", [
    ({"left": OK_HAND}, "keys left and right"),
    ({"left": OK_HAND, "right": {**NO_HAND, "status": "tiny"}}, "status"),
    ({"left": {**OK_HAND, "keypoints": [[1, 2]] * 20}, "right": NO_HAND}, r"keypoints: shape \(20, 2\)"),
    ({"left": {**OK_HAND, "presence": 1.5}, "right": NO_HAND}, "presence"),
    ({"left": OK_HAND, "right": {**NO_HAND, "keypoints": [[1, 2]] * 21}}, "keypoints given"),
    ({"left": {**OK_HAND, "keypoint_scores": None}, "right": NO_HAND}, "keypoint_scores"),
])
def test_wrong_hands_are_refused(hands, match):
    validate_record(_record({"left": OK_HAND, "right": NO_HAND}))
    validate_record(_record(None))
    with pytest.raises(ValueError, match=match):
        validate_record(_record(hands))


def test_hands_round_trip_through_json_and_are_absent_by_default():
    base = dict(frame_id=1, pts=0.0, width=64, height=48, bboxes=np.zeros((1, 4), np.float32),
                bbox_scores=np.ones(1, np.float32), keypoints=np.zeros((1, 17, 2), np.float32),
                keypoint_scores=np.ones((1, 17), np.float32))
    assert "hands" not in FrameResult(**base).to_json()["instances"][0]
    keypoints = np.full((1, 2, 21, 2), np.nan, np.float32)
    keypoints[0, 1] = np.arange(42).reshape(21, 2)
    result = FrameResult(**base, hand_keypoints=keypoints, hand_keypoint_scores=np.full((1, 2, 21), 0.75, np.float32),
                         hand_presence=np.array([[0.1, 0.75]], np.float32), hand_right=np.array([[0.5, 0.9]], np.float32),
                         hand_status=np.array([["absent", "ok"]]))
    record = json.loads(json.dumps(result.to_json()))
    validate_record(record)
    hands = record["instances"][0]["hands"]
    assert hands["left"] == {"status": "absent", "presence": 0.1, "handedness": 0.5, "keypoints": None,
                             "keypoint_scores": None}
    assert hands["right"]["keypoints"][20] == [40, 41]
    back = FrameResult.from_json(record)
    np.testing.assert_array_equal(back.hand_keypoints[0, 1], keypoints[0, 1])
    assert np.isnan(back.hand_keypoints[0, 0]).all() and back.hand_status.tolist() == [["absent", "ok"]]


def test_run_with_hands_on_an_image(tmp_path, capsys):
    """``posestream run --hands`` on the shared arms-out photo: both hands found, on the correct
    side of the body, at the end of the forearms, drawn on the annotated image."""
    import cv2

    from posestream.stream.cli import main

    image = shared_file("media/tfjs-pose-testdata/pose.jpg")
    assert main(["run", str(image), "--out", str(tmp_path), "--hands", "--no-lift", "--quiet"]) == 0
    record = json.loads((tmp_path / "pose.jsonl").read_text().splitlines()[0])
    validate_record(record)
    person = max(record["instances"], key=lambda inst: inst["bbox_score"])
    body = np.asarray(person["keypoints"])
    for side, (elbow, wrist) in (("left", (7, 9)), ("right", (8, 10))):
        hand = person["hands"][side]
        assert hand["status"] == "ok", hand["status"]
        points = np.asarray(hand["keypoints"])
        forearm = body[wrist] - body[elbow]
        # the fingertips lie beyond the wrist along the forearm, within a forearm's length
        beyond = (points[[8, 12, 16]] - body[wrist]) @ forearm / np.linalg.norm(forearm) ** 2
        assert ((beyond > 0) & (beyond < 1)).all(), beyond
    left, right = person["hands"]["left"]["handedness"], person["hands"]["right"]["handedness"]
    assert right > left
    drawn = cv2.imread(str(tmp_path / "pose_annotated" / "pose.jpg"))
    assert drawn is not None


def test_skeleton_frame_draws_hands_only_when_asked():
    from posestream.offline.skeleton import render_skeleton

    keypoints = np.zeros((1, 2, 21, 2), np.float32)
    keypoints[0, 0] = _upright_hand(cx=32, wrist_y=60, width=20, length=40)
    keypoints[0, 1] = np.nan
    result = FrameResult(frame_id=1, pts=0.0, width=64, height=64, bboxes=np.zeros((1, 4), np.float32),
                         bbox_scores=np.ones(1, np.float32), keypoints=np.full((1, 17, 2), -100, np.float32),
                         keypoint_scores=np.zeros((1, 17), np.float32), hand_keypoints=keypoints,
                         hand_keypoint_scores=np.ones((1, 2, 21), np.float32),
                         hand_presence=np.array([[0.9, 0.0]], np.float32), hand_right=np.full((1, 2), 0.5, np.float32),
                         hand_status=np.array([["ok", "absent"]]))
    assert render_skeleton(result).max() == 0
    frame = render_skeleton(result, hands=True)
    # the middle finger's links run up the column x = 32 from y = 44 to y = 28 (green in BGR)
    assert frame[36, 32, 1] > 100 and frame[36, 32, 0] < 50
    assert frame[5:20].max() == 0  # nothing above the fingertips
