"""Settings of the pose pipeline, with a written default for every parameter.

Loaded from YAML (``configs/run.yaml`` shows every key); unknown keys are an error, so a typo
never silently falls back to a default.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import yaml


@dataclass(frozen=True)
class PipelineConfig:
    """Models and thresholds of the detect → pose pipeline.

    Attributes:
        detector: zoo name or path of the person detector (default YOLOX-Nano, Apache-2.0).
        pose: zoo name or path of the keypoint model (default BlazePose landmark full).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``tensorrt``.
        threads: ONNX Runtime intra-op threads per model (0 = one per core).
        det_score_threshold: minimum person-box score (YOLOX demo default 0.3).
        det_iou_threshold: NMS IoU threshold (YOLOX demo default 0.45).
        max_people: most people per frame.
        min_bbox_size: boxes with a side under this many pixels are ignored.
        pose_score_threshold: drop people whose pose score (BlazePose pose flag) is below this.
        refine_crop: BlazePose second, body-aligned pass (see ``BlazePoseLandmark``).
    """

    detector: str = "yolox-nano"
    pose: str = "blazepose-full"
    device: str = "auto"
    threads: int = 0
    det_score_threshold: float = 0.3
    det_iou_threshold: float = 0.45
    max_people: int = 20
    min_bbox_size: float = 8.0
    pose_score_threshold: float = 0.5
    refine_crop: bool = True

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> "PipelineConfig":
        """Read the ``pipeline:`` mapping of a YAML file (or the whole file), then apply overrides.

        Raises:
            ValueError: unknown keys, or a file that is not a mapping.
            FileNotFoundError: no such file.
        """
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a YAML mapping")
        data = data.get("pipeline", data)
        return cls.from_dict({**data, **{k: v for k, v in overrides.items() if v is not None}})

    @classmethod
    def from_dict(cls, data: dict) -> "PipelineConfig":
        """Build from a mapping; raises ValueError naming unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown pipeline settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**data)
