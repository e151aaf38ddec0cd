"""What every stage process shares: the ZeroMQ context, sockets (CURVE over tcp, every message
sealed with the run's token), heartbeats, counters, and dying with the supervisor."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import defaultdict

import zmq

from posestream.stream.graph.wire import ForgedMessage, WireError, decode, encode, header
from posestream.stream.graph.endpoints import secure, start_authenticator

log = logging.getLogger("posestream.graph")


#: Exit status of a capture stage whose source cannot be opened (not worth restarting).
EXIT_BAD_SOURCE = 2
#: Exit status of a capture stage whose source failed part-way (its stream was ended with EOS).
EXIT_SOURCE_FAILED = 3


#: Seconds a stage whose supervisor died has to close its files before the kernel ends it.
ORPHAN_GRACE_SECONDS = 10
_parent_pid: int | None = None  # the supervisor's pid (die_with_parent)


def end_if_orphaned(seconds: int = ORPHAN_GRACE_SECONDS) -> None:
    """When the supervisor is gone, have the kernel end this process in ``seconds`` whatever it
    is doing then (``alarm(2)``: SIGALRM's default action, no Python handler involved). The
    orderly stop that SIGTERM starts closes the files, but can hang: a ZeroMQ context's term,
    run by a finalizer while another thread still blocks on one of its sockets, waits forever
    (seen in CI), and a stage must never outlive its supervisor. Nothing when the supervisor
    lives (it stops its stages itself)."""
    if _parent_pid is not None and os.getppid() != _parent_pid:
        signal.alarm(max(1, int(seconds)))


def _exit_on_term(*_) -> None:
    end_if_orphaned()
    raise SystemExit(143)


def die_with_parent(parent_pid: int | None) -> None:
    """Ask Linux to send this process SIGTERM when its parent (the supervisor) dies, however it
    dies (``prctl(PR_SET_PDEATHSIG)``, see prctl(2)); where that is not available, the heartbeat
    thread checks the parent instead (:meth:`Stage._heartbeats`). The SIGTERM handlers give an
    orphaned stage :data:`ORPHAN_GRACE_SECONDS` to stop (:func:`end_if_orphaned`). Exits at
    once when the parent is already gone."""
    global _parent_pid
    _parent_pid = parent_pid
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if parent_pid is not None and os.getppid() != parent_pid:  # died before prctl took effect
        raise SystemExit(143)


class Stage:
    """What every stage shares: ZeroMQ context, heartbeat thread, counters.

    Args:
        spec: the stage's spec (see :mod:`posestream.stream.graph.supervisor`).
    """

    def __init__(self, spec: dict):
        self.spec, self.name = spec, spec["name"]
        self.graph = spec["config"]["graph"]
        self.token = bytes.fromhex(spec["token"]) if spec.get("token") else None
        self.keys = spec.get("curve")  # the run's CURVE keys (tcp), see endpoints.curve_keys_for_run
        self.parent = spec.get("parent_pid")
        self.context = zmq.Context()
        self.auth = start_authenticator(self.context, self.keys, self.graph.get("curve_keys"))
        self.counters = defaultdict(int)
        self.state = "starting"
        self.busy_since: float | None = None
        self._stop = threading.Event()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _exit_on_term)  # capture replaces this; close() still sends a last heartbeat
        self._beat = threading.Thread(target=self._heartbeats, daemon=True)
        self._beat.start()

    def socket(self, kind: int, endpoint: str, bind: bool, hwm: int | None = None) -> zmq.Socket:
        """A socket of ``kind`` bound or connected to ``endpoint`` (CURVE over tcp with the run's
        keys), its high-water mark ``hwm`` messages each way, lingering 2 s at close."""
        sock = self.context.socket(kind)
        if hwm is not None:
            sock.sndhwm = sock.rcvhwm = hwm
        sock.linger = 2000
        secure(sock, endpoint, bind, self.keys)
        return sock

    def send(self, sock: zmq.Socket, head: dict, image=None, flags: int = 0) -> None:
        """Send one message to another stage, sealed with the run's token (image not copied)."""
        sock.send_multipart(encode(head, image, self.token), copy=False, flags=flags)

    def _heartbeats(self) -> None:
        sock = self.context.socket(zmq.PUSH)
        sock.linger = 0
        sock.sndhwm = 10
        secure(sock, self.spec["endpoints"]["control"], False, self.keys)
        while not self._stop.is_set():
            self.send_heartbeat(sock)
            self._stop.wait(self.graph["heartbeat_interval"])
            if self.parent is not None and os.getppid() != self.parent:  # the supervisor is gone
                log.error("%s: the supervisor is gone; stopping", self.name)
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5.0)  # an orderly stop closes the files; one stuck in a call ends here
                os._exit(143)
        self.send_heartbeat(sock)
        sock.close()

    def send_heartbeat(self, sock) -> None:
        """Send state, counters, busy seconds and :meth:`extra` on the control socket (never blocks)."""
        busy = None if self.busy_since is None else time.monotonic() - self.busy_since
        try:
            sock.send_multipart(encode(header("heartbeat", "", stage=self.name, pid=os.getpid(), state=self.state,
                                              busy=busy, counters=dict(self.counters), extra=self.extra()),
                                       token=self.token), flags=zmq.NOBLOCK)
        except (zmq.Again, RuntimeError):  # queue full, or counters changed while copied: next beat
            pass

    def extra(self) -> dict:
        """Stage-specific figures sent with each heartbeat."""
        return {}

    def receive(self, sock: zmq.Socket):
        """One message from ``sock`` (decoded and checked), or None if it was not sealed with the
        run's token (counted as ``forged``) or malformed (counted as ``malformed``)."""
        parts = sock.recv_multipart(copy=False)
        try:
            return decode(parts, self.token)
        except WireError as exc:
            forged = isinstance(exc, ForgedMessage)
            self.counters["forged" if forged else "malformed"] += 1
            if self.counters["forged"] + self.counters["malformed"] <= 20:  # never flood the log
                log.warning("%s: dropped a %s message (%s)", self.name, "forged" if forged else "malformed", exc)
            return None

    def close(self) -> None:
        """Stop the heartbeats (a last one goes out) and close every socket."""
        self._stop.set()
        self._beat.join(timeout=2)
        if self.auth is not None:
            self.auth.stop()
        self.context.destroy(linger=2000)
