"""Tiled detection (stream/detect/tiles.py): the tile grid against hand-computed layouts, the merge
with a stand-in detector that misses what is small at its input's scale, and the real YOLOX-Nano
on a shared clip's person pasted small into a 1920×1080 frame."""

import cv2
import numpy as np
import pytest

from conftest import shared_file
from posestream.stream.detect import Detections
from posestream.stream.detect.tiles import detect_tiled, tile_grid


def test_a_1080p_frame_is_two_square_tiles_overlapping_in_the_middle():
    assert tile_grid(1920, 1080, 1080).tolist() == [[0, 0, 1080, 1080], [840, 0, 1920, 1080]]


def test_frames_under_one_and_a_half_tiles_are_not_tiled():
    assert tile_grid(1280, 720, 1080).shape == (0, 4)  # a 720p webcam: 1.19 tiles
    assert tile_grid(1619, 900, 1080).shape == (0, 4)
    assert len(tile_grid(1620, 900, 1080)) == 2  # 1.5 tiles: 1080 × 900 (cut to the frame's height)


def test_a_4k_frame_is_covered_row_by_row_with_the_least_overlap():
    tiles = tile_grid(3840, 2160, 1080)
    # (3840 − 1080) / (0.8 × 1080) = 3.19 → 5 columns; (2160 − 1080) / 864 = 1.25 → 3 rows
    assert len(tiles) == 15
    xs, ys = sorted(set(tiles[:, 0].tolist())), sorted(set(tiles[:, 1].tolist()))
    assert xs == [0, 690, 1380, 2070, 2760] and ys == [0, 540, 1080]
    assert (tiles[:, 2:] - tiles[:, :2] == 1080).all()
    assert tiles[:, 2].max() == 3840 and tiles[:, 3].max() == 2160
    assert min(np.diff(xs)) <= 0.8 * 1080 and min(np.diff(ys)) <= 0.8 * 1080  # overlap ≥ 20 %


def test_bad_tile_settings_are_refused():
    with pytest.raises(ValueError, match="tile"):
        tile_grid(1920, 1080, 0)
    with pytest.raises(ValueError, match="overlap"):
        tile_grid(1920, 1080, 1080, overlap=1.0)


class SmallBlind:
    """Boxes each bright blob (> 147) of what it is shown, unless the blob is under 30 px tall
    at its 416 px input's scale (the shown image shrunk by 416 / its longer side), as a
    detector misses small people."""

    score_threshold, iou_threshold, max_detections = 0.3, 0.45, 100

    def __call__(self, image):
        scale = 416 / max(image.shape[:2])
        count, _, stats, _ = cv2.connectedComponentsWithStats((image[..., 0] > 147).astype(np.uint8))
        boxes = [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:] if h * scale >= 30]
        if not boxes:
            return Detections.empty()
        return Detections(np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32))


def _frame(*blobs):
    image = np.full((1080, 1920, 3), 40, np.uint8)
    for x1, y1, x2, y2 in blobs:
        image[y1:y2, x1:x2] = 255
    return image


def test_small_people_are_found_in_the_tiles_once_each_and_whole():
    small = (300, 500, 340, 600)  # 100 px tall: 21.7 px at the whole frame's scale, 38.5 in a tile
    in_both = (900, 400, 960, 500)  # inside both tiles (the overlap is x 840-1080)
    across = (1050, 700, 1110, 800)  # cut by the first tile's right edge, whole in the second
    large = (1500, 100, 1700, 1000)  # 900 px tall: found in the whole frame too
    found = detect_tiled(SmallBlind(), _frame(small, in_both, across, large), 1080)
    assert sorted(map(tuple, found.bboxes.astype(int).tolist())) == sorted([small, in_both, across, large])
    assert SmallBlind()(_frame(small, in_both, across)).bboxes.shape == (0, 4)  # the whole frame alone: none


def test_a_frame_too_small_to_tile_is_detected_once():
    calls = []

    class Counting(SmallBlind):
        def __call__(self, image):
            calls.append(image.shape)
            return super().__call__(image)

    detect_tiled(Counting(), np.full((720, 1280, 3), 40, np.uint8), 1080)
    assert calls == [(720, 1280, 3)]


def test_yolox_finds_a_person_200_px_tall_in_1080p_only_with_tiles():
    from posestream.stream.capture.files import VideoFileSource
    from posestream.stream.detect import load_detector

    detector = load_detector(str(shared_file("models/yolox_nano.onnx")), "cpu", 1)
    frame = next(iter(VideoFileSource(shared_file("media/har-wave/wave.mp4")))).image  # 420×420, the man ~390 px
    person = cv2.resize(frame, (215, 215), interpolation=cv2.INTER_AREA)  # the man ~200 px tall
    canvas = np.full((1080, 1920, 3), 235, np.uint8)
    canvas[300:515, 200:415] = person
    assert len(detector(canvas)) == 0
    found = detect_tiled(detector, canvas, 1080)
    # the best box is the pasted man, most of his height (the clip's armchair, bottom left of
    # the picture, gets a weaker box of its own)
    x1, y1, x2, y2 = found.bboxes[0]
    assert 200 <= x1 < x2 <= 415 and 300 <= y1 < y2 <= 515 and y2 - y1 > 150
    assert found.scores[0] >= 0.6


class CountingDetector:
    """A stand-in YOLOX: no boxes; records the size of every image it is shown."""

    score_threshold, iou_threshold, max_detections = 0.3, 0.45, 100

    def __init__(self):
        self.shown = []

    def __call__(self, image):
        self.shown.append(image.shape[:2])
        return Detections.empty()


@pytest.mark.parametrize("tile, runs", [(1080, [(1080, 1920), (1080, 1080), (1080, 1080)]), (0, [(1080, 1920)])])
def test_the_pipeline_detects_in_tiles_as_configured(tile, runs):
    from posestream.stream.config import PipelineConfig, RunConfig
    from posestream.stream.pipeline import PosePipeline

    detector = CountingDetector()
    config = RunConfig.from_dict({"pipeline": {"detect_tile": tile}}).pipeline
    PosePipeline(detector, None, config).detect(np.zeros((1080, 1920, 3), np.uint8))
    assert detector.shown == runs
    assert PipelineConfig().detect_tile == 1080  # the default


def test_a_tile_smaller_than_a_detector_input_is_refused():
    from posestream.stream.config import RunConfig

    with pytest.raises(ValueError, match="detect_tile: 0 .off. or at least 320"):
        RunConfig.from_dict({"pipeline": {"detect_tile": 16}})
    with pytest.raises(ValueError, match="detect_tile"):
        RunConfig.from_dict({"pipeline": {"detect_tile": -1}})
