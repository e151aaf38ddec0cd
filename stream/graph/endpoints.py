"""Where the live graph's sockets meet, and CURVE security for tcp.

ipc (default): Unix sockets in the run's private folder (mode 0700), reachable only on this
host. tcp: ports from ``base_port`` on ``host``; every tcp socket of the graph is then
encrypted and authenticated with ZeroMQ CURVE, always: with keys made for the run
(:func:`curve_keys_for_run`), or with the certificates of ``graph.curve_keys`` (made by
``tools/curve_keys.py``) when stages run on several hosts. The binding side lets in only the
run's client key; the results PUB socket lets in only the subscribers listed in
``<curve_keys>/subscribers/`` (ZeroMQ's ZAP handler), never the graph's own client key.
"""

from __future__ import annotations

import os
from pathlib import Path

import zmq


#: Longest Unix socket path, bytes (``sizeof(sockaddr_un.sun_path)`` − 1 on Linux).
IPC_PATH_MAX = getattr(zmq, "IPC_PATH_MAX_LEN", 107) or 107


def _start_time(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (``/proc/PID/stat`` field 22), or None
    when there is no such process: with the pid, it names a process even after pids are reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def clean_stale_run_dirs() -> list[str]:
    """Remove the run folders (``posestream-*`` in ``$TMPDIR`` and ``/tmp``) whose supervisor is
    gone (killed without a chance to clean up): folders of this user holding an ``owner`` file
    whose process no longer runs. Returns the folders removed."""
    import shutil
    import tempfile

    removed = []
    for parent in dict.fromkeys([tempfile.gettempdir(), "/tmp"]):
        for folder in Path(parent).glob("posestream-*"):
            try:
                if folder.stat().st_uid != os.getuid():
                    continue
                pid, started = (folder / "owner").read_text().split()
            except (OSError, ValueError):
                continue
            if _start_time(int(pid)) != started:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(str(folder))
    return removed


def run_dir() -> str:
    """A new private folder (mode 0700) for the run's ipc sockets whose socket paths fit
    :data:`IPC_PATH_MAX`: under ``$TMPDIR`` when short enough, else under ``/tmp``. It holds an
    ``owner`` file (this process's pid and start time) for :func:`clean_stale_run_dirs`.

    Raises:
        ValueError: neither is short enough (says what to do).
    """
    import shutil
    import tempfile

    longest = len("/posestream-XXXXXXXX/f999")  # mkdtemp's 8 random characters, the longest socket name
    for parent in (None, "/tmp"):
        folder = tempfile.mkdtemp(prefix="posestream-", dir=parent)
        if len(folder.encode()) + len("/f999") <= IPC_PATH_MAX:
            Path(folder, "owner").write_text(f"{os.getpid()} {_start_time(os.getpid())}")
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


def curve_keys_for_run(curve_keys: str | None) -> dict[str, str]:
    """The CURVE keys of one run's internal tcp sockets, Z85 text: ``server_public``,
    ``server_secret``, ``client_public``, ``client_secret``.

    From the certificates in ``curve_keys`` (``server.key_secret``, ``client.key_secret``;
    stages on several hosts) or, without that folder, a fresh pair of each made for this run
    (``zmq.curve_keypair``) and given to the stages through their private spec pipe only.

    Raises:
        FileNotFoundError: a certificate is missing from ``curve_keys``.
    """
    if curve_keys:
        from zmq.auth import load_certificate

        pairs = [load_certificate(Path(curve_keys) / f"{name}.key_secret") for name in ("server", "client")]
    else:
        pairs = [zmq.curve_keypair(), zmq.curve_keypair()]
    (server_public, server_secret), (client_public, client_secret) = pairs
    return {"server_public": server_public.decode(), "server_secret": server_secret.decode(),
            "client_public": client_public.decode(), "client_secret": client_secret.decode()}


#: ZAP domain of the graph's own sockets (only the run's client key is let in).
GRAPH_DOMAIN = "graph"
#: ZAP domain of the results PUB socket (only the public keys in ``<curve_keys>/subscribers/``).
SUBSCRIBERS_DOMAIN = "subscribers"


def secure(socket: zmq.Socket, endpoint: str, bind: bool, keys: dict | None, domain: str = GRAPH_DOMAIN) -> None:
    """Bind or connect ``socket``; over tcp with ``keys`` (:func:`curve_keys_for_run`), as a CURVE
    server (binding, in ZAP ``domain``) or client. ipc sockets are left as they are: they live
    in the run's private folder and every message on them is sealed with the run's token."""
    if endpoint.startswith("tcp://") and keys:
        if bind:
            socket.curve_secretkey, socket.curve_publickey = keys["server_secret"].encode(), keys["server_public"].encode()
            socket.curve_server = True
            socket.zap_domain = domain.encode()
        else:
            socket.curve_secretkey, socket.curve_publickey = keys["client_secret"].encode(), keys["client_public"].encode()
            socket.curve_serverkey = keys["server_public"].encode()
    (socket.bind if bind else socket.connect)(endpoint)


class _AllowList:
    """ZAP credentials provider: domain → the Z85 public keys let in."""

    def __init__(self, allowed: dict[str, set[bytes]]):
        self.allowed = allowed

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self.allowed.get(domain, set())


def subscriber_keys(curve_keys: str | None) -> set[bytes]:
    """Z85 public keys of the subscribers allowed on the results PUB socket: every certificate
    in ``<curve_keys>/subscribers/`` (made by ``tools/curve_keys.py DIR --subscriber NAME``)."""
    from zmq.auth import load_certificate

    folder = Path(curve_keys or "") / "subscribers"
    if not curve_keys or not folder.is_dir():
        return set()
    return {load_certificate(path)[0] for path in sorted(folder.glob("*.key"))}


def start_authenticator(context: zmq.Context, keys: dict | None, curve_keys: str | None = None):
    """On a process that binds tcp sockets with CURVE: a ZAP handler (thread) that lets into
    the graph's sockets only the run's client key and into the PUB socket only the listed
    subscribers (:func:`subscriber_keys`). Returns it (stop() at exit), or None when neither
    the graph's sockets (``keys``) nor a PUB socket (``curve_keys``) use CURVE."""
    if not keys and not curve_keys:
        return None
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context)
    auth.start()
    allowed = {GRAPH_DOMAIN: {keys["client_public"].encode()} if keys else set(),
               SUBSCRIBERS_DOMAIN: subscriber_keys(curve_keys)}
    auth.configure_curve_callback(domain=GRAPH_DOMAIN, credentials_provider=_AllowList(allowed))
    auth.configure_curve_callback(domain=SUBSCRIBERS_DOMAIN, credentials_provider=_AllowList(allowed))
    return auth
