"""Settings, with a written default for every parameter.

Loaded from YAML (``configs/run.yaml`` shows every key) in four sections: ``pipeline:``
(:class:`PipelineConfig`), ``tracking:`` (:class:`posestream.stream.track.tracker.TrackerConfig`), ``lift:``
(:class:`posestream.stream.lift.stage.LiftConfig`) and ``classify:`` (:class:`posestream.stream.classify.rules.ClassifierConfig`). Unknown keys are an error, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from posestream.stream.classify.rules import ClassifierConfig
from posestream.stream.lift.stage import LiftConfig
from posestream.stream.track.tracker import TrackerConfig


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
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown {section} settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for key, value in data.items():
        _check_type(f"{section}.{key}", value, str(known[key].type))
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{section}: {exc}") from exc


def _check_type(path: str, value, annotation: str) -> None:
    """Refuse a value whose type is not the field's: YAML's ``"false"`` is a string, not a bool
    (it would read as true), ``1`` is no bool, NaN and infinity are no thresholds.

    Raises:
        ValueError: naming the key's path (``tracking.iou_threshold``), the value and the type.
    """
    options = [part.strip() for part in annotation.split("|")]
    if value is None:
        if "None" not in options:
            raise ValueError(f"{path}: a value is needed (got null)")
        return
    kind = options[0]
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "str":
        ok = isinstance(value, str)
    else:
        return  # tuples and other structured values: the dataclass checks them
    if not ok:
        wanted = {"float": "a finite number", "int": "an integer", "bool": "true or false", "str": "a string"}[kind]
        raise ValueError(f"{path}: expected {wanted}, "
                         f"got {value!r} ({type(value).__name__})")


@dataclass(frozen=True)
class GraphConfig:
    """The live graph (``graph:`` section; ``posestream live``).

    Attributes:
        transport: ``ipc`` (one host, default) or ``tcp`` (across hosts; then ``curve_keys`` is required).
        host: address tcp endpoints bind to. base_port: first tcp port (one per endpoint).
        curve_keys: folder of ZeroMQ CURVE certificates from ``tools/curve_keys.py`` (tcp only).
        detect_workers: parallel detector processes (PUSH/PULL), results put back in frame order.
        queue: ZeroMQ high-water mark, frames per connection: bounds memory whatever the consumer speed.
        realtime: pace recorded files at their frame rate (still lossless); live sources always
            keep only the newest frame.
        drop_late: with ``realtime``, treat a file as a camera: frames the graph cannot take at
            once are dropped (newest wins), as a live source's would be.
        loop: start recorded files again at their end (frame ids and times go on), for soak
            tests and benchmarks; stop with SIGINT.
        heartbeat_interval: seconds between a stage's heartbeats.
        heartbeat_timeout: a stage silent this long is restarted.
        hang_timeout: a stage busy with one message this long is restarted.
        startup_timeout: seconds a stage may take to load its models.
        max_restarts: restarts per stage before the run fails.
        gap_timeout: a missing frame (lost with a crashed worker) is given up after this many
            seconds; in the meantime later frames wait, so keep it well above a worker's slowest frame.
        metrics_interval: seconds between printed metrics lines.
    """

    transport: str = "ipc"
    host: str = "127.0.0.1"
    base_port: int = 5550
    curve_keys: str | None = None
    detect_workers: int = 2
    queue: int = 2
    realtime: bool = False
    drop_late: bool = False
    loop: bool = False
    heartbeat_interval: float = 0.5
    heartbeat_timeout: float = 10.0
    hang_timeout: float = 60.0
    startup_timeout: float = 120.0
    max_restarts: int = 3
    gap_timeout: float = 10.0
    metrics_interval: float = 5.0

    def __post_init__(self):
        if self.transport not in ("ipc", "tcp"):
            raise ValueError(f"graph: transport must be 'ipc' or 'tcp', not {self.transport!r}")
        if self.transport == "tcp" and self.host not in ("127.0.0.1", "localhost", "::1") and not self.curve_keys:
            raise ValueError("graph: tcp across hosts needs curve_keys (make them with tools/curve_keys.py)")
        if self.detect_workers < 1 or self.queue < 1:
            raise ValueError("graph: detect_workers and queue must be at least 1")


@dataclass(frozen=True)
class SinkConfig:
    """Outputs of the live graph (``sinks:`` section).

    Attributes:
        jsonl: ``<stream>.jsonl`` and ``results_<stream>.json`` in the output folder.
        video: annotated ``<stream>.mp4``.
        window: show annotated frames in a window when a display exists.
        pub: ZeroMQ PUB endpoint of results for other programs (e.g. ``tcp://127.0.0.1:5560``), or null.
    """

    jsonl: bool = True
    video: bool = True
    window: bool = False
    pub: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """All settings: ``pipeline``, ``tracking``, ``lift``, ``classify`` (and, for the live graph,
    ``graph`` and ``sinks``) sections."""

    pipeline: PipelineConfig = PipelineConfig()
    tracking: TrackerConfig = TrackerConfig()
    lift: LiftConfig = LiftConfig()
    classify: ClassifierConfig = ClassifierConfig()
    graph: GraphConfig = GraphConfig()
    sinks: SinkConfig = SinkConfig()

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, overrides: dict[str, dict] | None = None) -> "RunConfig":
        """Read a YAML file (None: all defaults), then apply ``overrides`` (section → settings;
        None values ignored).

        Raises:
            ValueError: a file that is not a mapping, an unknown section or key, a refused value.
            FileNotFoundError: no such file.
        """
        data = {}
        if path is not None:
            data = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a YAML mapping")
        try:
            return cls.from_dict(data, overrides)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}" if path is not None else str(exc)) from exc

    @classmethod
    def from_dict(cls, data: dict, overrides: dict[str, dict] | None = None) -> "RunConfig":
        """Build from a mapping of sections (as :meth:`to_dict` gives).

        Raises:
            ValueError: an unknown section or key, a refused value.
        """
        sections = {"pipeline": PipelineConfig, "tracking": TrackerConfig, "lift": LiftConfig,
                    "classify": ClassifierConfig, "graph": GraphConfig, "sinks": SinkConfig}
        unknown = sorted(set(data) - set(sections))
        if unknown:
            raise ValueError(f"unknown sections {', '.join(unknown)} (known: {', '.join(sections)})")
        built = {}
        for name, section in sections.items():
            values = dict(data.get(name) or {})
            values.update({k: v for k, v in (overrides or {}).get(name, {}).items() if v is not None})
            built[name] = dataclass_from_dict(section, values, name)
        return cls(**built)

    def check_models(self) -> None:
        """Find (or download) every model file this configuration names, without loading any:
        the detector, the keypoint model and, when lifting, the lifter checkpoint.

        Raises:
            posestream.engines.errors.ModelError: a model is missing, fails its hash or cannot be downloaded.
        """
        from posestream.engines.zoo import resolve_model

        resolve_model(self.pipeline.detector)
        resolve_model(self.pipeline.pose)
        if self.lift.enabled:
            self.lift.check()

    def to_dict(self) -> dict:
        """Plain sections (JSON-serialisable), the inverse of :meth:`from_dict`."""
        return {f.name: asdict(getattr(self, f.name)) for f in fields(self)}
