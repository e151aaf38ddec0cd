"""Hand keypoints (issue 17): crops from the body, the batched hand model, the ``hands`` field,
its validation and drawing. References are hand-computed geometry and COCO-WholeBody ground truth."""

from __future__ import annotations

import json
import math
import os

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
    """``posestream run --hands`` on the shared arms-out photo: both hands found, at the end of
    their forearms, drawn on the annotated image."""
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


def test_wholebody_layout_is_mmpose_coco_wholebody():
    from posestream.engines.layouts import WHOLEBODY133_FLIP_INDICES, WHOLEBODY133_NAMES, wholebody_dataset_meta

    meta = wholebody_dataset_meta()
    assert meta["dataset_name"] == "coco_wholebody" and meta["num_keypoints"] == 133 == len(meta["sigmas"])
    names = WHOLEBODY133_NAMES
    assert names[17] == "left_big_toe" and names[22] == "right_heel" and names[23] == "face-0"
    assert names[91] == "left_hand_root" and names[99] == "left_forefinger4" and names[132] == "right_pinky_finger4"
    flips = WHOLEBODY133_FLIP_INDICES
    assert all(flips[flips[i]] == i for i in range(133))
    # mirror pairs by name: left_* ↔ right_*, jaw ends, outer eye corners, hand roots
    assert names[flips[names.index("left_heel")]] == "right_heel"
    assert (flips[23], flips[23 + 36], flips[23 + 51]) == (23 + 16, 23 + 45, 23 + 51)
    assert flips[91] == 112
    # hand sigmas are the same for both hands; the body's are COCO's
    assert meta["sigmas"][91:112] == meta["sigmas"][112:133] and meta["sigmas"][5] == pytest.approx(0.079)
    assert [0, 5] not in meta["skeleton_links"] and [91, 92] in meta["skeleton_links"] and [15, 19] in meta["skeleton_links"]


def test_to_wholebody_places_feet_and_hands():
    from posestream.engines.layouts import to_wholebody

    body = np.arange(34, dtype=np.float32).reshape(1, 17, 2)
    extra = np.array([[[1, 1], [2, 2], [3, 3], [4, 4]]], np.float32)  # l_heel, r_heel, l_tip, r_tip
    hands = np.full((1, 2, 21, 2), np.nan, np.float32)
    hands[0, 1] = 7.0
    points, scores = to_wholebody(body, np.full((1, 17), 0.9), extra, np.full((1, 4), 0.8),
                                  hands, np.full((1, 2, 21), 0.6))
    assert points.shape == (1, 133, 2) and scores.shape == (1, 133)
    np.testing.assert_array_equal(points[0, :17], body[0])
    np.testing.assert_array_equal(points[0, [17, 19, 20, 22]], [[3, 3], [1, 1], [4, 4], [2, 2]])
    assert scores[0, 18] == 0 and scores[0, 21] == 0  # small toes: absent
    assert (scores[0, 23:91] == 0).all() and (points[0, 23:91] == 0).all()  # the face
    assert (scores[0, 91:112] == 0).all() and (points[0, 91:112] == 0).all()  # left hand not found
    assert (points[0, 112:133] == 7).all() and scores[0, 112:133] == pytest.approx(0.6)


def test_run_with_wholebody_keypoints(tmp_path):
    from posestream.stream.cli import main

    image = shared_file("media/tfjs-pose-testdata/pose.jpg")
    assert main(["run", str(image), "--out", str(tmp_path), "--keypoints", "wholebody", "--no-lift", "--no-video",
                 "--quiet"]) == 0
    document = json.loads((tmp_path / "results_pose.json").read_text())
    assert document["meta_info"]["dataset_name"] == "coco_wholebody"
    line = json.loads((tmp_path / "pose.jsonl").read_text().splitlines()[0])
    for inst, record in zip(document["instance_info"][0]["instances"], line["instances"]):
        assert len(inst["keypoints"]) == 133 == len(inst["keypoint_scores"])
        assert inst["keypoints"][:17] == record["keypoints"]
        assert inst["keypoints"][19] == record["extra_keypoints"][0]  # left heel
        if record["hands"]["left"]["status"] == "ok":
            assert inst["keypoints"][91:112] == record["hands"]["left"]["keypoints"]
        assert max(inst["keypoint_scores"][23:91]) == 0


