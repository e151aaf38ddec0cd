"""Settings, with a written default for every parameter.

Loaded from YAML (``configs/run.yaml`` shows every key) in four sections: ``pipeline:``
(:class:`PipelineConfig`), ``tracking:`` (:class:`stream.track.TrackerConfig`), ``lift:``
(:class:`stream.lift.LiftConfig`) and ``classify:`` (:class:`stream.classify.ClassifierConfig`). Unknown keys are an error, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from .classify import ClassifierConfig
from .lift import LiftConfig
from .track import TrackerConfig


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


def dataclass_from_dict(cls, data: dict, section: str):
    """Build the dataclass ``cls`` from a mapping.

    Raises:
        ValueError: ``data`` is not a mapping, has keys ``cls`` does not know (named with the
            known ones), or holds a value the dataclass refuses.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{section}: expected a mapping of settings, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {section} settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**data)


@dataclass(frozen=True)
class RunConfig:
    """All settings of a run: ``pipeline``, ``tracking``, ``lift`` and ``classify`` sections."""

    pipeline: PipelineConfig = PipelineConfig()
    tracking: TrackerConfig = TrackerConfig()
    lift: LiftConfig = LiftConfig()
    classify: ClassifierConfig = ClassifierConfig()

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, overrides: dict[str, dict] | None = None) -> "RunConfig":
        """Read a YAML file (None: all defaults) with its ``pipeline``/``tracking``/``lift``/``classify``
        sections, then apply ``overrides`` (section → settings; None values ignored).

        Raises:
            ValueError: a file that is not a mapping, an unknown section or key, a refused value.
            FileNotFoundError: no such file.
        """
        sections = {"pipeline": PipelineConfig, "tracking": TrackerConfig, "lift": LiftConfig, "classify": ClassifierConfig}
        data = {}
        if path is not None:
            data = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a YAML mapping")
            unknown = sorted(set(data) - set(sections))
            if unknown:
                raise ValueError(f"{path}: unknown sections {', '.join(unknown)} (known: {', '.join(sections)})")
        built = {}
        for name, section in sections.items():
            values = dict(data.get(name) or {})
            values.update({k: v for k, v in (overrides or {}).get(name, {}).items() if v is not None})
            built[name] = dataclass_from_dict(section, values, name)
        return cls(**built)
