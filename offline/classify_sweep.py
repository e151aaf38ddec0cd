"""A synthetic viewpoint sweep for the posture and gesture rules.

Procedural 3D bodies (COCO-17 joints, metres, y up, the person facing +z with their left at +x)
in the poses the labels are defined by — standing, sitting (hips and knees flexed 80–100°),
hello (one forearm up, elbow from chest to above shoulder height), stop (both), and two
no-gesture controls (a hand at the mouth, a hand at the ear) — projected through pinhole
cameras around the person at yaw 0–90° (0: facing the camera; −90–0°, :data:`MIRRORED_YAWS`,
from their right, the side of the one-armed poses' arm), pitch −20–40° (positive: the camera
looks down), webcam focal lengths, with Gaussian 2D noise like a pose model's.

Body proportions: segment lengths as fractions of body height from D. A. Winter,
"Biomechanics and Motor Control of Human Movement" (4th ed., 2009), Fig. 4.1 (shoulder 0.818 H,
hip 0.530 H, knee 0.285 H, upper arm 0.186 H, forearm 0.146 H, thigh 0.245 H, shank 0.246 H);
the shoulder and hip joints as far apart as joint centres are (``HIP_WIDTH``, ``SHOULDER_WIDTH``
in offline/synthetic_motion.py: what a pose model's keypoints mark, not Winter's breadths over
the skin); face points placed by hand. Heights vary ±10 %, limb lengths ±5 % per body.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestream.offline.synthetic_motion import HIP_WIDTH, SHOULDER_WIDTH

#: Poses of the sweep → (posture, gesture) they must be read as.
POSES = {
    "standing": ("standing", "none"),
    "sitting": ("sitting", "none"),
    "hello": ("standing", "hello"),
    "stop": ("standing", "stop"),
    "drinking": ("standing", "none"),
    "phoning": ("standing", "none"),
}
YAWS = (0, 15, 30, 45, 60, 75, 90)
#: The same from the person's right: the one-armed poses (the right arm) seen from their arm's
#: side, where :data:`YAWS` sees that arm across the body.
MIRRORED_YAWS = (0, -15, -30, -45, -60, -75, -90)
PITCHES = (-20, -10, 0, 10, 20, 30, 40)
#: Focal lengths in pixels of a 640×480 webcam: 78° and 60° horizontal fields of view.
FOCALS = (395.0, 554.0)
IMAGE_SIZE = (640, 480)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def body(pose: str, rng: np.random.Generator) -> np.ndarray:
    """(17, 3) float64 COCO-17 joints in metres (y up, facing +z, left at +x) of one random body
    in ``pose`` (a key of :data:`POSES`)."""
    h = rng.uniform(1.55, 1.90)
    s = lambda: rng.uniform(0.95, 1.05)  # noqa: E731 -- per-segment length jitter
    upper, fore, thigh, shank = 0.186 * h * s(), 0.146 * h * s(), 0.245 * h * s(), 0.246 * h * s()
    sw, hw = SHOULDER_WIDTH * h / 2, HIP_WIDTH * h / 2
    j = np.zeros((17, 3))
    hip_y, shoulder_y = 0.530 * h, 0.818 * h
    if pose == "sitting":
        hip_y = rng.uniform(0.42, 0.50)  # on a chair seat
        shoulder_y = hip_y + (0.818 - 0.530) * h
    j[11], j[12] = [hw, hip_y, 0], [-hw, hip_y, 0]
    j[5], j[6] = [sw, shoulder_y, 0], [-sw, shoulder_y, 0]
    head = shoulder_y + 0.10 * h
    j[0] = [0, head, 0.10]
    j[1], j[2] = [0.032, head + 0.025, 0.085], [-0.032, head + 0.025, 0.085]
    j[3], j[4] = [0.075, head + 0.01, 0.0], [-0.075, head + 0.01, 0.0]
    for hip, knee, ankle in ((11, 13, 15), (12, 14, 16)):
        if pose == "sitting":
            flex_hip, flex_knee = np.radians(rng.uniform(80, 100)), np.radians(rng.uniform(80, 100))
            j[knee] = j[hip] + thigh * np.array([0, -np.cos(flex_hip), np.sin(flex_hip)])
            shank_dir = flex_hip - flex_knee  # angle of the shank from straight down, forward positive
            j[ankle] = j[knee] + shank * np.array([0, -np.cos(shank_dir), np.sin(shank_dir)])
        else:
            j[knee] = j[hip] + [0, -thigh, 0.01]
            j[ankle] = j[knee] + [0, -shank, -0.01]
    for side, shoulder, elbow, wrist in ((1, 5, 7, 9), (-1, 6, 8, 10)):
        hanging = True
        if pose in ("hello", "stop") and (pose == "stop" or side == -1):
            hanging = False
            if pose == "hello":  # upper arm out to the side, elbow from chest height to above the shoulder
                rise = np.radians(rng.uniform(-40, 30))
                direction = _unit([side * np.cos(rise), np.sin(rise), rng.uniform(0.0, 0.4)])
            else:  # stop: elbows at chest height in front, palms to the camera
                direction = _unit([side * rng.uniform(0.3, 0.6), -rng.uniform(0.4, 0.7), rng.uniform(0.5, 0.8)])
            j[elbow] = j[shoulder] + upper * direction
            tilt = np.radians(rng.uniform(-20, 20))
            j[wrist] = j[elbow] + fore * np.array([side * np.sin(tilt), np.cos(tilt), 0.0])
        elif pose in ("drinking", "phoning") and side == -1:
            hanging = False
            # the hand (wrist to knuckles ~0.06 H) reaches the mouth or the ear: choose the elbow's
            # lift so that elbow → target spans forearm + hand, the wrist on that line
            target = j[0] + [0, -0.04, 0.02] if pose == "drinking" else j[4] + [side * 0.02, 0, 0.02]
            hand = 0.06 * h
            lifts = np.radians(np.linspace(-89, 60, 150))
            elbows = [j[shoulder] + upper * _unit([side * 0.25 * np.cos(a), np.sin(a), 0.9 * np.cos(a)]) for a in lifts]
            j[elbow] = min(elbows, key=lambda e: abs(np.linalg.norm(target - e) - fore - hand))
            j[wrist] = j[elbow] + fore * _unit(target - j[elbow])
        if hanging:
            j[elbow] = j[shoulder] + upper * _unit([side * 0.1, -1, 0.05])
            j[wrist] = j[elbow] + fore * _unit([side * 0.05, -1, 0.15])
    return j


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking at a body's chest from ``distance`` metres.

    Attributes:
        yaw: degrees around the vertical from the body's front (0: facing the camera, 90: the
            body's left side, −90: its right). pitch: degrees the camera looks down (negative: up).
        focal: pixels. distance: metres. size: (width, height) pixels.
    """

    yaw: float
    pitch: float
    focal: float
    distance: float = 3.0
    size: tuple = IMAGE_SIZE

    def project(self, points: np.ndarray, target: np.ndarray) -> np.ndarray:
        """(N, 3) metres → (N, 2) pixels (x right, y down), the camera aimed at ``target``."""
        yaw, pitch = np.radians(self.yaw), np.radians(self.pitch)
        offset = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
        centre = target + self.distance * offset
        forward = _unit(target - centre)
        right = _unit(np.cross(forward, [0, 1, 0]))
        up = np.cross(right, forward)
        rel = points - centre
        x, y, z = rel @ right, rel @ up, rel @ forward
        return np.column_stack([self.focal * x / z + self.size[0] / 2, -self.focal * y / z + self.size[1] / 2])


