"""Shared fixtures. Real data comes from one place: ``$POSESTREAM_SHARED`` (default ``../shared``
beside the repository); tests that need it skip, saying so, where it is absent."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared")).resolve()
MODELS = SHARED / "models"
MEDIA = SHARED / "media"


def shared_file(relative: str) -> Path:
    """Path of a file under the shared data folder; skips the test when it is missing."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"shared data {relative} not found under {SHARED} (set POSESTREAM_SHARED)")
    return path


def free_ports(count: int = 1) -> int:
    """First of ``count`` consecutive loopback TCP ports that are free now, below the kernel's
    ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``). A port asked of the kernel
    (bind to port 0) comes from that range, where every outgoing connection (the graph's own
    stages connecting to each other) also takes its port: one picked there for a server to bind
    later can be taken in between.

    Raises:
        RuntimeError: no free block found in 200 tries."""
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    first, last = (int(x) for x in ranges.read_text().split()) if ranges.exists() else (32768, 60999)
    # below the range where there is room, else above it (a range starting low, "1024 65535", leaves none)
    low, high = (10000, first - count) if first - count > 10000 else (last + 1, 65536 - count)
    pick = random.SystemRandom()
    for _ in range(200):
        base = pick.randrange(low, high)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free TCP ports between {low} and {high + count - 1}")


@pytest.fixture(autouse=True)
def isolated_model_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty user cache and finds the shared models through POSESTREAM_MODEL_DIR."""
    monkeypatch.setenv("POSESTREAM_HOME", str(tmp_path_factory.mktemp("posestream-home")))
    monkeypatch.setenv("POSESTREAM_MODEL_DIR", str(MODELS))


@pytest.fixture(scope="session")
def real_pipeline():
    """The default pipeline (YOLOX-Nano + BlazePose full) on the shared model files."""
    from posestream.stream.config import PipelineConfig
    from posestream.stream.pipeline import PosePipeline

    detector = shared_file("models/yolox_nano.onnx")
    pose = shared_file("models/blazepose_landmark_full.onnx")
    return PosePipeline.from_config(PipelineConfig(detector=str(detector), pose=str(pose)))