def _rtmw_like(tmp_path):
    """A tiny ONNX of RTMW's signature (``input`` [B,3,256,192] → ``simcc_x`` [B,133,384],
    ``simcc_y`` [B,133,512]) whose peaks sit at known bins: keypoint k at x bin 192 + k % 50,
    y bin 256; the left hand (91–111) scores 0.9, the right hand 0.2, everything else 0.8."""
    from onnx_builders import constant_outputs_model

    simcc_x = np.full((1, 133, 384), 0.01, np.float32)
    simcc_y = np.full((1, 133, 512), 0.01, np.float32)
    values = np.full(133, 0.8, np.float32)
    values[91:112], values[112:133] = 0.9, 0.2
    simcc_x[0, np.arange(133), 192 + np.arange(133) % 50] = values
    simcc_y[0, np.arange(133), 256] = values
    path = tmp_path / "rtmw-like.onnx"
    path.write_bytes(constant_outputs_model("input", ["batch", 3, 256, 192], {"simcc_x": simcc_x, "simcc_y": simcc_y}))
    return path


def test_rtmw_wholebody_simcc_model_through_the_rtmpose_decoder(tmp_path):
    from posestream.stream.capture.files import Frame
    from posestream.stream.config import PipelineConfig
    from posestream.stream.detect.detections import Detections
    from posestream.stream.pipeline import PosePipeline
    from posestream.stream.pose import RTMPose, load_pose_estimator
    from posestream.stream.sinks.files import PredictionsJsonSink

    estimator = load_pose_estimator(str(_rtmw_like(tmp_path)), "cpu")
    assert isinstance(estimator, RTMPose) and estimator.num_keypoints == 133
    # box 192×256 at the origin: padded 1.25 → a 240×320 crop centred on (96, 128), 0.8 input px
    # per image px; x bin b is input pixel b / 2, so image x = 96 + (b / 2 - 96) / 0.8; y bin 256 → 128
    k = np.arange(133)
    expected_x = 96 + ((192 + k % 50) / 2 - 96) / 0.8
    detector = lambda image: Detections(np.array([[0, 0, 192, 256]], np.float32), np.array([0.9], np.float32))  # noqa: E731
    pipeline = PosePipeline(detector, estimator, PipelineConfig())
    frame = Frame(image=np.zeros((300, 400, 3), np.uint8), frame_id=1, pts=0.0)
    result = pipeline(frame)
    np.testing.assert_allclose(result.wholebody_keypoints[0, :, 0], expected_x, atol=1e-3)
    np.testing.assert_allclose(result.wholebody_keypoints[0, :, 1], 128, atol=1e-3)
    np.testing.assert_allclose(result.keypoints[0, :, 0], expected_x[:17], atol=1e-3)
    # hands come from the model's own hand points: the left one confident, the right one not
    assert result.hand_status.tolist() == [["ok", "absent"]]
    np.testing.assert_allclose(result.hand_keypoints[0, 0, :, 0], expected_x[91:112], atol=1e-3)
    validate_record(json.loads(json.dumps(result.to_json())))
    sink = PredictionsJsonSink(tmp_path / "results.json", "wholebody")
    sink.write(result)
    document = json.loads(sink.close().read_text())
    inst = document["instance_info"][0]["instances"][0]
    np.testing.assert_allclose(np.asarray(inst["keypoints"])[:91, 0], expected_x[:91], atol=0.01)  # face included
    assert inst["keypoint_scores"][112] == 0  # the absent right hand


# ---------------------------------------------------------------------------------------------
# gestures read from the hand and its motion


def _flat_right_palm(cx: float = 200.0, wrist_y: float = 300.0, palm_to_camera: bool = True) -> np.ndarray:
    """A flat upright right hand seen from the front (palm to the camera: the thumb on the
    image's right, towards the body's midline of a person facing the camera)."""
    hand = _upright_hand(cx, wrist_y, width=40.0, length=100.0)  # thumb on the image's left
    if palm_to_camera:
        hand[:, 0] = 2 * cx - hand[:, 0]  # thumb and pinky swap sides
    return hand


