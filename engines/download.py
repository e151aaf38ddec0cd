"""Downloading model files: progress bar, resume, overall deadline, sha256 check, atomic rename.

A download goes to ``<dest>.part``; an interrupted one resumes with an HTTP ``Range`` request.
Only a file whose sha256 matches is renamed into place, so a corrupt or tampered download is
never cached. What the server says is never taken on trust:

* a ``206`` whose ``Content-Range`` does not start where the ``.part`` ends, and a ``200``
  answering a ``Range`` request (a server that ignores ranges), restart the file from zero;
* a ``416 Range Not Satisfiable`` answer to a resume restarts the file from zero (the ``.part``
  may be longer than the file, or another file altogether); a ``.part`` that already has an
  accepted sha256 is renamed into place without asking the server anything;
* a body shorter than its ``Content-Length`` (the connection dropped) is an error that keeps
  the ``.part`` for the next run to resume; ``http.client`` itself reports such a body as a
  clean end of file;
* the whole transfer, connection included, has a deadline (``deadline`` seconds), not only a
  per-read socket timeout, so a server that trickles bytes cannot hold a run for hours.

Errors are :class:`~posestream.engines.errors.ModelError` subclasses with one-line messages
(the command line prints them without a traceback).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from posestream.engines.errors import ModelHashError, ModelNotFoundError

log = logging.getLogger(__name__)

#: Bytes per read of the response body (64 KiB).
CHUNK = 1 << 16

#: Default overall deadline of one download, seconds: 10 minutes, enough for the largest zoo
#: file (~110 MB) at ~200 kB/s.
DEFAULT_DEADLINE = 600.0

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")

#: errno values that mean "no route to the server" rather than "the server said no".
_OFFLINE_ERRNOS = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN,
                   errno.EHOSTDOWN, errno.EADDRNOTAVAIL}


def sha256_of(path: str | Path) -> str:
    """Return the hex sha256 (64 lowercase hex digits) of a file, read in 1 MiB blocks.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, accepted: tuple[str, ...] | frozenset[str], what: str) -> str:
    """Return the file's sha256 if it is one of ``accepted`` (or ``accepted`` is empty).

    Args:
        path: the file.
        accepted: lowercase hex digests; empty means "unknown, accept any".
        what: the model's name, for the message.

    Raises:
        ModelHashError: the file's sha256 is not accepted.
    """
    digest = sha256_of(path)
    if accepted and digest not in accepted:
        raise ModelHashError(
            f"{what}: {path} has sha256 {digest[:16]}…, expected {' or '.join(a[:16] + '…' for a in sorted(accepted))}"
            " (corrupt or a different file; delete it to download again)"
        )
    return digest


class _DeadlineExceeded(Exception):
    """Internal: the overall deadline passed during the transfer."""


def _offline_reason(exc: BaseException) -> str | None:
    """A short reason when ``exc`` means the server cannot be reached at all (DNS failure,
    connection refused, no route, connect timeout); None when the server answered."""
    if not isinstance(exc, urllib.error.URLError) or isinstance(exc, urllib.error.HTTPError):
        return None  # urllib wraps only connecting and sending; later errors come from a live server
    reason = exc.reason
    if isinstance(reason, socket.gaierror):
        return f"host name lookup failed ({reason.strerror or reason})"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "connection timed out"
    if isinstance(reason, OSError) and reason.errno in _OFFLINE_ERRNOS:
        return reason.strerror or str(reason)
    return None


def _offline_message(url: str, dest: Path, reason: str) -> str:
    host = urlsplit(url).hostname or url
    return (f"cannot reach {host} ({reason}): this machine seems offline. Download {url} on a machine "
            f"that is online and put {dest.name} in a folder named by POSESTREAM_MODEL_DIR")


