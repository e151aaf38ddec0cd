"""Settings, with a written default for every parameter.

Loaded from YAML (``configs/run.yaml`` shows every key) in four sections: ``pipeline:``
(:class:`PipelineConfig`), ``tracking:`` (:class:`posestream.stream.track.tracker.TrackerConfig`), ``lift:``
(:class:`posestream.stream.lift.stage.LiftConfig`) and ``classify:`` (:class:`posestream.stream.classify.rules.ClassifierConfig`),
plus ``graph:`` and ``sinks:`` for the live graph. Unknown keys are an error, so a typo never
silently falls back to a default; every value is checked for its type (YAML's ``"false"`` is no
``false``) and, where its meaning demands, its range (:data:`RANGES`: scores in [0, 1], timeouts
above 0, no NaN), and the message names the key's path (``tracking.iou_threshold``).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Mapping

import yaml

from posestream.engines.backend import DEVICES
from posestream.stream.classify.rules import ClassifierConfig
from posestream.stream.lift.stage import LiftConfig
from posestream.stream.track.tracker import TrackerConfig


#: The smallest ``pipeline.detect_tile`` (pixels): the detector's usual input side (YOLOX-Nano
#: 416, RTMDet 320–640), below which a tile only upscales and 1080p costs 50+ detector runs.
MIN_DETECT_TILE = 320


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
        detect_tile: side in pixels of the overlapping tiles a frame whose longer side is at
            least 1.5 times this is also searched in (:mod:`posestream.stream.detect.tiles`), for
            people too small for the detector at the whole frame's scale; 0: off. 1080: a
            1920×1080 frame costs 3 detector runs instead of 1 (3840×2160: 16); frames up to
            1619 px (720p webcams, the shared clips) are not tiled.
        pose_score_threshold: drop people whose pose score (BlazePose pose flag) is below this.
        refine_crop: BlazePose second, body-aligned pass (see ``BlazePoseLandmark``).
        hands: hand landmarks (21 per hand) for every person, cropped from the body pose
            (:mod:`posestream.stream.pose.hands`); off by default (about one more model call
            per pair of hands). Single-process pipeline and ``posestream run`` only.
        hand_model: zoo name or path of the hand landmark model (MediaPipe's, Apache-2.0).
        hand_presence_threshold: a hand whose presence score is under this is reported absent.
        min_hand_size: hands estimated shorter than this many pixels (wrist to fingertips) are
            not cropped (the model needs about 40 px; reported ``small``; the classifier then
            uses the arm rules).
        hand_side_threshold: a hand the hand model gives under this probability of being the
            side it was cropped for is reported ``other`` (the crop caught the other hand), as
            is the worse fitting of two hands lying on one another.
        palm_detection: with ``hands``, MediaPipe's palm detector looks for the hands the body
            pose does not show (``unseen``: its wrist not seen) in the person's box
            (:mod:`posestream.stream.pose.palms`); about one more model call per such person
            and frame until the hand is found, then the hand follows its own landmarks.
        palm_model: zoo name or path of the palm detector (MediaPipe's, Apache-2.0).
        palm_score_threshold: palms scoring under this are ignored (MediaPipe's 0.5).
        palm_presence_threshold: a hand found from a palm (or followed where the body does not see
            its wrist) is kept when the hand model's presence reaches this (or
            ``hand_presence_threshold`` if higher). Measured: on mediapipe-hand-reach the hands
            found from palms score 0.97-0.99; on openpose-video (a crowd, small people) the palm
            detector's false hits (a skirt, handbags) score 0.59-0.95.
        palm_max_people: at most this many people (the largest boxes first) are searched for
            palms per frame: the detector costs about 25 ms a person on 2 cores, and a hand
            hidden behind a back would otherwise cost that on every frame.
    """

    detector: str = "yolox-nano"
    pose: str = "blazepose-full"
    device: str = "auto"
    threads: int = 0
    det_score_threshold: float = 0.3
    det_iou_threshold: float = 0.45
    max_people: int = 20
    min_bbox_size: float = 8.0
    detect_tile: int = 1080
    pose_score_threshold: float = 0.5
    refine_crop: bool = True
    hands: bool = False
    hand_model: str = "hand-full"
    hand_presence_threshold: float = 0.5
    min_hand_size: float = 40.0
    hand_side_threshold: float = 0.05
    palm_detection: bool = True
    palm_model: str = "palm-full"
    palm_score_threshold: float = 0.5
    palm_presence_threshold: float = 0.9
    palm_max_people: int = 2

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ValueError(f"pipeline.device: expected one of {', '.join(DEVICES)}, got {self.device!r}")
        check_ranges("pipeline", asdict(self))
        if self.detect_tile and self.detect_tile < MIN_DETECT_TILE:
            raise ValueError(f"pipeline.detect_tile: 0 (off) or at least {MIN_DETECT_TILE} px, got {self.detect_tile} "
                             f"(smaller tiles would cost hundreds of detector runs a frame)")


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: from ``low`` to ``high`` (None: unbounded),
    ``low`` itself excluded when ``low_open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def check(self, path: str, value) -> None:
        """Refuse ``value`` outside the range (NaN included).

        Raises:
            ValueError: naming the key's ``path``, the range and the value.
        """
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return  # the type check (_check_type) names a wrong type
        ok = not math.isnan(value)
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value <= self.high
        if not ok:
            raise ValueError(f"{path}: expected {self.describe()}, got {value!r}")

    def describe(self) -> str:
        """``a number from 0 to 1``, ``a number above 0``, ``a number of at least 1``."""
        low, high = (None if v is None else f"{v:g}" for v in (self.low, self.high))
        if low is not None and high is not None:
            return f"a number from {low} to {high}"
        if low is not None:
            return f"a number above {low}" if self.low_open else f"a number of at least {low}"
        return f"a number of at most {high}"