def _fist(hand: np.ndarray) -> np.ndarray:
    """The same hand with its long fingers curled back towards the palm."""
    fist = hand.copy()
    for base in (5, 9, 13, 17):
        knuckle = hand[base]
        fist[base + 1] = knuckle + (0, -12)
        fist[base + 2] = knuckle + (0, -4)
        fist[base + 3] = knuckle + (0, 6)  # the tip back below the knuckle
    return fist


def test_open_hand_and_palm_direction_from_the_keypoints():
    from posestream.stream.classify.hands import fingers_extended, open_hand, palm_facing_camera

    palm = _flat_right_palm()
    assert fingers_extended(palm).all() and open_hand(palm)
    assert not open_hand(_fist(palm)) and not fingers_extended(_fist(palm)).any()
    assert palm_facing_camera(palm, right=True)
    assert not palm_facing_camera(_flat_right_palm(palm_to_camera=False), right=True)
    # a left palm to the camera is the mirror image of a right one
    mirrored = palm.copy()
    mirrored[:, 0] = 400 - mirrored[:, 0]
    assert palm_facing_camera(mirrored, right=False) and not palm_facing_camera(mirrored, right=True)


def test_wave_detector_needs_a_periodic_swing_of_hand_size_at_a_waving_rate():
    from posestream.stream.classify.hands import WaveDetector

    def run(frequency: float, amplitude: float, fps: float = 30.0, seconds: float = 2.0) -> bool:
        detector, out = WaveDetector(window=1.5, min_hz=1.0, max_hz=4.0, amplitude=0.5), False
        for t in np.arange(0, seconds, 1 / fps):
            out = detector(t, 300 + amplitude * np.sin(2 * np.pi * frequency * t), 300.0, size=40.0)
        return out

    assert run(2.0, 20.0)  # a 2 Hz wave swinging one hand size (40 px) peak to peak
    assert run(1.5, 20.0, fps=10.0)  # also at 10 fps
    assert not run(2.0, 4.0)  # a tremble of a fifth of a hand
    assert not run(0.3, 40.0)  # a slow sweep
    assert not run(6.0, 20.0, fps=60.0)  # faster than anyone waves
    still = WaveDetector()
    assert not any(still(t, 300.0, 300.0, 40.0) for t in np.arange(0, 2, 1 / 30))


def _person(right_wrist=(120.0, 60.0), right_elbow=(120.0, 120.0)) -> tuple[np.ndarray, np.ndarray]:
    """A person facing the camera (COCO-17, pixels): shoulders at y 100, hips at y 300 (torso
    200 px), left arm hanging, the right arm as given."""
    k = np.zeros((17, 2), np.float32)
    k[0], k[1], k[2], k[3], k[4] = (200, 40), (210, 30), (190, 30), (220, 35), (180, 35)
    k[5], k[6] = (250, 100), (150, 100)  # left shoulder on the image's right
    k[7], k[9] = (260, 180), (265, 250)
    k[8], k[10] = right_elbow, right_wrist
    k[11], k[12], k[13], k[14], k[15], k[16] = (230, 300), (170, 300), (230, 400), (170, 400), (230, 500), (170, 500)
    return k, np.ones(17, np.float32)


def test_hand_aware_gestures():
    from posestream.stream.classify.rules import ClassifierConfig, default_gesture, hands_gesture

    config = ClassifierConfig(rules="hands")
    keypoints, scores = _person()  # right forearm vertical, wrist above the shoulder: arm raised
    assert default_gesture(keypoints, scores, config) == "hello"
    hands = np.zeros((2, 21, 2), np.float32)
    hands[1] = _flat_right_palm(cx=120, wrist_y=60, palm_to_camera=True)
    seen = np.array([False, True])
    assert hands_gesture(keypoints, scores, config) == "hello"  # no hand seen: the arm rules
    assert hands_gesture(keypoints, scores, config, hands, seen) == "stop"  # a still flat palm held up
    hands[1] = _fist(hands[1])
    assert hands_gesture(keypoints, scores, config, hands, seen) == "none"  # a raised fist
    hands[1] = _flat_right_palm(cx=120, wrist_y=60)
    assert hands_gesture(keypoints, scores, config, hands, seen, waving=(True, False)) == "hello"  # a waving open hand
    # a low stop: the palm at chest height, the forearm pointing forwards (no raised arm)
    low, low_scores = _person(right_wrist=(125.0, 150.0), right_elbow=(120.0, 160.0))
    assert default_gesture(low, low_scores, config) == "none"
    hands[1] = _flat_right_palm(cx=125, wrist_y=150)
    assert hands_gesture(low, low_scores, config, hands, seen) == "stop"


