"""The detector's second look (stream/detect/second_look.py) with a stand-in detector that boxes
the bright pixels of what it is shown: crop geometry against hand-computed values."""

import numpy as np
import pytest

from posestream.stream.detect import Detections
from posestream.stream.detect.second_look import second_look


class BrightBoxes:
    """Boxes the bright pixels (> 147, midway between the picture's 40 and 255) of the crop it
    is given, as one person; keeps the crops."""

    input_size = (416, 416)

    def __init__(self):
        self.crops = []

    def __call__(self, image):
        self.crops.append(image)
        ys, xs = np.nonzero(image[..., 0] > 147)
        if not len(xs):
            return Detections.empty()
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        return Detections(box, np.array([0.9], np.float32))


def _image():
    image = np.full((480, 640, 3), 40, np.uint8)
    image[200:240, 300:316] = 255  # a "person" 16×40 px
    image[100:300, 0:30] = 255  # one cut by the left edge, 30 px in view
    return image


def test_a_small_box_is_enlarged_zoom_times_and_found_only_where_the_person_is():
    detector = BrightBoxes()
    boxes = np.array([[298, 198, 318, 242], [400, 200, 420, 240], [340, 200, 360, 240]], np.float32)
    found = second_look(detector, _image(), boxes, zoom=2.5)
    # the third box's crop (166 px about x 350) shows the person at x 300-316, but not over its centre
    assert found.tolist() == [True, False, False]
    assert (detector.crops[2][..., 0] > 147).any()
    # side = max(1.25 × 44, 416 / 2.5) = 166.4 px → scale 2.5: the 40 px person is 100 px high
    ys, xs = np.nonzero(detector.crops[0][..., 0] > 147)
    assert ys.max() + 1 - ys.min() == pytest.approx(100, abs=1)
    assert xs.max() + 1 - xs.min() == pytest.approx(40, abs=1)
    # and where: the box's centre (308, 220) is the crop's centre (208, 208); the person's
    # top-left corner (300, 200) lands at 208 + 2.5 × (300 - 308, 200 - 220) = (188, 158)
    assert (xs.min(), ys.min()) == (188, 158)


def test_a_large_box_is_scaled_to_the_input_not_enlarged_more():
    detector = BrightBoxes()
    assert second_look(detector, _image(), np.array([[-40, 95, 35, 305]], np.float32), zoom=2.5).tolist() == [True]
    # side = 1.25 × 210 = 262.5 px → scale 416 / 262.5; moved into the picture: the crop starts at
    # x 0, and its left column is the image's (bright), not grey padding
    crop = detector.crops[0]
    assert (crop[:, 0, 0] == 114).sum() == 0
    ys, xs = np.nonzero(crop[..., 0] > 147)
    assert xs.min() == 0
    assert ys.max() + 1 - ys.min() == pytest.approx(200 * 416 / 262.5, abs=2)


def test_bad_zoom_is_refused():
    with pytest.raises(ValueError):
        second_look(BrightBoxes(), _image(), np.zeros((1, 4), np.float32), zoom=0)