FRACTION = Range(0, 1)  # scores, probabilities, IoU / OKS thresholds, area fractions
AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
ABOVE_0 = Range(0, low_open=True)  # timeouts, intervals, cutoff frequencies, scales
DEGREES = Range(0, 180)

#: Section → key → :class:`Range`, for the numeric settings whose meaning bounds them (keys
#: not listed take any finite number). :func:`dataclass_from_dict` checks them on every value
#: read from YAML or the command line; the dataclasses of this module check them on
#: construction too.
RANGES: dict[str, dict[str, Range]] = {
    "pipeline": {"threads": AT_LEAST_0, "det_score_threshold": FRACTION, "det_iou_threshold": FRACTION,
                 "max_people": AT_LEAST_1, "min_bbox_size": AT_LEAST_0, "detect_tile": AT_LEAST_0, "pose_score_threshold": FRACTION,
                 "hand_presence_threshold": FRACTION, "min_hand_size": AT_LEAST_0, "hand_side_threshold": FRACTION,
                 "palm_score_threshold": FRACTION, "palm_presence_threshold": FRACTION,
                 "palm_max_people": AT_LEAST_1},
    "tracking": {"detect_interval": AT_LEAST_1, "iou_threshold": FRACTION, "oks_threshold": FRACTION,
                 "merge_containment": FRACTION, "merge_area_ratio": FRACTION, "pose_nms_threshold": FRACTION,
                 "pose_nms_iou": FRACTION, "birth_score": FRACTION, "min_hits": AT_LEAST_1, "max_missing": AT_LEAST_0,
                 "max_missing_seconds": AT_LEAST_0, "hold_seconds": AT_LEAST_0, "verify_zoom": AT_LEAST_0,
                 "verify_seconds": AT_LEAST_0, "reid_distance": AT_LEAST_0,
                 "reid_scale": AT_LEAST_1, "reid_appearance": FRACTION, "keypoint_threshold": FRACTION,
                 "bbox_padding": ABOVE_0, "min_cutoff": ABOVE_0, "beta": AT_LEAST_0, "d_cutoff": ABOVE_0},
    "classify": {"keypoint_threshold": FRACTION, "arm_keypoint_threshold": FRACTION, "min_forearm": AT_LEAST_0,
                 "face_distance": AT_LEAST_0, "hand_reach": Range(0, 2), "face_distance_3d": AT_LEAST_0,
                 "face_near_3d": AT_LEAST_0, "face_clear_forearm": DEGREES, "forearm_rise_3d": Range(-90, 90),
                 "knee_error_3d": ABOVE_0, "knee_error_3d_ambiguous": ABOVE_0,
                 "hands_apart_3d": AT_LEAST_0, "hands_apart": AT_LEAST_0, "hands_apart_shoulders": AT_LEAST_0,
                 "short_thigh": AT_LEAST_0, "short_thigh_shank": AT_LEAST_0, "max_thigh": ABOVE_0,
                 "stretched_leg_shank": ABOVE_0, "legs_only_tilt": Range(0, 90),
                 "stand_knee_angle": DEGREES, "sit_knee_angle": DEGREES, "sit_thigh_angle_3d": DEGREES,
                 "stand_thigh_angle_3d": DEGREES, "posture_hold": AT_LEAST_0, "gesture_hold": AT_LEAST_0,
                 "gesture_release": AT_LEAST_0, "first_hold": AT_LEAST_0, "arm_memory": AT_LEAST_0,
                 "unknown_hold": AT_LEAST_0, "wave_window": ABOVE_0,
                 "wave_min_hz": ABOVE_0, "wave_max_hz": ABOVE_0, "wave_amplitude": AT_LEAST_0, "hand_torso": ABOVE_0},
    "graph": {"base_port": Range(1, 65535), "detect_workers": AT_LEAST_1, "queue": AT_LEAST_1,
              "heartbeat_interval": ABOVE_0, "heartbeat_timeout": ABOVE_0, "hang_timeout": ABOVE_0,
              "startup_timeout": ABOVE_0, "max_restarts": AT_LEAST_0, "gap_timeout": ABOVE_0,
              "metrics_interval": ABOVE_0},
}


