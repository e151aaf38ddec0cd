"""Shared fixtures. Real data comes from one place: ``$POSESTREAM_SHARED`` (default ``../shared``
beside the repository); tests that need it skip, saying so, where it is absent."""

from __future__ import annotations

import os
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
