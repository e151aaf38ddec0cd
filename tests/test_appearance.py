"""Appearance descriptors (stream/track/appearance.py) on painted images, against histograms
worked out by hand, and the tracker's use of them to find a lost person again."""

import numpy as np
import pytest

from poses import person
from posestream.offline.track_eval import appearance_separation
from posestream.stream.track.appearance import BINS, SIZE, appearance_distance, appearance_histograms
from posestream.stream.track.tracker import Tracker, TrackerConfig


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


def _reid(lost_looks: np.ndarray, new_looks: np.ndarray | None, config=TrackerConfig(smoothing=False)) -> list:
    """A person 80 px tall seen 10 frames, missed 3 while the camera pans, seen again 45 px
    back (too far for IoU / OKS) for 5 frames: the ids reported (from its third, when born)."""
    tracker = Tracker(config)
    scores = np.ones((1, 17), np.float32)
    for i in range(10):
        tracker.predict(i / 10)
        tracker.update(person(300 + 5 * i, 300, 80)[None], scores, np.full(1, 0.9), i / 10, appearances=lost_looks[None])
    for i in range(10, 13):
        tracker.predict(i / 10)
        tracker.update(np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros(0), i / 10,
                       appearances=np.zeros((0, SIZE), np.float32))
    ids = []
    for i in range(13, 18):
        tracker.predict(i / 10)
        looks = None if new_looks is None else new_looks[None]
        ids += tracker.update(person(300 + 5 * (i - 13), 300, 80)[None], scores, np.full(1, 0.9), i / 10,
                              appearances=looks).track_ids.tolist()
    return ids


def test_a_lost_person_is_found_again_only_by_someone_who_looks_alike():
    red, blue = np.zeros(SIZE, np.float32), np.zeros(SIZE, np.float32)
    red[_bin(0, 255, 255)] = red[SIZE // 2] = 0.5
    blue[_bin(120, 255, 255)] = blue[SIZE // 2] = 0.5  # another shirt, the same trousers: distance 0.71
    assert _reid(red, red) == [1, 1, 1]
    assert _reid(red, blue) == [2, 2, 2]  # someone else, where the lost person was
    assert _reid(red, blue, TrackerConfig(smoothing=False, reid_appearance=0.75)) == [1, 1, 1]
    assert _reid(red, blue, TrackerConfig(smoothing=False, reid_appearance=1.0)) == [1, 1, 1]  # the gate off
    assert _reid(red, np.full(SIZE, np.nan, np.float32)) == [2, 2, 2]  # the new one's trunk not seen
    assert _reid(red, None) == [2, 2, 2]  # no descriptor for the new one: one side has one, both must
    with pytest.raises(ValueError):
        TrackerConfig(reid_appearance=1.5)


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
