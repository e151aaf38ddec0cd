"""The live graph's message format: round trips, zero copies, and every kind of malformed message."""

import msgpack
import numpy as np
import pytest

from posestream.stream.graph.wire import SCHEMA_VERSION, WireError, decode, encode, header


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