#: The poses :func:`procedural_body` makes (the procedural motion has no hand at the ear).
PROCEDURAL_POSES = ("standing", "sitting", "hello", "stop", "drinking")


def procedural_body(pose: str, rng: np.random.Generator) -> np.ndarray:
    """(17, 3) float64 COCO-17 joints (metres, :func:`body`'s axes) of one body of the lifter's
    procedural motion (:mod:`posestream.offline.synthetic_motion`) held in ``pose``, one of
    :data:`PROCEDURAL_POSES`: another geometry than :func:`body`'s (trunk leaning, knees apart;
    a raised forearm tilted forwards; a hand at the mouth with the elbow low and out, the wrist
    0.35–0.9 hand lengths short of the mouth), from the generator the shipped lifter was
    fine-tuned on (other seeds).

    Raises:
        KeyError: ``pose`` is not one of :data:`PROCEDURAL_POSES`.
    """
    from posestream.offline.mocap import coco17_points
    from posestream.offline.synthetic_motion import Body, gesture, joints, seated, standing

    if pose not in PROCEDURAL_POSES:
        raise KeyError(f"no procedural {pose!r}: one of {', '.join(PROCEDURAL_POSES)}")
    base = seated(rng) if pose == "sitting" else standing(rng)
    kind = {"hello": "hello", "stop": "stop", "drinking": "mouth"}.get(pose)
    held = gesture(base, kind, rng, 0) if kind else base  # arm 0: the right, as body()'s
    return coco17_points(joints(Body.random(rng), held)).astype(np.float64)


