"""Downloading model files: progress bar, resume, sha256 check, atomic rename.

A download goes to ``<dest>.part``; an interrupted one resumes with an HTTP ``Range`` request.
Only a file whose sha256 matches is renamed into place, so a corrupt or tampered download is
never cached.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from .errors import ModelHashError, ModelNotFoundError

log = logging.getLogger(__name__)

CHUNK = 1 << 16


def sha256_of(path: str | Path) -> str:
    """Return the hex sha256 of a file (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, accepted: tuple[str, ...] | frozenset[str], what: str) -> str:
    """Return the file's sha256 if it is one of ``accepted`` (or ``accepted`` is empty).

    Raises:
        ModelHashError: the file's sha256 is not accepted.
    """
    digest = sha256_of(path)
    if accepted and digest not in accepted:
        raise ModelHashError(
            f"{what}: {path} has sha256 {digest[:16]}…, expected {' or '.join(a[:16] + '…' for a in accepted)}"
            " (corrupt or a different file; delete it to download again)"
        )
    return digest


def download(url: str, dest: str | Path, sha256: tuple[str, ...] | frozenset[str] = (),
             progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part``, and verify its sha256.

    Args:
        url: http(s) or file URL.
        dest: final path; its folder is created.
        sha256: accepted hex digests; empty means "unknown" (the digest is logged and written
            beside the file as ``<dest>.sha256`` so later loads can be checked against it).
        progress: show a tqdm progress bar.
        timeout: socket timeout in seconds.

    Returns:
        ``dest``.

    Raises:
        ModelNotFoundError: the server cannot be reached or answers with an error.
        ModelHashError: the downloaded bytes do not match ``sha256``; the partial file is deleted.
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "posestream"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the .part is complete
            response = None
        else:
            raise ModelNotFoundError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ModelNotFoundError(f"download of {url} failed: {getattr(exc, 'reason', exc)}") from exc

    if response is not None:
        with response:
            resumed = have and getattr(response, "status", 200) == 206
            if not resumed:
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with open(part, "ab" if resumed else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=dest.name,
                disable=not progress, leave=False,
            ) as bar:
                try:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        out.write(block)
                        bar.update(len(block))
                except OSError as exc:
                    raise ModelNotFoundError(
                        f"download of {url} broke off after {out.tell()} bytes ({exc}); run again to resume"
                    ) from exc
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
