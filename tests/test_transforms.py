"""Transforms against hand-computed values."""

import cv2
import numpy as np
import pytest

from posestream.engines.transforms import (apply_affine, bbox_to_center_scale, crop_warp_matrix, letterbox,
                                rotation_from_points, unletterbox_boxes)


def test_letterbox_geometry_and_inverse():
    image = np.full((480, 640, 3), 7, np.uint8)
    canvas, ratio = letterbox(image, (416, 416))
    assert ratio == pytest.approx(0.65)  # 416 / 640
    assert canvas.shape == (416, 416, 3)
    assert (canvas[:312, :416] == 7).all()  # 480 * 0.65 = 312 rows of image, top-left
    assert (canvas[312:] == 114).all()  # then padding
    # a box at network pixels (65, 130)-(130, 195) is (100, 200)-(200, 300) in the image
    back = unletterbox_boxes(np.array([[65, 130, 130, 195]]), ratio, (480, 640))
    np.testing.assert_allclose(back, [[100, 200, 200, 300]], atol=1e-4)


def test_unletterbox_clips_to_image():
    back = unletterbox_boxes(np.array([[-10, -5, 500, 400]]), 0.5, (300, 400))
    np.testing.assert_allclose(back, [[0, 0, 400, 300]])


def test_bbox_to_center_scale_fixes_aspect():
    # 96 x 128 box padded 1.25 -> 120 x 160, already 3:4
    centers, scales = bbox_to_center_scale(np.array([[100, 50, 196, 178]]), 1.25, 0.75)
    np.testing.assert_allclose(centers, [[148, 114]])
    np.testing.assert_allclose(scales, [[120, 160]])
    # a wide box: 200 x 100 -> 250 x 125 padded -> height grown to 250 / 0.75
    _, scales = bbox_to_center_scale(np.array([[0, 0, 200, 100]]), 1.25, 0.75)
    np.testing.assert_allclose(scales, [[250, 250 / 0.75]], rtol=1e-6)


def test_crop_warp_matrix_known_points_and_round_trip():
    m = crop_warp_matrix(np.array([148.0, 114.0]), np.array([120.0, 160.0]), 0.0, (192, 256))
    # centre -> output centre; the crop's top-left corner (88, 34) -> (0, 0); scale 1.6
    np.testing.assert_allclose(apply_affine(np.array([[148, 114], [88, 34], [208, 194]]), m),
                               [[96, 128], [0, 0], [192, 256]], atol=1e-4)
    points = np.random.default_rng(0).uniform(0, 300, (50, 2))
    back = apply_affine(apply_affine(points, m), cv2.invertAffineTransform(m))
    np.testing.assert_allclose(back, points, atol=1e-3)


def test_rotated_crop_turns_body_axis_upright():
    # a person lying with hips at (100, 100) and head to the right at (200, 100)
    rotation = rotation_from_points(np.array([100.0, 100.0]), np.array([200.0, 100.0]))
    assert rotation == pytest.approx(np.pi / 2)
    m = crop_warp_matrix(np.array([100.0, 100.0]), np.array([200.0, 200.0]), rotation, (256, 256))
    head = apply_affine(np.array([[200.0, 100.0]]), m)[0]
    # in the crop the head is straight above the centre, 100 px * 1.28 away
    np.testing.assert_allclose(head, [128, 128 - 128], atol=1e-3)
    # upright person: hips below the head -> no rotation
    assert rotation_from_points(np.array([0.0, 100.0]), np.array([0.0, 0.0])) == pytest.approx(0.0)
    # upside down -> ±π
    assert abs(rotation_from_points(np.array([0.0, 0.0]), np.array([0.0, 100.0]))) == pytest.approx(np.pi)