def test_waving_wrist_is_hello_whatever_the_forearm_angle():
    """A tracked person waving with the forearm tilted 20° from horizontal (the arm rules' 30°
    test says no): hello with the hands rules, none with the default ones."""
    from posestream.stream.classify.rules import ClassifierConfig, PoseClassifier

    labels = {}
    for rules in ("default", "hands"):
        classifier = PoseClassifier(ClassifierConfig(rules=rules))
        for i, t in enumerate(np.arange(0, 3, 1 / 30)):
            swing = 30 * np.sin(2 * np.pi * 2 * t)  # 2 Hz, 60 px peak to peak (hand ≈ 80 px)
            wrist = (120 - 90 + swing, 120 - 33)  # 20° above horizontal, out to the side
            keypoints, scores = _person(right_wrist=wrist, right_elbow=(120.0, 120.0))
            _, gestures, _ = classifier(keypoints[None], scores[None], np.array([1]), None, i + 1, float(t))
        labels[rules] = gestures[0]
    assert labels == {"default": "none", "hands": "hello"}


def test_hands_from_the_forearm_of_a_coco17_pose_and_from_an_empty_frame(real_pipeline):
    """A COCO-17 model has no finger points: hands are cropped along elbow → wrist; they are
    found on the arms-out photo, fingertips beyond the wrists. An empty frame gives empty arrays."""
    import cv2
    from dataclasses import replace

    from posestream.stream.config import PipelineConfig
    from posestream.stream.pipeline import PosePipeline
    from posestream.stream.capture.files import Frame

    hands = PosePipeline.from_config(PipelineConfig(detector=real_pipeline.config.detector,
                                                    pose=real_pipeline.config.pose, hands=True)).hands
    pipeline = PosePipeline(real_pipeline.detector, real_pipeline.estimator, real_pipeline.config, hands)
    image = cv2.imread(str(shared_file("media/tfjs-pose-testdata/pose.jpg")))
    frame = Frame(frame_id=1, pts=0.0, image=image)
    bboxes, scores = pipeline.detect(image)
    poses, keep = pipeline.estimate(image, bboxes)
    coco17 = replace(poses, hand_points=None, hand_point_scores=None)  # as RTMPose gives
    from posestream.stream.pipeline import _frame_result

    rows = np.flatnonzero(keep)
    result = _frame_result(frame, bboxes[keep], scores[keep], coco17, keep, {})
    following = pipeline.add_hands(image, result, coco17, rows)
    person = int(np.argmax(result.bbox_scores))
    assert result.hand_status[person].tolist() == ["ok", "ok"]
    for side, (elbow, wrist) in enumerate(((7, 9), (8, 10))):
        forearm = result.keypoints[person, wrist] - result.keypoints[person, elbow]
        tips = result.hand_keypoints[person, side, [8, 12, 16]] - result.keypoints[person, wrist]
        assert ((tips @ forearm) > 0).all()
    assert np.isfinite(following[person]).all()  # the next frame's crops, from these landmarks
    empty = pipeline(Frame(frame_id=2, pts=0.1, image=np.zeros((240, 320, 3), np.uint8)))
    assert len(empty) == 0 and empty.hand_keypoints.shape == (0, 2, 21, 2) and empty.to_json()["instances"] == []


