"""Detector and keypoint decoders against hand-computed values, through real ONNX Runtime sessions."""

import numpy as np
import pytest

from posestream.engines.backend import OnnxRuntimeBackend
from posestream.stream.detect import RTMDet, YOLOX
from posestream.engines.errors import ModelSignatureError
from posestream.stream.pose import RTMPose, simcc_decode
from onnx_builders import constant_outputs_model, rtmpose_like


def _yolox_output(entries):
    """A raw YOLOX-416 output with the given (anchor index, dx, dy, log w, log h, obj, person) rows."""
    out = np.zeros((1, 3549, 85), np.float32)
    for index, dx, dy, lw, lh, obj, cls in entries:
        out[0, index, :6] = [dx, dy, lw, lh, obj, cls]
    return out


def test_yolox_decode_grid_stride_and_letterbox():
    out = _yolox_output([
        (5 * 52 + 10, 0.5, 0.25, np.log(4.0), np.log(8.0), 0.9, 0.8),   # stride 8, grid (x=10, y=5)
        (5 * 52 + 11, 0.5, 0.25, np.log(4.0), np.log(8.0), 0.9, 0.7),   # near-duplicate, suppressed by NMS
        (2704 + 3 * 26 + 7, 0.0, 0.0, 0.0, 0.0, 0.9, 0.2),              # stride 16, score 0.18 < 0.3
    ])
    backend = OnnxRuntimeBackend(constant_outputs_model("images", [1, 3, 416, 416], {"output": out},
                                                        batch_follows_input=False))
    detector = YOLOX(backend, score_threshold=0.3, iou_threshold=0.45)
    image = np.zeros((208, 832, 3), np.uint8)  # letterbox ratio 0.5
    detections = detector(image)
    # centre ((10 + 0.5) * 8, (5 + 0.25) * 8) = (84, 42), size (32, 64) in network px; / 0.5 in image px
    np.testing.assert_allclose(detections.bboxes, [[136, 20, 200, 148]], atol=1e-3)
    np.testing.assert_allclose(detections.scores, [0.72], atol=1e-6)


def test_yolox_rejects_a_model_with_other_inputs():
    backend = OnnxRuntimeBackend(constant_outputs_model("input_1", [1, 256, 256, 3], {"Identity": np.zeros((1, 195))}))
    with pytest.raises(ModelSignatureError, match="expected input 'images'"):
        YOLOX(backend)


def test_rtmdet_keeps_people_and_maps_boxes_back():
    dets = np.array([[[40, 20, 120, 200, 0.9], [0, 0, 10, 10, 0.95], [50, 60, 70, 80, 0.1]]], np.float32)
    labels = np.array([[0, 2, 0]], np.int64)
    backend = OnnxRuntimeBackend(constant_outputs_model("input", [1, 3, 320, 320], {"dets": dets, "labels": labels}))
    detector = RTMDet(backend, score_threshold=0.3)
    detections = detector(np.zeros((640, 480, 3), np.uint8))  # ratio 0.5
    np.testing.assert_allclose(detections.bboxes, [[80, 40, 240, 400]])
    np.testing.assert_allclose(detections.scores, [0.9])


def test_simcc_decode_uses_min_of_the_two_peaks_and_split_ratio():
    x = np.zeros((1, 2, 384), np.float32)
    y = np.zeros((1, 2, 512), np.float32)
    x[0, 0, 100], y[0, 0, 300] = 0.9, 0.6
    x[0, 1, 7], y[0, 1, 9] = 0.4, 0.8
    keypoints, scores = simcc_decode(x, y, 2.0)
    np.testing.assert_allclose(keypoints[0], [[50, 150], [3.5, 4.5]])
    np.testing.assert_allclose(scores[0], [0.6, 0.4])


def test_rtmpose_end_to_end_batched_and_mapped_back():
    peaks_x = np.arange(17) * 20 + 12          # bins -> crop x = bin / 2
    peaks_y = np.arange(17) * 25 + 40
    values_x = np.linspace(0.5, 0.9, 17)
    values_y = np.full(17, 0.7)
    backend = OnnxRuntimeBackend(rtmpose_like(peaks_x, peaks_y, values_x, values_y))
    calls = []
    original = backend.run
    backend.run = lambda feeds, names=None: calls.append(feeds["input"].shape) or original(feeds, names)
    pose = RTMPose(backend)
    boxes = np.array([[100, 50, 196, 178], [300, 100, 396, 228], [0, 0, 48, 64]], np.float32)
    result = pose(np.zeros((400, 500, 3), np.uint8), boxes)
    assert calls == [(3, 3, 256, 192)]  # every crop of the frame in one call
    # box 0: centre (148, 114), crop 120 x 160 onto 192 x 256, scale 1.6
    expected0 = np.stack([148 + (peaks_x / 2 - 96) / 1.6, 114 + (peaks_y / 2 - 128) / 1.6], 1)
    np.testing.assert_allclose(result.keypoints[0], expected0, atol=1e-3)
    np.testing.assert_allclose(result.keypoints[1], expected0 + [200, 50], atol=1e-3)
    # box 2: 48 x 64 -> 60 x 80 crop around (24, 32): scale 3.2
    expected2 = np.stack([24 + (peaks_x / 2 - 96) / 3.2, 32 + (peaks_y / 2 - 128) / 3.2], 1)
    np.testing.assert_allclose(result.keypoints[2], expected2, atol=1e-3)
    np.testing.assert_allclose(result.keypoint_scores[0], np.minimum(values_x, values_y), atol=1e-6)
