"""Atomic file output: a reader never sees a half-written file under its final name."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield ``<path>.part`` to write to; on success rename it to ``path`` (creating the folder),
    on an exception delete it and re-raise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_npz_atomic(path: str | Path, **arrays) -> Path:
    """``np.savez_compressed`` through :func:`atomic_output` (dict values become pickled object
    arrays, as VideoPose3D's dataset files hold them)."""
    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path