def _set_read_timeout(response, seconds: float) -> None:
    """Cap the next blocking read of ``response`` at ``seconds`` (at least 10 ms), where the
    socket under urllib's response object can be reached; else keep the connect-time timeout."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)  # socket.SocketIO keeps its socket here
    if sock is not None:
        try:
            sock.settimeout(max(seconds, 0.01))
        except OSError:
            pass


def _open(url: str, start: int, timeout: float, end_time: float):
    """Send the GET (with ``Range: bytes=start-`` when ``start`` > 0) and return the response,
    or None for a ``416`` answer.

    Raises:
        urllib.error.URLError / OSError / http.client.HTTPException: as urllib raises them.
        _DeadlineExceeded: no time is left.
    """
    remaining = end_time - time.monotonic()
    if remaining <= 0:
        raise _DeadlineExceeded
    request = urllib.request.Request(url, headers={"User-Agent": "posestream", "Accept-Encoding": "identity"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=min(timeout, remaining))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:
            exc.close()
            return None
        raise


def _body_start(response, have: int) -> int:
    """Where the body of ``response`` starts in the file: ``have`` for a consistent ``206``
    answer to a resume, else 0 (restart)."""
    if not have or getattr(response, "status", 200) != 206:
        return 0
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "") or "")
    return have if match and int(match.group(1)) == have else 0


def download(url: str, dest: str | Path, sha256: tuple[str, ...] | frozenset[str] = (),
             progress: bool = True, timeout: float = 60.0, deadline: float = DEFAULT_DEADLINE) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part``, and verify its sha256.

    Args:
        url: http(s) or file URL (redirects are followed, as GitHub release links need).
        dest: final path; its folder is created.
        sha256: accepted lowercase hex digests; empty means "unknown" (the digest is logged and
            written beside the file as ``<dest>.sha256`` so later loads are checked against it).
        progress: show a tqdm progress bar (bytes).
        timeout: seconds one connect or one read may block.
        deadline: seconds the whole download may take, connecting and every retry included;
            the ``.part`` is kept so that the next run resumes. Name resolution (DNS) is not
            interruptible and is not counted against it until it returns.

    Returns:
        ``dest``, holding bytes whose sha256 is accepted.

    Raises:
        ModelNotFoundError: the server cannot be reached ("this machine seems offline", with
            where to put the file by hand), answers with an HTTP error, the connection breaks
            off or the body is shorter than announced (``.part`` kept for resume), or the
            deadline passed (``.part`` kept).
        ModelHashError: the downloaded bytes do not match ``sha256``; the ``.part`` is deleted
            and nothing is renamed into place.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    end_time = time.monotonic() + deadline
    if not (sha256 and part.is_file() and sha256_of(part) in sha256):  # else: a complete, verified .part
        try:
            _transfer(url, dest, part, timeout, end_time, progress)
        except _DeadlineExceeded:
            have = part.stat().st_size if part.exists() else 0
            raise ModelNotFoundError(
                f"download of {url} did not finish within its {deadline:g} s deadline ({have} bytes so far, "
                f"kept in {part.name}); run again to resume, or put {dest.name} in a folder named by "
                "POSESTREAM_MODEL_DIR") from None
    try:
        digest = check_sha256(part, sha256, dest.name)
    except ModelHashError:
        part.unlink(missing_ok=True)
        raise
    if not sha256:
        log.warning("%s has no published sha256; recorded %s", dest.name, digest)
        dest.with_name(dest.name + ".sha256").write_text(digest + "\n")
    os.replace(part, dest)
    return dest


def _transfer(url: str, dest: Path, part: Path, timeout: float, end_time: float, progress: bool) -> None:
    """Fetch the rest of ``url`` into ``part`` (resuming, or restarting from zero when the
    server's answer does not fit the ``.part``); leaves the file unverified.

    Raises:
        ModelNotFoundError, _DeadlineExceeded: see :func:`download`.
    """
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, have, timeout, end_time)
        if response is None:  # 416: the .part does not fit the file on the server; start over
            log.warning("%s: server refused to resume at byte %d (416); downloading from the start", dest.name, have)
            part.unlink(missing_ok=True)
            have = 0
            response = _open(url, 0, timeout, end_time)
    except _DeadlineExceeded:
        raise
    except urllib.error.HTTPError as exc:
        raise ModelNotFoundError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= end_time:
            raise _DeadlineExceeded from exc
        offline = _offline_reason(exc)
        if offline:
            raise ModelNotFoundError(_offline_message(url, dest, offline)) from exc
        raise ModelNotFoundError(f"download of {url} failed: {getattr(exc, 'reason', exc)}") from exc

    with response:
        start = _body_start(response, have)
        if have and not start:
            log.warning("%s: server did not resume at byte %d; downloading from the start", dest.name, have)
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        received = 0
        # read1: return what one recv brings (up to CHUNK) instead of waiting for a full CHUNK,
        # so that the deadline is checked while a slow server trickles
        read = getattr(response, "read1", response.read)
        with open(part, "r+b" if start else "wb") as out, tqdm(
            total=None if expected is None else start + expected, initial=start, unit="B", unit_scale=True,
            desc=dest.name, disable=not progress, leave=False,
        ) as bar:
            out.seek(start)
            out.truncate()
            try:
                while True:
                    remaining = end_time - time.monotonic()
                    if remaining <= 0:
                        raise _DeadlineExceeded
                    _set_read_timeout(response, min(timeout, remaining))
                    block = read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
            except _DeadlineExceeded:
                raise
            except (OSError, http.client.HTTPException) as exc:
                if time.monotonic() >= end_time:
                    raise _DeadlineExceeded from exc
                raise ModelNotFoundError(
                    f"download of {url} broke off after {start + received} bytes ({exc or type(exc).__name__}); "
                    "run again to resume") from exc
    if expected is not None and received < expected:
        raise ModelNotFoundError(
            f"download of {url} broke off after {start + received} of {start + expected} bytes "
            "(connection closed early); run again to resume")
