"""Where the live graph's sockets meet, and CURVE security for tcp.

ipc (default): Unix sockets in the run's folder, reachable only on this host. tcp: ports from
``base_port`` on ``host``; every tcp socket is then encrypted and authenticated with ZeroMQ
CURVE (certificates made by ``tools/curve_keys.py``: ``server.key(_secret)`` for binding
sockets, ``client.key(_secret)`` for connecting ones, both trusted by the binding side).
"""

from __future__ import annotations

import re
from pathlib import Path

import zmq


def endpoints(graph: dict, run_dir: str, streams: list[str]) -> dict:
    """Endpoint of each bound socket: ``frames`` (one per stream), ``detections``, ``results``, ``control``.

    Args:
        graph: the ``graph`` config section (dict). run_dir: folder for ipc files. streams: stream ids.
    """
    names = ["control", "detections", "results"] + [f"frames-{s}" for s in streams]
    if graph["transport"] == "ipc":
        out = {n: f"ipc://{Path(run_dir) / re.sub(r'[^A-Za-z0-9_.-]', '_', n)}" for n in names}
    else:
        out = {n: f"tcp://{graph['host']}:{graph['base_port'] + i}" for i, n in enumerate(names)}
    out["frames"] = {s: out.pop(f"frames-{s}") for s in streams}
    return out


def secure(socket: zmq.Socket, endpoint: str, bind: bool, curve_keys: str | None) -> None:
    """Bind or connect ``socket``; over tcp with ``curve_keys``, as a CURVE server (binding) or client.

    Raises:
        FileNotFoundError: a certificate is missing from ``curve_keys``.
    """
    if endpoint.startswith("tcp://") and curve_keys:
        from zmq.auth import load_certificate

        keys = Path(curve_keys)
        if bind:
            public, secret = load_certificate(keys / "server.key_secret")
            socket.curve_secretkey, socket.curve_publickey = secret, public
            socket.curve_server = True
        else:
            public, secret = load_certificate(keys / "client.key_secret")
            server_public, _ = load_certificate(keys / "server.key")
            socket.curve_secretkey, socket.curve_publickey, socket.curve_serverkey = secret, public, server_public
    (socket.bind if bind else socket.connect)(endpoint)


def start_authenticator(context: zmq.Context, curve_keys: str | None):
    """On a process that binds tcp sockets with CURVE: accept only clients whose public key is in
    ``curve_keys`` (ZeroMQ's ZAP handler in a thread). Returns it (stop() at exit) or None."""
    if not curve_keys:
        return None
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=str(curve_keys))
    return auth