def test_tracked_hands_follow_their_landmarks(real_pipeline):
    """On a clip with large hands (tfjs squats, 720×1280), tracked hands are cropped from their
    previous landmarks: the hand model's wrist stays on the body model's wrist."""
    from posestream.stream.capture.files import open_source
    from posestream.stream.config import PipelineConfig
    from posestream.stream.pipeline import PosePipeline, PoseStream

    hands = PosePipeline.from_config(PipelineConfig(detector=real_pipeline.config.detector,
                                                    pose=real_pipeline.config.pose, hands=True)).hands
    stream = PoseStream(PosePipeline(real_pipeline.detector, real_pipeline.estimator, real_pipeline.config, hands),
                        classify=None)
    calls = []
    original = hands.run
    hands.run = lambda image, rois: (calls.append(len(rois)), original(image, rois))[1]
    ok_frames, tracked_frames, before = 0, 0, False
    handedness = {0: [], 1: []}
    for i, frame in enumerate(open_source(shared_file("media/tfjs-pose-testdata/pose_squats.mp4"))):
        if i == 8:
            break
        calls.clear()
        result = stream(frame)
        for person in range(len(result)):
            for side, wrist in ((0, 9), (1, 10)):
                if result.hand_status[person, side] != "ok":
                    continue
                forearm = np.linalg.norm(result.keypoints[person, wrist] - result.keypoints[person, wrist - 2])
                gap = np.linalg.norm(result.hand_keypoints[person, side, 0] - result.keypoints[person, wrist])
                assert gap < 0.5 * forearm
                handedness[side].append(result.hand_right[person, side])
        all_ok = bool(len(result) == 1 and (result.hand_status == "ok").all())
        ok_frames += all_ok
        if before and calls == [2]:  # both hands followed from the last frame: one pass, one call
            tracked_frames += 1
        before = all_ok
    assert ok_frames >= 4 and tracked_frames >= 1  # at 5 fps a squatting arm often leaves its last crop
    # the model's handedness agrees with the body's side (hands of 100+ px, a frontal person)
    assert np.mean(handedness[0]) < 0.5 < np.mean(handedness[1])


def test_a_crop_holding_the_other_hand_is_not_reported_twice():
    from posestream.stream.pipeline import _other_hands

    hand = _upright_hand()  # box side 100 px
    keypoints = np.stack([hand, hand + 5, hand, hand + 300, hand, hand])  # person 0: both crops on one hand
    right = np.array([0.01, 0.09, 0.02, 0.97, 0.03, 0.04])  # P(right hand) from the model
    status = np.array(["ok", "ok", "ok", "ok", "absent", "ok"], dtype="<U6")
    _other_hands(status, keypoints, right, threshold=0.05)
    # person 0: on one another (5√2 px < 25 px), the right slot fits worse (0.09 < 0.99);
    # person 1: apart and each fitting its side; person 2: a "right" hand the model is sure is left
    assert status.tolist() == ["ok", "other", "ok", "ok", "absent", "other"]


def test_live_graph_makes_hands_as_the_single_process_run(tmp_path):
    """``posestream live --hands``: the person stage crops and estimates the hands, and every
    result equals ``run --hands``'s to the last digit; the hands seen well sit on the body's wrists."""
    import subprocess
    import sys

    from conftest import MODELS

    video = shared_file("media/tfjs-pose-testdata/pose_squats.mp4")  # the shared clip whose hands are large enough
    env = {**os.environ, "POSESTREAM_MODEL_DIR": str(MODELS)}
    common = ["--max-frames", "20", "--hands", "--no-video"]
    single = subprocess.run([sys.executable, "-m", "posestream.stream.cli", "run", str(video), "--out",
                             str(tmp_path / "run"), "--quiet", *common], env=env, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    live = subprocess.run([sys.executable, "-m", "posestream.stream.cli", "live", "--source", str(video), "--out",
                           str(tmp_path / "live"), *common], env=env, capture_output=True, text=True)
    assert live.returncode == 0, live.stderr
    lines = (tmp_path / "live" / "pose_squats.jsonl").read_text()
    assert lines == (tmp_path / "run" / "pose_squats.jsonl").read_text()
    seen = 0
    for record in map(json.loads, lines.splitlines()):
        for person in record["instances"]:
            body = np.array(person["keypoints"], np.float32)
            scores = np.array(person["keypoint_scores"], np.float32)
            for side, wrist in (("left", 9), ("right", 10)):
                hand = person["hands"][side]
                if hand["status"] == "ok" and scores[wrist] >= 0.3:  # cropped from the body's wrist
                    seen += 1
                    torso = np.linalg.norm((body[5] + body[6]) / 2 - (body[11] + body[12]) / 2)
                    assert np.linalg.norm(np.array(hand["keypoints"][0]) - body[wrist]) < 0.25 * torso
    assert seen >= 20  # most of the 2 × 20 hands
