#!/usr/bin/env python3
"""Make the ZeroMQ CURVE certificates a tcp live graph needs (``graph.curve_keys``).

    python tools/curve_keys.py keys/

Writes ``server.key`` / ``server.key_secret`` (the binding side of every socket) and
``client.key`` / ``client.key_secret`` (the connecting side, subscribers included) with
``zmq.auth.create_certificates``. Copy the folder to every host of the graph; keep the
``*_secret`` files private (they are written mode 0600).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import zmq.auth


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    for name in ("server", "client"):
        public, secret = zmq.auth.create_certificates(args.folder, name)
        os.chmod(secret, 0o600)
        print(f"wrote {public} and {secret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
