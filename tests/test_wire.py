"""The live graph's message format: round trips, zero copies, and every kind of malformed message."""

import json

import msgpack
import numpy as np
import pytest

from posestream.stream.graph.wire import SCHEMA_VERSION, ForgedMessage, WireError, decode, encode, header


def test_frame_round_trip_without_copies():
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    parts = encode(header("frame", "cam0", 7, pts=0.7, capture_ns=123, timings={"detect": 1.5}), image)
    assert len(parts) == 2 and parts[1].nbytes == image.nbytes
    assert np.shares_memory(np.frombuffer(parts[1], np.uint8), image)  # the pixels are not copied to send
    received = [bytes(parts[0]), bytes(parts[1])]
    message = decode(received)
    assert message.kind == "frame" and message.header["frame_id"] == 7 and message.header["shape"] == [48, 64, 3]
    assert message.header["timings"] == {"detect": 1.5} and message.header["v"] == SCHEMA_VERSION
    np.testing.assert_array_equal(message.image, image)
    assert np.shares_memory(message.image, np.frombuffer(received[1], np.uint8))  # nor copied when received


def test_control_messages_have_no_buffer():
    message = decode(encode(header("eos", "cam0", last_frame_id=12)))
    assert message.kind == "eos" and message.image is None and message.header["last_frame_id"] == 12


BASE = {"v": SCHEMA_VERSION, "kind": "frame", "stream": "a", "frame_id": 1, "pts": 0.0, "capture_ns": 1, "timings": {}}


@pytest.mark.parametrize("parts, match", [
    ([b"\xc1 not msgpack"], "not msgpack"),
    ([msgpack.packb([1, 2])], "not a map"),
    ([msgpack.packb({"v": 99, "kind": "eos", "stream": "a"})], "schema version 99"),
    ([msgpack.packb({"v": SCHEMA_VERSION, "kind": "pickle", "stream": "a"})], "bad kind"),
    ([msgpack.packb(BASE)], "without its buffer"),
    ([msgpack.packb({**BASE, "shape": [2, 2, 3], "dtype": "uint8"}), b"\x00" * 11], "holds 11 bytes"),
    ([msgpack.packb({**BASE, "shape": [2, 2], "dtype": "uint8"}), b"\x00" * 4], "bad frame shape"),
    ([msgpack.packb({**BASE, "pts": "soon"})], "'pts' missing"),
    ([msgpack.packb({**BASE, "frame_id": True})], "'frame_id' missing"),
    ([msgpack.packb({**BASE, "frame_id": 0})], "frame_id 0 < 1"),
    ([msgpack.packb({"v": SCHEMA_VERSION, "kind": "eos", "stream": "a"})], "'last_frame_id' missing"),
    ([b"a", b"b", b"c"], "1 or 2 parts"),
    ([], "1 or 2 parts"),
])
def test_malformed_messages_are_refused(parts, match):
    with pytest.raises(WireError, match=match):
        decode(parts)


def test_only_uint8_bgr_frames_are_sent():
    with pytest.raises(ValueError, match="uint8"):
        encode(header("frame", "a", 1), np.zeros((4, 4, 3), np.float32))


# -- every field of a result is checked at the socket (issue 15, item 2) ----------------------------

def _result(record) -> list:
    return encode(header("result", "a", 1, pts=0.0, capture_ns=1, timings={}, result=record))


GOOD = {"frame_id": 1, "pts": 0.0, "width": 64, "height": 48, "events": [],
        "instances": [{"bbox": [1, 2, 30, 60], "bbox_score": 0.9, "keypoints": [[5, 6]] * 17,
                       "keypoint_scores": [0.8] * 17, "extra_keypoints": [[1, 1]] * 4,
                       "extra_keypoint_scores": [0.5] * 4, "track_id": 3, "keypoints_3d": [[0, 0, 0]] * 17,
                       "posture": "standing", "gesture": "none"}]}


def test_a_whole_result_record_passes():
    assert decode(_result(GOOD)).header["result"] == GOOD


@pytest.mark.parametrize("change, match", [
    ({"instances": {"a": 1}}, "instances and events"),
    ({"frame_id": 2}, "differs"),
    ({"width": "64"}, "width"),
    ({"pts": float("inf")}, "pts"),
    ({"events": ["x"]}, "events"),
    ({"instance": {"keypoints": "nose"}}, "keypoints: expected numbers"),
    ({"instance": {"keypoints": [[5, 6]] * 16}}, r"keypoints: shape \(16, 2\)"),
    ({"instance": {"keypoint_scores": [float("nan")] * 17}}, "NaN"),
    ({"instance": {"bbox": [1, 2, 3]}}, "bbox: shape"),
    ({"instance": {"track_id": "3"}}, "track_id"),
    ({"instance": {"track_id": True}}, "track_id"),
    ({"instance": {"keypoints_3d": [[0, 0]] * 17}}, "keypoints_3d"),
    ({"instance": {"extra_keypoint_scores": [0.5] * 3}}, "extra_keypoint_scores"),
    ({"instance": {"posture": 7}}, "posture"),
])
def test_a_decodable_but_wrong_result_is_refused(change, match):
    record = json.loads(json.dumps(GOOD))
    record["instances"][0].update(change.pop("instance", {}))
    record.update(change)
    with pytest.raises(WireError, match=match):
        decode(_result(record))


@pytest.mark.parametrize("fields, match", [
    ({"seq": "1"}, "'seq'"), ({"seq": 0}, "seq 0"), ({"epoch": -1}, "'epoch'"), ({"fps": float("nan")}, "'fps'"),
    ({"detect": 1}, "'detect'"), ({"bboxes": [[1, 2, 3, 4]], "bbox_scores": []}, "detections"),
    ({"bboxes": [["a", 2, 3, 4]], "bbox_scores": [1.0]}, "detections"), ({"timings": {"detect": "1"}}, "timings"),
])
def test_frame_fields_have_their_types(fields, match):
    head = header("frame", "a", 1, **{"pts": 0.0, "capture_ns": 1, "timings": {}, **fields})
    with pytest.raises(WireError, match=match):
        decode(encode(head, np.zeros((2, 2, 3), np.uint8)))


def test_sealed_messages_need_the_run_token():
    parts = encode(header("eos", "a", last_frame_id=3), token=b"k" * 16)
    assert decode(parts, b"k" * 16).header["last_frame_id"] == 3
    with pytest.raises(ForgedMessage):
        decode(parts, b"x" * 16)
    with pytest.raises(ForgedMessage):
        decode(encode(header("eos", "a", last_frame_id=3)), b"k" * 16)