def check_ranges(section: str, values: Mapping) -> None:
    """Check the values of ``section`` that :data:`RANGES` bounds.

    Raises:
        ValueError: the first value out of its range, named by its path (``tracking.iou_threshold``).
    """
    for key, bounds in RANGES.get(section, {}).items():
        if values.get(key) is not None:
            bounds.check(f"{section}.{key}", values[key])


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
    check_ranges(section, data)
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        message = str(exc)  # a dataclass's own check: name the section unless it already does
        raise ValueError(message if message.startswith(section) else f"{section}: {message}") from exc


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
            raise ValueError(f"graph.transport: expected 'ipc' or 'tcp', got {self.transport!r}")
        if self.transport == "tcp" and not is_loopback(self.host) and not self.curve_keys:
            raise ValueError(f"graph.curve_keys: tcp on host {self.host} (reachable from other machines) needs "
                             "curve_keys (make them with tools/curve_keys.py)")
        check_ranges("graph", asdict(self))
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError(f"graph.heartbeat_timeout: expected more than graph.heartbeat_interval "
                             f"({self.heartbeat_interval:g} s), got {self.heartbeat_timeout:g}")


def is_loopback(host: str) -> bool:
    """Whether a bind address reaches this host only: ``localhost``, ``lo`` (ZeroMQ binds to an
    interface by name), ``127.x.x.x`` or ``::1`` (bracketed or not). Host names are not looked
    up: anything else (``*``, ``0.0.0.0``, a LAN address, a host or interface name) counts as
    reachable from other machines."""
    host = host.strip().strip("[]").lower()
    if host in ("localhost", "lo"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_endpoint(endpoint: str) -> tuple[str, str, str]:
    """``tcp://HOST:PORT`` → ``("tcp", HOST, PORT)``; ``ipc://PATH`` → ``("ipc", "", PATH)``.

    Raises:
        ValueError: another transport, or a tcp endpoint without a host or a port from 1 to 65535.
    """
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme not in ("tcp", "ipc") or not rest:
        raise ValueError(f"expected tcp://HOST:PORT or ipc://PATH, got {endpoint!r}")
    if scheme == "ipc":
        return scheme, "", rest
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"expected tcp://HOST:PORT with a port from 1 to 65535, got {endpoint!r}")
    return scheme, host, port