def sweep_views(pose: str, camera: Camera, count: int, seed: int, noise: float = 0.03, make_body=body) -> np.ndarray:
    """``count`` random bodies in ``pose`` seen by ``camera``: (count, 17, 2) float32 pixels with
    Gaussian noise of ``noise`` torso lengths per coordinate (the pose model's jitter).
    ``make_body``: :func:`body` or :func:`procedural_body`."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        joints = make_body(pose, rng)
        chest = (joints[5] + joints[6] + joints[11] + joints[12]) / 4
        out.append(jitter(camera.project(joints, chest), noise, rng))
    return np.asarray(out, np.float32)


def jitter(pixels: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """(17, 2) COCO-17 pixels plus Gaussian noise of ``noise`` torso lengths (shoulder centre
    to hip centre in the image) per coordinate: a pose model's jitter as the sweeps draw it.
    Returns (17, 2) float64 pixels (NaN stays NaN)."""
    torso = np.linalg.norm((pixels[5] + pixels[6]) / 2 - (pixels[11] + pixels[12]) / 2)
    return pixels + rng.normal(0, noise * torso, pixels.shape)


def view_seed(seed: int, pose_index: int, yaw: float, pitch: float) -> int:
    """The random seed of one view's bodies: ``seed + 1000 pose_index + 10 |yaw| + pitch``,
    and 500 000 more from the person's right (negative yaw: other bodies than the mirror
    view's), so that every seed is ≥ 0 for ``seed`` ≥ 20 (the lowest pitch, −20°)."""
    return int(seed + 1000 * pose_index + 10 * abs(yaw) + pitch + (500_000 if yaw < 0 else 0))


def sweep(classify, count: int = 20, seed: int = 0, yaws=YAWS, pitches=PITCHES, focals=FOCALS, make_body=body,
          poses=None) -> dict:
    """Accuracy of ``classify(keypoints (17, 2)) → (posture, gesture)`` over the sweep of
    ``poses`` (keys of :data:`POSES`; None: every pose ``make_body`` makes) made by
    ``make_body`` (:func:`body`, or :func:`procedural_body`).

    Returns:
        {(pose, yaw, pitch): (posture accuracy, gesture accuracy)} over ``count`` bodies × focal lengths.
    """
    if poses is None:
        poses = PROCEDURAL_POSES if make_body is procedural_body else tuple(POSES)
    table = {}
    for p_index, (pose, (posture, gesture)) in enumerate(POSES.items()):
        if pose not in poses:
            continue
        for yaw in yaws:
            for pitch in pitches:
                right = [0, 0]
                total = 0
                for focal in focals:
                    views = sweep_views(pose, Camera(yaw, pitch, focal), count,
                                        view_seed(seed + int(focal), p_index, yaw, pitch), make_body=make_body)
                    for keypoints in views:
                        got = classify(keypoints)
                        right[0] += got[0] == posture
                        right[1] += got[1] == gesture
                        total += 1
                table[pose, yaw, pitch] = (right[0] / total, right[1] / total)
    return table


def numeric_overrides(items) -> dict:
    """``KEY=NUMBER`` strings (the tools' ``--set``) → ``{key: float}``, to override numeric
    :class:`~posestream.stream.classify.rules.ClassifierConfig` settings.

    Raises:
        ValueError: an item is not ``KEY=NUMBER``.
    """
    overrides = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            overrides[key] = float(value)
        except ValueError:
            raise ValueError(f"--set {item}: expected KEY=NUMBER") from None
    return overrides


def rule_variants(settings: dict | None = None) -> dict:
    """The rule variants the evaluation tools print side by side: ``default`` (``settings``
    applied: with the lifter's depth where ``posture_source`` / ``gesture_source`` say so),
    ``default-2d`` (the same on 2D alone) and ``hafizas`` (the reference, which has no settings).

    Args:
        settings: :class:`~posestream.stream.classify.rules.ClassifierConfig` keyword values
            (e.g. :func:`numeric_overrides`, or a loaded config's ``classify`` section).

    Returns:
        {name: ClassifierConfig}.

    Raises:
        TypeError: an unknown setting. ValueError: a setting out of its range.
    """
    from posestream.stream.classify.rules import ClassifierConfig

    settings = dict(settings or {})
    return {"default": ClassifierConfig(**settings),
            "default-2d": ClassifierConfig(**{**settings, "posture_source": "2d", "gesture_source": "2d"}),
            "hafizas": ClassifierConfig(rules="hafizas")}


def still_lifter(path: str = "default"):
    """The 3D lifter as the sweep uses it: ``lift(keypoints (17, 2) pixels, size=IMAGE_SIZE) →
    (17, 3) float32 metres`` (H36M-17, root-relative; ``size`` the frame's (width, height)),
    the lifter's output for a person held still, the view repeated for its whole receptive
    field. ``path``: a ``.safetensors`` lifter, or ``default`` (the shipped one).

    Raises:
        ModelError: the lifter file cannot be read (:func:`posestream.stream.lift.model.load_lifter`).
    """
    from posestream.stream.lift.model import StreamingTemporalModel, load_lifter
    from posestream.stream.lift.stage import LiftConfig, lifter_inputs, person_extent

    lifter = load_lifter(LiftConfig(checkpoint=path).path)
    model = StreamingTemporalModel(lifter)

    def lift(keypoints: np.ndarray, size: tuple = IMAGE_SIZE) -> np.ndarray:
        x = lifter_inputs(keypoints[None], *size, person_extent(keypoints[None]))[0]  # as the lift stage
        state = model.start(x)
        for _ in range(lifter.architecture.receptive_field):
            out = model.step([state], x[None])
        return out[0]
    return lift
