#!/usr/bin/env python3
"""Make the ZeroMQ CURVE certificates of a tcp live graph (``graph.curve_keys``) and of the
programs allowed to subscribe to its results.

    python tools/curve_keys.py keys/                        # the graph's own certificates
    python tools/curve_keys.py keys/ --subscriber dashboard  # one subscriber's certificate

The graph's certificates: ``server.key`` / ``server.key_secret`` (the binding side of every
socket, the results PUB socket too) and ``client.key`` / ``client.key_secret`` (the connecting
side of the graph's own sockets; only needed when stages run on several hosts, a single-host
tcp graph makes keys for each run). Copy the folder to every host of the graph.

A subscriber's certificate: ``NAME.key_secret`` (give it, with ``server.key``, to that program
only: ``tools/subscribe.py ENDPOINT --curve-keys keys/ --name NAME``) and its public half in
``subscribers/NAME.key``: the PUB socket lets in exactly the keys in ``subscribers/`` (remove
a file to shut that subscriber out), never the graph's own client key. Made with
``zmq.auth.create_certificates``; every ``*_secret`` file is written mode 0600.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import zmq.auth


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--subscriber", action="append", default=[], metavar="NAME",
                        help="make a certificate for a subscriber of the results and allow it (repeatable)")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    names = args.subscriber or ["server", "client"]
    for name in names:
        if not name.replace("-", "").replace("_", "").isalnum():
            parser.error(f"subscriber name {name!r}: letters, digits, - and _ only")
        if args.subscriber and name in ("server", "client"):
            parser.error(f"subscriber name {name!r} is the graph's own certificate: choose another")
        public, secret = zmq.auth.create_certificates(args.folder, name)
        os.chmod(secret, 0o600)
        if args.subscriber:
            allowed = args.folder / "subscribers"
            allowed.mkdir(exist_ok=True)
            shutil.move(public, allowed / Path(public).name)
            public = allowed / Path(public).name
        print(f"wrote {public} and {secret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
