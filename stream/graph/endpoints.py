"""Where the live graph's sockets meet, and CURVE security for tcp.

ipc (default): Unix sockets in the run's folder, reachable only on this host. tcp: ports from
``base_port`` on ``host``; every tcp socket is then encrypted and authenticated with ZeroMQ
CURVE (certificates made by ``tools/curve_keys.py``: ``server.key(_secret)`` for binding
sockets, ``client.key(_secret)`` for connecting ones, both trusted by the binding side).
"""

from __future__ import annotations

from pathlib import Path

import zmq


#: Longest Unix socket path, bytes (``sizeof(sockaddr_un.sun_path)`` − 1 on Linux).
IPC_PATH_MAX = getattr(zmq, "IPC_PATH_MAX_LEN", 107) or 107


def ipc_run_dir() -> str:
    """A new private folder for the run's ipc sockets whose socket paths fit :data:`IPC_PATH_MAX`:
    under ``$TMPDIR`` when short enough, else under ``/tmp``.

    Raises:
        ValueError: neither is short enough (says what to do).
    """
    import shutil
    import tempfile

    longest = len("/posestream-XXXXXXXX/f999")  # mkdtemp's 8 random characters, the longest socket name
    for parent in (None, "/tmp"):
        folder = tempfile.mkdtemp(prefix="posestream-", dir=parent)
        if len(folder.encode()) + len("/f999") <= IPC_PATH_MAX:
            return folder
        shutil.rmtree(folder, ignore_errors=True)
    raise ValueError(f"no temporary folder short enough for ipc sockets ({IPC_PATH_MAX} bytes, "
                     f"{longest} of them for posestream's names): set TMPDIR to a short folder, or use "
                     "graph: transport: tcp")


def endpoints(graph: dict, run_dir: str, streams: list[str]) -> dict:
    """Endpoint of each bound socket: ``frames`` (one per stream), ``detections``, ``results``, ``control``.

    Args:
        graph: the ``graph`` config section (dict). run_dir: folder for ipc files. streams: stream ids.
    """
    names = ["control", "detections", "results"] + [f"frames-{s}" for s in streams]
    if graph["transport"] == "ipc":
        # short file names (a Unix socket path holds at most 107 bytes): c, d, r, f0, f1, …
        files = ["c", "d", "r"] + [f"f{i}" for i in range(len(streams))]
        out = {n: f"ipc://{Path(run_dir) / f}" for n, f in zip(names, files)}
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
