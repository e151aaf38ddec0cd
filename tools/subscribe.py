#!/usr/bin/env python3
"""Example subscriber to the results that ``posestream live`` publishes (``sinks.pub``).

    python tools/subscribe.py tcp://127.0.0.1:5560 [--stream ID] [--count N] [--curve-keys DIR]

Each message has two parts: the topic (the stream id, UTF-8) and a msgpack map (schema in
README, *Live graph*): ``kind`` ``result`` with ``result`` = the JSON-lines record of the frame
(people, keypoints, track ids, 3D, labels, events), ``capture_ns``, ``result_ns``, ``timings``;
or ``kind`` ``eos`` when the stream ends. Prints one line per frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


import zmq  # noqa: E402

from posestream.stream.graph.wire import WireError, decode  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("endpoint")
    parser.add_argument("--stream", default="", help="only this stream id (a topic prefix)")
    parser.add_argument("--count", type=int, help="exit after this many results")
    parser.add_argument("--timeout", type=float, default=0, help="exit after this many seconds without a message")
    parser.add_argument("--curve-keys", help="CURVE certificates folder (tcp with keys): server.key and NAME.key_secret")
    parser.add_argument("--name", default="subscriber",
                        help="this subscriber's certificate NAME.key_secret (tools/curve_keys.py DIR --subscriber NAME)")
    args = parser.parse_args(argv)
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    if args.curve_keys:
        from zmq.auth import load_certificate

        public, secret = load_certificate(Path(args.curve_keys) / f"{args.name}.key_secret")
        sub.curve_secretkey, sub.curve_publickey = secret, public
        sub.curve_serverkey, _ = load_certificate(Path(args.curve_keys) / "server.key")
    sub.connect(args.endpoint)
    sub.setsockopt_string(zmq.SUBSCRIBE, args.stream)
    seen, last = 0, time.monotonic()
    while args.count is None or seen < args.count:
        if not sub.poll(200):
            if args.timeout and time.monotonic() - last > args.timeout:
                break
            continue
        topic, *parts = sub.recv_multipart()
        last = time.monotonic()
        try:
            message = decode(parts)
        except WireError as exc:
            print(f"{topic.decode()}: malformed ({exc})", file=sys.stderr)
            continue
        if message.kind == "eos":
            print(f"{topic.decode()}: end of stream after frame {message.header['last_frame_id']}", flush=True)
            continue
        record = message.header["result"]
        latency = (message.header["result_ns"] - message.header["capture_ns"]) / 1e6
        people = ", ".join(f"#{p['track_id']} {p['posture']}/{p['gesture']}" for p in record["instances"])
        print(f"{topic.decode()} frame {record['frame_id']} ({latency:.0f} ms): {people or 'nobody'}", flush=True)
        seen += 1
    context.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
