"""Appearance descriptors (stream/track/appearance.py) on painted images, against histograms
worked out by hand, and what tools/eval_tracking.py --appearance measures with them (the
tracker's use of them: tests/test_track.py)."""

import numpy as np
import pytest

from poses import person
from posestream.offline.track_eval import appearance_separation
from posestream.stream.track.appearance import BINS, SIZE, appearance_distance, appearance_histograms


def _painted(k: np.ndarray, shirt: tuple, trousers: tuple, size=(480, 640)) -> np.ndarray:
    """A grey image with the trunk (shoulders to hips) painted ``shirt`` and the legs (hips
    down a torso) ``trousers``, BGR, wider than the stripes read."""
    image = np.full((*size, 3), 128, np.uint8)
    shoulders, hips = k[[5, 6]].mean(axis=0), k[[11, 12]].mean(axis=0)
    torso = hips[1] - shoulders[1]
    x1, x2 = int(min(k[5, 0], k[6, 0]) - 5), int(max(k[5, 0], k[6, 0]) + 5)
    image[int(shoulders[1]):int(hips[1]), x1:x2] = shirt
    image[int(hips[1]):int(hips[1] + torso), x1:x2] = trousers
    return image


def _bin(h: float, s: float, v: float) -> int:
    """Index of OpenCV's HSV (H 0-180, S and V 0-256) in a BINS histogram, row-major."""
    return (int(h // (180 / BINS[0])) * BINS[1] + int(s // (256 / BINS[1]))) * BINS[2] + int(v // (256 / BINS[2]))


def test_a_single_coloured_stripe_fills_one_bin():
    """Pure red (BGR 0, 0, 255: HSV 0, 255, 255) trunk and pure blue (BGR 255, 0, 0: HSV 120,
    255, 255) legs: each stripe's mass, halved, in the one bin of its colour."""
    k = person(320, 300, 300)
    found = appearance_histograms(_painted(k, (0, 0, 255), (255, 0, 0)), k[None], np.ones((1, 17)), 0.5)
    assert found.shape == (1, SIZE) and found.dtype == np.float32
    expected = np.zeros(SIZE)
    expected[_bin(0, 255, 255)] = 0.5
    expected[SIZE // 2 + _bin(120, 255, 255)] = 0.5
    np.testing.assert_allclose(found[0], expected, atol=1e-6)


def test_the_distance_is_0_for_the_same_colours_and_1_for_others():
    k, moved = person(200, 300, 300), person(420, 280, 260)
    red_blue = appearance_histograms(_painted(k, (0, 0, 255), (255, 0, 0)), k[None], np.ones((1, 17)), 0.5)[0]
    again = appearance_histograms(_painted(moved, (0, 0, 255), (255, 0, 0)), moved[None], np.ones((1, 17)), 0.5)[0]
    green = appearance_histograms(_painted(k, (0, 255, 0), (255, 0, 0)), k[None], np.ones((1, 17)), 0.5)[0]
    assert appearance_distance(red_blue, again) == pytest.approx(0.0, abs=1e-6)
    # the trunks share nothing, the legs everything: BC = 0.5 (the legs' bin), distance sqrt(1 - 0.5)
    assert appearance_distance(red_blue, green) == pytest.approx(np.sqrt(0.5), abs=1e-4)
    assert np.isnan(appearance_distance(red_blue, np.full(SIZE, np.nan, np.float32)))


def test_no_descriptor_without_the_trunk_or_inside_the_image():
    k = person(320, 300, 300)
    image = _painted(k, (0, 0, 255), (255, 0, 0))
    scores = np.ones((1, 17))
    scores[0, 11] = 0.2  # a hip not seen
    assert np.isnan(appearance_histograms(image, k[None], scores, 0.5)).all()
    off = k + [1000, 0]  # outside the picture
    assert np.isnan(appearance_histograms(image, off[None], np.ones((1, 17)), 0.5)).all()
    assert appearance_histograms(image, np.zeros((0, 17, 2)), np.zeros((0, 17)), 0.5).shape == (0, SIZE)


def test_appearance_separation_pairs_one_person_over_time_and_two_at_once():
    """Two tracks seen at 0, 0.5, 1.0 and 1.5 s, each always the same one-bin descriptor, in
    different bins: the same person 1 s apart gives 2 pairs per track (0 -> 1.0, 0.5 -> 1.5),
    distance 0; two people at once 4 pairs, distance 1 (nothing shared); a NaN descriptor is
    left out (its frame makes no pair)."""
    one, two = np.zeros(SIZE, np.float32), np.zeros(SIZE, np.float32)
    one[0], two[1] = 1.0, 1.0
    rows = [(t, 1, one) for t in (0.0, 0.5, 1.0, 1.5)] + [(t, 2, two) for t in (0.0, 0.5, 1.0, 1.5)]
    same, different = appearance_separation(rows + [(2.0, 2, np.full(SIZE, np.nan, np.float32)), (2.0, 1, one)])
    np.testing.assert_allclose(same, np.zeros(5), atol=1e-6)  # track 1 also pairs 1.0 -> 2.0
    np.testing.assert_allclose(different, np.ones(4), atol=1e-6)