@dataclass(frozen=True)
class SinkConfig:
    """Outputs of the live graph (``sinks:`` section).

    Attributes:
        jsonl: ``<stream>.jsonl`` and ``results_<stream>.json`` in the output folder.
        video: annotated ``<stream>.mp4``.
        window: show annotated frames in a window when a display exists.
        pub: ZeroMQ PUB endpoint of results for other programs (e.g. ``tcp://127.0.0.1:5560``,
            ``ipc:///tmp/results``), or null. An address other machines can reach (``*``,
            ``0.0.0.0``, a LAN address) needs ``graph.curve_keys`` (subscribers then authenticate)
            or ``insecure``.
        insecure: allow ``pub`` on such an address without CURVE: anyone on the network can then
            read every result (``posestream live --insecure``).
    """

    jsonl: bool = True
    video: bool = True
    window: bool = False
    pub: str | None = None
    insecure: bool = False

    def __post_init__(self):
        if self.pub is not None:
            try:
                split_endpoint(self.pub)
            except ValueError as exc:
                raise ValueError(f"sinks.pub: {exc}") from None

    def check_pub(self) -> None:
        """Bind the PUB endpoint once and release it, so that an address in use (another
        program, another posestream) is one error line before any stage starts. Nothing to do
        without ``pub``.

        Raises:
            ValueError: the endpoint cannot be bound (address in use, no such interface or
                address on this host, an ipc path that cannot be made), with ZeroMQ's reason.
        """
        if not self.pub:
            return
        import zmq

        context = zmq.Context()
        try:
            socket = context.socket(zmq.PUB)
            try:
                socket.bind(self.pub)
            except zmq.ZMQError as exc:
                raise ValueError(f"sinks.pub: cannot bind {self.pub}: {zmq.strerror(exc.errno)}") from None
            finally:
                socket.close(linger=0)
        finally:
            context.term()  # returns once the socket is closed: the address is free again


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

    def __post_init__(self):
        pub = self.sinks.pub
        if pub and not self.sinks.insecure and not self.graph.curve_keys:
            _, host, _ = split_endpoint(pub)
            if host and not is_loopback(host):
                raise ValueError(
                    f"sinks.pub: {pub} can be reached from other machines, and without CURVE anyone there can "
                    "read every result: set graph.curve_keys (tools/curve_keys.py), publish on 127.0.0.1, "
                    "or pass --insecure (sinks.insecure: true)")

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, overrides: dict[str, dict] | None = None) -> "RunConfig":
        """Read a YAML file (None: all defaults), then apply ``overrides`` (section → settings;
        None values ignored).

        Raises:
            ValueError: a file that cannot be read or is not valid YAML (the message says where),
                not a mapping, an unknown section or key, a refused value.
            FileNotFoundError: no such file.
        """
        data = {}
        if path is not None:
            data = _read_yaml(Path(path)) or {}
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a YAML mapping of sections, got {type(data).__name__}")
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
        the detector, the keypoint model, the hand model (and palm detector) when ``hands`` is on and, when lifting, the lifter checkpoint.

        Raises:
            posestream.engines.errors.ModelError: a model is missing, fails its hash or cannot be downloaded.
        """
        from posestream.engines.zoo import resolve_model

        resolve_model(self.pipeline.detector)
        resolve_model(self.pipeline.pose)
        if self.pipeline.hands:
            resolve_model(self.pipeline.hand_model)
            if self.pipeline.palm_detection:
                resolve_model(self.pipeline.palm_model)
        if self.lift.enabled:
            self.lift.check()

    def to_dict(self) -> dict:
        """Plain sections (JSON-serialisable), the inverse of :meth:`from_dict`."""
        return {f.name: asdict(getattr(self, f.name)) for f in fields(self)}


def _read_yaml(path: Path):
    """The YAML document in ``path``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable (a folder, no permission), not UTF-8 text, or not valid YAML
            (with the line and column of the problem).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such config file: {path}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a YAML text file (not UTF-8)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{path}: not valid YAML{where}: {problem}") from None
