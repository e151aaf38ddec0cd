"""Box IoU, OKS and OKS-NMS against hand-computed values and pycocotools."""


import numpy as np
import pytest

from conftest import shared_file
from posestream.stream.track.matching import box_iou, keypoint_bboxes, oks, oks_nms, pose_nms


def test_box_iou_hand_computed():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    # overlap 5x5 = 25; union 100 + 100 - 25 = 175
    assert box_iou(a, b)[0] == pytest.approx([25 / 175, 1.0, 0.0, 0.0])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_oks_equals_pycocotools_compute_oks():
    """Our OKS on COCO ground truth vs. jittered copies equals COCOeval.computeOks."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    path = shared_file("media/coco-mini/annotations/person_keypoints_val2017.json")
    gt = COCO(str(path))
    anns = [a for a in gt.loadAnns(gt.getAnnIds()) if a["num_keypoints"] >= 5]
    image_id = max({a["image_id"] for a in anns}, key=lambda i: sum(a["image_id"] == i for a in anns))
    gts = [a for a in anns if a["image_id"] == image_id]
    rng = np.random.default_rng(0)
    dets = []
    for a in gts:
        k = np.array(a["keypoints"], np.float64).reshape(17, 3).copy()
        k[:, :2] += rng.normal(0, 6, (17, 2))
        dets.append({"image_id": image_id, "category_id": 1, "keypoints": k.ravel().tolist(), "score": 1.0})
    dt = gt.loadRes(dets)
    evaluator = COCOeval(gt, dt, "keypoints")
    evaluator.params.imgIds = [image_id]
    evaluator.evaluate()
    reference = np.asarray(evaluator.computeOks(image_id, 1))  # (D, G)

    all_gts = evaluator._gts[image_id, 1]  # the ground truth computeOks compared, in its order
    g = np.array([np.reshape(a["keypoints"], (17, 3)) for a in all_gts], np.float64)
    d = np.array([np.reshape(x["keypoints"], (17, 3)) for x in evaluator._dts[image_id, 1]], np.float64)
    ours = oks(g[:, :, :2], d[:, :, :2], np.array([a["area"] for a in all_gts]), visible_a=g[:, :, 2] > 0).T
    labelled = (g[:, :, 2] > 0).any(axis=1)  # COCO scores unlabelled people by box distance instead
    assert labelled.sum() >= 5
    assert ours[:, labelled] == pytest.approx(reference[:, labelled], abs=1e-9)


def test_oks_identical_is_one_and_far_is_zero():
    k = np.random.default_rng(1).uniform(0, 100, (1, 17, 2))
    assert oks(k, k, np.array([5000.0]))[0, 0] == pytest.approx(1.0)
    assert oks(k, k + 1000, np.array([5000.0]))[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert oks(k, k, np.array([5000.0]), np.zeros((1, 17), bool))[0, 0] == 0.0  # nothing counted


def test_oks_nms_drops_the_duplicate_keeps_the_other_person():
    rng = np.random.default_rng(2)
    person = rng.uniform(0, 100, (17, 2))
    poses = np.stack([person, person + 1.0, person + 300.0])
    keep = oks_nms(poses, np.array([0.8, 0.9, 0.5]), np.full(3, 10000.0), threshold=0.5)
    assert keep.tolist() == [1, 2]  # the better-scored twin and the other person


def test_oks_nms_by_box_drops_a_second_skeleton_on_the_same_body():
    """Two skeletons fitted to one body in different ways (one upside down: head where the
    feet are) share a box but hardly any keypoint: OKS ~0 keeps both, box IoU 1 drops the
    worse one. Two people overlapping by IoU 1/3 (hand-computed) both stay."""
    from poses import person

    body = person(200, 300, 300)
    flipped = body.copy()
    flipped[:, 1] = body[:, 1].min() + body[:, 1].max() - body[:, 1]  # mirrored top to bottom, same box
    width = np.ptp(body[:, 0])
    beside = body + [width / 2, 0]  # shifted by half its box width: IoU (w/2 · h) / (3/2 · w · h) = 1/3
    poses = np.stack([body, flipped, beside])
    boxes = keypoint_bboxes(poses, np.ones(poses.shape[:2], bool), 1.0)
    assert box_iou(boxes[:1], boxes[2:])[0, 0] == pytest.approx(1 / 3)
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    scores = np.array([0.9, 0.8, 0.7])
    assert oks_nms(poses, scores, areas, 0.5).tolist() == [0, 1, 2]  # OKS alone keeps the twin
    assert oks_nms(poses, scores, areas, 0.5, boxes=boxes, iou_threshold=0.7).tolist() == [0, 2]


def test_keypoint_bboxes_padding_and_fallback():
    points = np.array([[[10, 20], [30, 60], [500, 500]]], np.float32)
    visible = np.array([[True, True, False]])
    assert keypoint_bboxes(points, visible, 1.25)[0] == pytest.approx([7.5, 15, 32.5, 65])
    fallback = np.array([[1, 2, 3, 4]], np.float32)
    assert keypoint_bboxes(points, np.array([[True, False, False]]), 1.25, fallback)[0] == pytest.approx([1, 2, 3, 4])


def test_box_containment_by_hand():
    from posestream.stream.track.matching import box_containment

    a = np.array([[0, 0, 10, 10]], np.float32)  # area 100
    b = np.array([[5, 0, 25, 10], [2, 2, 4, 4], [20, 20, 30, 30]], np.float32)  # 200, 4, 100
    # intersections: 50, 4, 0; smaller areas: 100, 4, 100
    assert box_containment(a, b).tolist() == [[0.5, 1.0, 0.0]]
    assert box_containment(a, b, min_area_ratio=0.1).tolist() == [[0.5, 0.0, 0.0]]  # 4 / 100 < 0.1


def test_pose_nms_compares_poses_on_their_keypoints_own_boxes():
    """A skeleton flipped top to bottom on the same body shares its keypoints' box (IoU 1 over
    0.7) though hardly any keypoint: dropped; the person beside (IoU 1/3) stays. A pose with one
    keypoint seen (its nose, moved away) whose unseen keypoints lie on the body is compared on
    its crop's box, far away: kept."""
    from poses import person

    body = person(200, 300, 300)
    flipped = body.copy()
    flipped[:, 1] = body[:, 1].min() + body[:, 1].max() - body[:, 1]
    beside = body + [np.ptp(body[:, 0]) / 2, 0]
    lone = body.copy()
    lone[0] += 700
    visible = np.ones((4, 17), bool)
    visible[3] = False
    visible[3, 0] = True
    crops = np.array([[0, 0, 1, 1]] * 3 + [[900, 900, 1000, 1100]], np.float32)
    keep = pose_nms(np.stack([body, flipped, beside, lone]), visible, crops, np.array([0.9, 0.8, 0.7, 0.6]),
                    oks_threshold=0.5, iou_threshold=0.7)
    assert keep.tolist() == [0, 2, 3]
