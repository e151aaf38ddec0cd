"""Procedural motion for the lifter: the motions the free mocap lacks (sitting down on a chair and
standing up, waving, "stop", a hand at the mouth), as H36M-17 clips like the mocap's.

The shared mocap's README says what it is missing: "sitting down on a chair and standing up,
waving". A lifter trained on it alone reads a person seated facing the camera, or an arm raised
to wave, as the nearest motion it knows. These clips fill that gap; they go through the same
random cameras, bone scaling and 2D noise (:class:`~posestream.offline.lifter_data.MocapSampler`).

A body is built by forward kinematics from joint angles, world metres, Y up, facing +z, its left
at +x (H36M-17 order, :data:`posestream.engines.layouts.H36M17_PARENTS`). Segment lengths are
fractions of body height from D. A. Winter, "Biomechanics and Motor Control of Human Movement"
(4th ed., 2009), Fig. 4.1, as in :mod:`posestream.offline.classify_sweep`. The feet stay on the
floor (y = ankle height, 8 cm); a seated body's hips rest at its chair's height.

Each clip is a random sequence of held poses joined by smooth (cosine) transitions; arms wave
by swinging the forearm side to side at 1–3 Hz (the rate of a greeting wave).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from posestream.offline.mocap import MocapClip

#: Ankle joint height above the floor, metres.
ANKLE_HEIGHT = 0.08
#: Hand length (wrist to fingertip) as a fraction of body height (Winter, Fig. 4.1).
HAND = 0.108


@dataclass(frozen=True)
class Pose:
    """Joint angles of one body pose (degrees; 0 = standing upright, arms hanging).

    Attributes:
        hip_flex: (right, left) thigh angle forward from straight down (90: thigh level).
        knee_flex: (right, left) knee bend (90: shank at a right angle to the thigh).
        hip_abduct: (right, left) thigh angle out to the side.
        lean: trunk angle forward from vertical.
        turn: trunk rotation about the vertical (the shoulders' yaw against the hips).
        arm_elevation: (right, left) upper arm angle up from hanging (90: level).
        arm_forward: (right, left) direction of that elevation: 0 out to the side, 90 forwards.
        forearm_up: (right, left) forearm angle in the arm's plane from the upper arm's direction
            continued (0: arm straight; 90: bent at a right angle); for a raised forearm see
            ``forearm_vertical``.
        forearm_vertical: (right, left) when not None, the forearm's angle from straight up
            in the body's frontal plane (positive: outwards) — a raised forearm, as in a wave
            or "stop"; it overrides ``forearm_up``.
        hand_to_mouth: (right, left) put the hand at the mouth (drinking, phoning) ...
        mouth_reach: ... the wrist this many hand lengths short of the mouth, along the forearm
            (a palm over the mouth about 0.4, a cup's rim about 0.7, fingertips at the lips
            0.9): the pose model's wrist keypoint is the wrist joint, a hand's span from the
            mouth, not at it.
    """

    hip_flex: tuple = (0.0, 0.0)
    knee_flex: tuple = (0.0, 0.0)
    hip_abduct: tuple = (3.0, 3.0)
    lean: float = 0.0
    turn: float = 0.0
    arm_elevation: tuple = (8.0, 8.0)
    arm_forward: tuple = (20.0, 20.0)
    forearm_up: tuple = (10.0, 10.0)
    forearm_vertical: tuple = (None, None)
    hand_to_mouth: tuple = (False, False)
    mouth_reach: tuple = (0.5, 0.5)


#: Distance between the hip joints' and the shoulder joints' centres, fractions of body height:
#: 0.36 and 0.66 of the trunk (hip centre to shoulder line, 0.288 H), near the joint centres of
#: the shared CMU motion capture (hips 0.39, shoulders 0.75 of the torso, shoulder centre to hip
#: centre), the CMU Panoptic reconstructions (0.44-0.45 / 0.67-0.74) and BlazePose's keypoints of
#: the standing people of the shared clips seen from the front (hips 0.34-0.38, shoulders
#: 0.60-0.65); medians printed by ``tools/body_widths.py``. Winter's 0.191 H and 0.259 H are the
#: body's breadths over the skin, 1.8 and 1.4 times these joint-centre widths.
HIP_WIDTH = 0.105
SHOULDER_WIDTH = 0.19


@dataclass(frozen=True)
class Body:
    """Segment lengths, metres (Winter's fractions of ``height`` with per-segment jitter;
    the widths between joint centres, :data:`HIP_WIDTH` and :data:`SHOULDER_WIDTH`)."""

    height: float
    thigh: float
    shank: float
    trunk: float  # hip centre to shoulder line
    upper_arm: float
    forearm: float
    hip_half: float
    shoulder_half: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Body":
        h = rng.uniform(1.50, 1.95)
        s = lambda: rng.uniform(0.95, 1.05)  # noqa: E731 -- per-segment jitter
        return cls(h, 0.245 * h * s(), 0.246 * h * s(), (0.818 - 0.530) * h * s(), 0.186 * h * s(), 0.146 * h * s(),
                   HIP_WIDTH * h / 2 * s(), SHOULDER_WIDTH * h / 2 * s())


def _rad(a) -> np.ndarray:
    return np.radians(np.asarray(a, np.float64))


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def joints(body: Body, pose: Pose) -> np.ndarray:
    """(17, 3) float64 H36M-17 world metres of ``body`` in ``pose`` (feet on the floor y = 0,
    hip centre above the origin)."""
    j = np.zeros((17, 3))
    legs = []
    for side, (hip_i, knee_i, ankle_i), sign in ((0, (1, 2, 3), -1.0), (1, (4, 5, 6), 1.0)):
        flex, knee, abduct = _rad(pose.hip_flex[side]), _rad(pose.knee_flex[side]), _rad(pose.hip_abduct[side])
        hip = np.array([sign * body.hip_half, 0.0, 0.0])
        thigh_dir = np.array([sign * np.sin(abduct), -np.cos(flex) * np.cos(abduct), np.sin(flex) * np.cos(abduct)])
        shank_angle = flex - knee
        shank_dir = np.array([sign * np.sin(abduct) * 0.5, -np.cos(shank_angle), np.sin(shank_angle)])
        shank_dir /= np.linalg.norm(shank_dir)
        knee_p = hip + body.thigh * thigh_dir
        legs.append((hip_i, knee_i, ankle_i, hip, knee_p, knee_p + body.shank * shank_dir))
    lowest = min(leg[5][1] for leg in legs)
    lift = ANKLE_HEIGHT - lowest  # hip centre height that puts the lower foot on the floor
    for hip_i, knee_i, ankle_i, hip, knee_p, ankle in legs:
        j[hip_i], j[knee_i], j[ankle_i] = hip, knee_p, ankle
    lean = _rad(pose.lean)
    turn = _rot_y(float(_rad(pose.turn)))
    up = np.array([0.0, np.cos(lean), np.sin(lean)])
    forward = np.array([0.0, -np.sin(lean), np.cos(lean)])
    left = np.array([1.0, 0.0, 0.0])
    up, forward, left = turn @ up, turn @ forward, turn @ left
    thorax = body.trunk * up
    j[7] = 0.5 * thorax
    j[8] = thorax
    j[9] = thorax + 0.07 * body.height * up + 0.03 * forward  # neck / nose
    j[10] = thorax + 0.17 * body.height * up  # head top
    mouth = j[9] + 0.08 * forward - 0.02 * up
    for side, (sh_i, el_i, wr_i), sign in ((0, (14, 15, 16), -1.0), (1, (11, 12, 13), 1.0)):
        shoulder = thorax + sign * body.shoulder_half * left - 0.02 * up
        elevation, direction = _rad(pose.arm_elevation[side]), _rad(pose.arm_forward[side])
        out = np.cos(direction) * sign * left + np.sin(direction) * forward  # horizontal direction of the arm
        upper_dir = -np.cos(elevation) * up + np.sin(elevation) * out
        elbow = shoulder + body.upper_arm * upper_dir
        if pose.hand_to_mouth[side]:  # forearm and hand in line, the hand's reach at the mouth
            span = pose.mouth_reach[side] * HAND * body.height
            elbow, reach = _reach(shoulder, mouth + 0.03 * sign * left, body.upper_arm, body.forearm + span,
                                  -up + 0.6 * sign * left)
            wrist = elbow + body.forearm * (reach - elbow) / np.linalg.norm(reach - elbow)
        elif pose.forearm_vertical[side] is not None:
            a = _rad(pose.forearm_vertical[side])
            fore_dir = np.cos(a) * up + np.sin(a) * sign * left
            wrist = elbow + body.forearm * (fore_dir + 0.15 * forward) / np.linalg.norm(fore_dir + 0.15 * forward)
        else:
            bend = _rad(pose.forearm_up[side])
            fore_dir = np.cos(bend) * upper_dir + np.sin(bend) * forward
            wrist = elbow + body.forearm * fore_dir / np.linalg.norm(fore_dir)
        j[sh_i], j[el_i], j[wr_i] = shoulder, elbow, wrist
    j[:, 1] += lift
    return j


def _reach(shoulder: np.ndarray, target: np.ndarray, upper: float, fore: float,
           bend: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-link reach (law of cosines): the elbow and wrist of an arm whose wrist goes to
    ``target`` (or as near as the arm's length allows), the elbow bent towards ``bend``."""
    to = target - shoulder
    d = float(np.clip(np.linalg.norm(to), abs(upper - fore) + 1e-6, upper + fore - 1e-6))
    u = to / np.linalg.norm(to)
    v = bend - np.dot(bend, u) * u
    v /= np.linalg.norm(v)
    cos_a = (upper ** 2 + d ** 2 - fore ** 2) / (2 * upper * d)
    elbow = shoulder + upper * (cos_a * u + np.sqrt(max(1 - cos_a ** 2, 0.0)) * v)
    wrist = shoulder + d * u
    return elbow, wrist


def _blend(a: Pose, b: Pose, w: float) -> Pose:
    """A pose ``w`` of the way from ``a`` to ``b`` (angles interpolated; a raised forearm or a
    hand at the mouth switches at the midpoint)."""
    def mix(x, y):
        if isinstance(x, tuple):
            return tuple(mix(p, q) for p, q in zip(x, y))
        if x is None or y is None or isinstance(x, bool):
            return x if w < 0.5 else y
        return (1 - w) * x + w * y
    return Pose(**{f: mix(getattr(a, f), getattr(b, f)) for f in Pose.__dataclass_fields__})


def standing(rng: np.random.Generator) -> Pose:
    """Upright, weight on both legs, arms hanging."""
    return Pose(hip_flex=tuple(rng.uniform(-5, 8, 2)), knee_flex=tuple(rng.uniform(0, 8, 2)),
                hip_abduct=tuple(rng.uniform(0, 8, 2)), lean=rng.uniform(-3, 6), turn=rng.uniform(-10, 10),
                arm_elevation=tuple(rng.uniform(3, 20, 2)), arm_forward=tuple(rng.uniform(0, 60, 2)),
                forearm_up=tuple(rng.uniform(0, 40, 2)))


def seated(rng: np.random.Generator) -> Pose:
    """On a chair: thighs from 10° above level to 25° below (hips flexed 65–100°), each shank
    from 15° back to 55° forward of vertical (feet a little under the seat to stretched out),
    trunk upright or leaning. (The CMU Panoptic band2 musicians of mmpose's test data sit with
    thighs 6–20° below level and shanks from 46° back to 24° forward, measured ad hoc: feet
    tucked further under the seat than these.)"""
    hip_flex = rng.uniform(65, 100, 2)
    return replace(standing(rng), hip_flex=tuple(hip_flex), knee_flex=tuple(hip_flex - rng.uniform(-15, 55, 2)),
                   hip_abduct=tuple(rng.uniform(2, 15, 2)), lean=rng.uniform(-10, 20),
                   forearm_up=tuple(rng.uniform(20, 80, 2)), arm_forward=tuple(rng.uniform(30, 80, 2)))


def gesture(base: Pose, kind: str, rng: np.random.Generator, side: int) -> Pose:
    """``base`` with one forearm raised (``hello``, the arm ``side``), both (``stop``) or a hand
    at the mouth (``mouth``, the wrist 0.35–0.9 hand lengths short of it); the elbow anywhere from
    chest height to above the shoulder."""
    elevation, forward, vertical = list(base.arm_elevation), list(base.arm_forward), list(base.forearm_vertical)
    mouth, reach = list(base.hand_to_mouth), list(base.mouth_reach)
    arms = (0, 1) if kind == "stop" else (side,)
    for a in arms:
        if kind == "mouth":
            mouth[a] = True
            elevation[a], forward[a], reach[a] = rng.uniform(15, 40), rng.uniform(40, 80), rng.uniform(0.35, 0.9)
        else:
            elevation[a], forward[a] = rng.uniform(30, 110), rng.uniform(0, 70)
            vertical[a] = rng.uniform(-20, 30)
    return replace(base, arm_elevation=tuple(elevation), arm_forward=tuple(forward), forearm_vertical=tuple(vertical),
                   hand_to_mouth=tuple(mouth), mouth_reach=tuple(reach))


def random_clip(rng: np.random.Generator, name: str, fps: float = 30.0, seconds: float = 8.0) -> MocapClip:
    """One clip: a random script of stand / sit / gesture phases, each held 0.7–2.5 s and joined
    by 0.4–1.5 s transitions; a raised forearm waves (1–3 Hz, ±15–35°) in half the hellos."""
    body = Body.random(rng)
    frames = int(round(seconds * fps))
    posture = standing(rng) if rng.random() < 0.5 else seated(rng)
    keys: list[tuple[float, Pose, tuple]] = [(0.0, posture, ())]  # (time, pose, wave: (arm, hz, amplitude))
    t = rng.uniform(0.7, 2.0)
    while t < seconds:
        kind = rng.choice(["posture", "hello", "stop", "mouth", "rest"], p=[0.3, 0.3, 0.15, 0.1, 0.15])
        if kind == "posture":
            posture = seated(rng) if keys[-1][1].hip_flex[0] < 45 else standing(rng)
            target, wave = posture, ()
        elif kind == "rest":
            target, wave = posture, ()
        else:
            side = int(rng.integers(2))
            target = gesture(posture, str(kind), rng, side)
            wave = (side, rng.uniform(1.0, 3.0), rng.uniform(15, 35)) if kind == "hello" and rng.random() < 0.5 else ()
        t += rng.uniform(0.4, 1.5)
        keys.append((t, target, wave))
        t += rng.uniform(0.7, 2.5)
        keys.append((t, target, wave))
    out = np.zeros((frames, 17, 3))
    for i in range(frames):
        now = i / fps
        k = max(n for n, key in enumerate(keys) if key[0] <= now)
        start, pose, wave = keys[k]
        if k + 1 < len(keys):
            end, nxt, _ = keys[k + 1]
            w = 0.5 - 0.5 * np.cos(np.pi * np.clip((now - start) / max(end - start, 1e-6), 0, 1))
            pose = _blend(pose, nxt, float(w))
        if wave and pose.forearm_vertical[wave[0]] is not None:
            arm, hz, amplitude = wave
            vertical = list(pose.forearm_vertical)
            vertical[arm] = vertical[arm] + amplitude * np.sin(2 * np.pi * hz * now)
            pose = replace(pose, forearm_vertical=tuple(vertical))
        out[i] = joints(body, pose)
    return MocapClip(name, "procedural: stand, sit on a chair, wave, stop, hand at the mouth", fps, out.astype(np.float32))


def synthetic_clips(count: int, seed: int, fps: float = 30.0, seconds: float = 8.0) -> list[MocapClip]:
    """``count`` clips of :func:`random_clip` from one seed (reproducible)."""
    rng = np.random.default_rng(seed)
    return [random_clip(rng, f"synthetic_{seed}_{i:04d}", fps, seconds) for i in range(count)]
