"""MediaPipe's palm detector (stream/pose/palms.py): SSD anchors and decoding against hand-computed
values, hand crops from palms, and the real models on MediaPipe's hand test clip, where the
body pose does not see the wrists of a large open hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import shared_file
from posestream.stream.pose.palms import (
    Palms,
    assign_palm_hands,
    decode_palms,
    hand_rois_from_palms,
    ssd_anchors,
    weighted_nms,
)

CLIP = "media/mediapipe-hand-reach/test_video.mp4"


def test_anchors_are_mediapipes_palm_ssd_grid():
    anchors = ssd_anchors()
    assert anchors.shape == (2016, 2) and anchors.dtype == np.float32
    # 24 × 24 map (stride 8), 2 anchors per location: (x + 0.5) / 24, row-major, anchors repeated
    np.testing.assert_allclose(anchors[0], [0.5 / 24, 0.5 / 24], atol=1e-7)
    np.testing.assert_allclose(anchors[1], anchors[0])
    np.testing.assert_allclose(anchors[2], [1.5 / 24, 0.5 / 24], atol=1e-7)
    np.testing.assert_allclose(anchors[2 * 24], [0.5 / 24, 1.5 / 24], atol=1e-7)  # the second row
    np.testing.assert_allclose(anchors[1151], [23.5 / 24, 23.5 / 24], atol=1e-7)
    # then the 12 × 12 map (strides 16, 16, 16 share it), 6 anchors per location
    np.testing.assert_allclose(anchors[1152:1158], [[0.5 / 12, 0.5 / 12]] * 6, atol=1e-7)
    np.testing.assert_allclose(anchors[1158], [1.5 / 12, 0.5 / 12], atol=1e-7)
    np.testing.assert_allclose(anchors[-1], [11.5 / 12, 11.5 / 12], atol=1e-7)
    assert len(np.unique(anchors, axis=0)) == 24 * 24 + 12 * 12


def _raw(entries: dict[int, tuple[float, list[float]]]):
    """Raw outputs with every anchor at logit -20 except ``entries``: anchor → (logit, 18 values)."""
    raw, logits = np.zeros((1, 2016, 18), np.float32), np.full((1, 2016, 1), -20.0, np.float32)
    for anchor, (logit, values) in entries.items():
        raw[0, anchor], logits[0, anchor, 0] = values, logit
    return raw, logits


def test_decode_one_palm_in_closed_form():
    anchors = ssd_anchors()
    # anchor 1152 + 6 * (12 * 5 + 3): the 12 × 12 map's column 3, row 5 → centre (3.5 / 12, 5.5 / 12)
    anchor = 1152 + 6 * (12 * 5 + 3)
    values = [9.6, -19.2, 48.0, 38.4] + [float(v) for v in np.arange(14) * 1.92]
    palms = decode_palms(*_raw({anchor: (2.0, values)}), anchors)
    assert len(palms) == 1
    cx, cy = 3.5 / 12 + 9.6 / 192, 5.5 / 12 - 19.2 / 192  # offsets are 192-pixel units from the anchor centre
    w, h = 48.0 / 192, 38.4 / 192
    np.testing.assert_allclose(palms.boxes[0], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], atol=1e-6)
    expected_points = np.array([3.5 / 12, 5.5 / 12]) + (np.arange(14) * 1.92 / 192).reshape(7, 2)
    np.testing.assert_allclose(palms.keypoints[0], expected_points, atol=1e-6)
    assert palms.scores[0] == pytest.approx(1 / (1 + math.exp(-2.0)), abs=1e-6)
    # under the minimum score (sigmoid(-0.1) < 0.5): nothing
    assert len(decode_palms(*_raw({anchor: (-0.1, values)}), anchors)) == 0


def test_weighted_nms_merges_overlaps_by_score_and_keeps_the_rest():
    anchors = ssd_anchors()
    # two anchors at one location (0 and 1), boxes 48 px wide offset by 4.8 px (IoU 0.82), logits 2 and 0.5;
    # a third palm far away (anchor 2000)
    first = [0.0, 0.0, 48.0, 48.0] + [0.0] * 14
    second = [4.8, 0.0, 48.0, 48.0] + [4.8, 0.0] * 7
    palms = decode_palms(*_raw({0: (2.0, first), 1: (0.5, second), 2000: (1.0, first)}), anchors)
    assert len(palms) == 2
    s1, s2 = 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(-0.5))
    shift = s2 / (s1 + s2) * 4.8 / 192  # the score-weighted mean of the two boxes
    a = anchors[0]
    np.testing.assert_allclose(palms.boxes[0], [a[0] - 0.125 + shift, a[1] - 0.125, a[0] + 0.125 + shift, a[1] + 0.125],
                               atol=1e-6)
    np.testing.assert_allclose(palms.keypoints[0, :, 0], a[0] + shift, atol=1e-6)
    assert palms.scores[0] == pytest.approx(s1, abs=1e-6)  # the best one's score
    np.testing.assert_allclose(palms.boxes[1, :2], anchors[2000] - 0.125, atol=1e-6)
    # boxes overlapping by more than IoU 0.3 merge (1/3 here), the others stay apart (0.25)
    def count(second_x: float) -> int:
        return len(weighted_nms(Palms(np.array([[0, 0, 1, 1], [second_x, 0, second_x + 1, 1]], np.float32),
                                      np.zeros((2, 7, 2), np.float32), np.array([0.9, 0.8], np.float32))))

    assert count(0.5) == 1 and count(0.6) == 2


def test_hand_crop_from_a_palm_is_mediapipes_rect():
    # an upright palm: box 40 × 40 px centred (120, 120), wrist centre below the middle knuckle
    points = np.zeros((1, 7, 2))
    points[0, 0], points[0, 2] = (120, 140), (120, 100)
    roi = hand_rois_from_palms([[100, 100, 140, 140]], points)[0]
    # rotation 0, centre moved half the box's height towards the fingers (up), side 2.6 × 40
    np.testing.assert_allclose(roi, [120, 100, 104, 0.0], atol=1e-4)
    # the palm pointing right (wrist on the left), a 40 × 30 box: a quarter turn, shifted right by 15
    points[0, 0], points[0, 2] = (100, 120), (140, 120)
    roi = hand_rois_from_palms([[100, 105, 140, 135]], points)[0]
    np.testing.assert_allclose(roi, [120 + 15, 120, 104, math.pi / 2], atol=1e-4)


def test_palm_hands_fill_unseen_slots_by_handedness_once():
    hand = np.stack([np.linspace(100, 200, 21), np.linspace(100, 200, 21)], axis=1).astype(np.float32)
    status = np.array(["unseen", "unseen", "ok", "unseen"], dtype="<U6")
    keypoints = np.full((4, 21, 2), np.nan, np.float32)
    keypoints[2] = hand + 500  # person 1's left hand, seen by the body, far away
    presence, right = np.zeros(4, np.float32), np.full(4, 0.5, np.float32)
    found = (np.stack([hand, hand + 1, hand + 500, hand]), np.array([0.9, 0.95, 0.99, 0.3], np.float32),
             np.array([0.9, 0.8, 0.9, 0.9], np.float32))
    people = np.array([0, 1, 1, 0])
    boxes = np.array([[90, 90, 210, 210], [150, 150, 700, 700]], np.float32)
    assign_palm_hands(status, keypoints, presence, right, found, people, 0.5, boxes)
    # hands 0 and 1 are one hand found from both people's boxes: person 0's box holds all of it, so it
    # is person 0's right hand; hand 2 lies on person 1's seen left hand; hand 3 is not present enough
    assert status.tolist() == ["unseen", "ok", "ok", "unseen"]
    np.testing.assert_array_equal(keypoints[1], hand)
    assert presence[1] == pytest.approx(0.9) and right[1] == pytest.approx(0.9)


# ---------------------------------------------------------------------------------------------
# the real models on MediaPipe's hand test clip


@pytest.fixture(scope="module")
def hand_pipelines():
    from dataclasses import replace

    from posestream.stream.config import PipelineConfig
    from posestream.stream.pipeline import PosePipeline

    config = PipelineConfig(detector=str(shared_file("models/yolox_nano.onnx")),
                            pose=str(shared_file("models/blazepose_landmark_full.onnx")),
                            hands=True, hand_model=str(shared_file("models/hand_landmark_full.onnx")),
                            palm_model=str(shared_file("models/palm_detection_full.onnx")), device="cpu", threads=2)
    return PosePipeline.from_config(config), PosePipeline.from_config(replace(config, palm_detection=False))


def _clip_frames(indices):
    from posestream.stream.capture.files import open_source

    wanted, out = set(indices), []
    for i, frame in enumerate(open_source(str(shared_file(CLIP)))):
        if i in wanted:
            out.append(frame)
        if i >= max(wanted):
            break
    return out


def _check_hand(points: np.ndarray, width: int, height: int) -> None:
    assert points.shape == (21, 2) and np.isfinite(points).all()
    assert ((points >= 0) & (points < [width, height])).all(), points
    assert float(np.ptp(points, axis=0).max()) >= 80  # the hand is about 150-200 px long here


def test_palm_detector_finds_the_hands_the_body_does_not_show(hand_pipelines):
    with_palms, body_only = hand_pipelines
    assert with_palms.palms is not None and body_only.palms is None
    found = 0
    for frame in _clip_frames([64, 88, 120, 152]):
        before, after = body_only(frame), with_palms(frame)
        assert len(after) >= 1
        # the body pose sees no hand of anyone here (its wrists unseen, or one hand foreshortened to 'small');
        # the palm detector gives one open hand, the right one
        assert not (before.hand_status == "ok").any(), before.hand_status
        np.testing.assert_array_equal(after.keypoints, before.keypoints)
        ok = after.hand_status == "ok"
        assert ok.sum() <= 1  # one hand in the picture, reported once even where people overlap
        assert ((after.hand_status == "ok") | (before.hand_status == after.hand_status)).all()
        for person, side in zip(*np.nonzero(ok)):
            assert before.hand_status[person, side] in ("unseen", "small") and side == 1
            assert after.hand_right[person, side] >= 0.5 and after.hand_presence[person, side] >= 0.5
            _check_hand(after.hand_keypoints[person, side], frame.image.shape[1], frame.image.shape[0])
            # the hand lies in the box of the person it was given to (with a margin: fingers stick out)
            box = after.bboxes[person]
            centre = np.nanmean(after.hand_keypoints[person, side], axis=0)
            assert ((centre >= box[:2]) & (centre <= box[2:])).all()
            found += 1
        assert "palms" in after.timings
    assert found == 4


def test_a_hand_found_from_its_palm_then_follows_its_landmarks(hand_pipelines):
    from posestream.stream.pipeline import PoseStream, _frame_result

    with_palms, _ = hand_pipelines
    first, second = _clip_frames([120, 121])

    def hands(frame, previous=None):
        bboxes, scores = with_palms.detect(frame.image)
        poses, keep = with_palms.estimate(frame.image, bboxes)
        result = _frame_result(frame, bboxes[keep], scores[keep], poses, keep, {})
        following = with_palms.add_hands(frame.image, result, poses, np.flatnonzero(keep), previous)
        return result, following

    found, following = hands(first)
    assert found.hand_status.tolist() == [["unseen", "ok"]]
    assert np.isfinite(following[0, 1]).all() and np.isnan(following[0, 0]).all()

    class NoPalms:  # a palm detector that finds nothing: only the hand's own landmarks can find it
        def hand_rois(self, *args):
            return np.zeros((0, 4), np.float32), np.zeros(0, int)

    detector, with_palms.palms = with_palms.palms, NoPalms()
    try:
        lost, _ = hands(second)
        followed, _ = hands(second, following)
    finally:
        with_palms.palms = detector
    assert len(lost) == 1 and lost.hand_status[0, 1] == "unseen"  # the body does not see the right wrist
    assert followed.hand_status[0, 1] == "ok"
    _check_hand(followed.hand_keypoints[0, 1], followed.width, followed.height)
    # the same hand as the palm detector's on the next frame
    with_detector, _ = hands(second)
    assert with_detector.hand_status[0, 1] == "ok"
    distance = np.linalg.norm(followed.hand_keypoints[0, 1] - with_detector.hand_keypoints[0, 1], axis=1)
    assert float(np.median(distance)) < 10

    # and in the tracked stream, the hand is seen in most frames that have a person
    stream = PoseStream(with_palms, classify=None)
    results = [stream(frame) for frame in _clip_frames(range(60, 90))]
    people = [r for r in results if len(r)]
    ok = [r for r in people if (r.hand_status == "ok").any()]
    assert len(people) >= 20 and len(ok) >= 0.8 * len(people)
    for result in ok:
        assert (result.hand_status == "ok").sum() == 1
        person, side = np.argwhere(result.hand_status == "ok")[0]
        _check_hand(result.hand_keypoints[person, side], result.width, result.height)


def test_palm_search_is_capped_per_frame_largest_people_first():
    """``max_people`` bounds the detector's calls per frame; the largest boxes are searched, and
    people without an ``unseen`` hand or too small for a hand are never searched."""
    from posestream.stream.pose.palms import PalmDetector, Palms

    searched = []

    class Counting(PalmDetector):
        def __init__(self):  # no model: the search order and count are under test
            pass

        def __call__(self, image, box):
            searched.append(tuple(np.asarray(box).tolist()))
            return Palms(np.zeros((0, 4)), np.zeros((0, 7, 2)), np.zeros(0))

    boxes = np.array([[0, 0, 100, 200], [0, 0, 300, 400], [0, 0, 200, 300], [0, 0, 30, 30], [0, 0, 500, 500]], float)
    status = np.array([["unseen", "ok"], ["unseen", "unseen"], ["ok", "unseen"], ["unseen", "ok"], ["ok", "ok"]])
    busy = np.zeros((5, 2, 4))
    image = np.zeros((600, 600, 3), np.uint8)
    Counting().hand_rois(image, boxes, status, busy, min_hand_size=40, max_people=2)
    assert searched == [(0, 0, 300, 400), (0, 0, 200, 300)]  # 3rd (smaller) capped, 4th too small, 5th all ok
    searched.clear()
    Counting().hand_rois(image, boxes, status, busy, min_hand_size=40)
    assert len(searched) == 3
