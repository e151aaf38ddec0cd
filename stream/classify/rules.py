"""Per-person posture (standing / sitting) and gesture (hello / stop) from keypoints.

Two rule sets over COCO-17 keypoints (pixels, y down):

* ``hafizas`` — the rule-based system this product reproduces (hafizas101's OpenPose BODY_25
  rules, remade on COCO-17 as DESIGN.md §3 states them), ported as they are: no confidence
  gating, no smoothing, a reading for every frame. Kept for comparison.
* ``hands`` — the default rules with the hand itself and its motion read first (issue 17;
  :func:`hands_gesture`): where a hand is seen well (``hands`` of ``posestream run --hands``,
  status ``ok``) a still, open palm towards the camera is stop and a waving open hand hello,
  while a raised fist is nothing; a waving wrist (:class:`~posestream.stream.classify.hands.WaveDetector`)
  is hello whatever the forearm's angle; where the hand is not seen well (too small, absent)
  the arm rules decide.
* ``default`` — the same questions asked robustly: keypoints below a confidence are not used and
  the answer is ``unknown`` rather than a guess; every threshold is a ratio of the person's own
  torso length (scale-free); no division by zero; sit/stand, and the arm tests a 2D view can get
  wrong (heights from above, the face and the hands' spread from the side), from the 3D pose
  (H36M-17) when the lifter has produced one (for posture, one whose knees explain the 2D
  ones); and per-track hysteresis in seconds (:class:`LabelHysteresis`), so
  10 fps and 60 fps behave alike.

Labels: posture ∈ {standing, sitting, unknown}; gesture ∈ {none, hello, stop}.

Definitions (the default rules; README "Labels"):

* an arm is **raised** when its forearm points up: wrist above elbow, forearm 30°–150° from the
  horizontal (the reference's angle test) and at least ``min_forearm`` torso lengths long; its
  elbow anywhere from above the waist (``elbow_above_hip`` torso lengths above the hip centre) to
  above the shoulder; its wrist no lower than ``wrist_below_shoulder`` torso lengths under the
  shoulder (hands clasped at the chest are not a gesture); and its hand, unless the wrist is above
  the eyes, away from the face (the hand — the wrist and ``hand_reach`` forearm lengths beyond it,
  along the forearm — farther than ``face_distance`` torso lengths from the nose, eyes and ears:
  a hand at the mouth or ear — drinking, phoning — is not a gesture, though its wrist is a
  hand's span below the mouth). **hello** = one raised arm,
  **stop** = both with the hands apart (``hands_apart``), each held for ``gesture_hold`` seconds.
* a leg **sits** when its thigh is level or foreshortened (the knee hardly below the hip, or a
  thigh shorter than ``short_thigh`` torso lengths above a longer shank: a person seated facing
  the camera), or bent at the knee with the thigh not vertical; it **stands** when the thigh is
  near vertical and the knee straight. One standing leg stands (walking is standing), unless
  its thigh is foreshortened beside a bent knee (``stretched_leg_shank``: one leg stretched out
  towards the camera while seated); sitting needs every judged leg; ``unknown`` when no leg is
  seen well enough.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .hands import WaveDetector, hand_features, hand_size

# COCO-17 indices (posestream.engines.layouts.COCO17_NAMES)
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
#: (shoulder, elbow, wrist) of the right and left arm; (hip, knee, ankle) of the right and left leg
ARMS = ((R_SHOULDER, R_ELBOW, R_WRIST), (L_SHOULDER, L_ELBOW, L_WRIST))
LEGS = ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE))
# H36M-17 indices (VideoPose3D): root, thorax and each leg's hip, knee, ankle
H36M_ROOT, H36M_THORAX = 0, 8
H36M_LEGS = ((1, 2, 3), (4, 5, 6))
#: H36M-17 neck/nose and head top (the face in 3D); (shoulder, elbow, wrist) in :data:`ARMS` order (right, left)
H36M_HEAD = (9, 10)
H36M_ARMS = ((14, 15, 16), (11, 12, 13))
#: COCO-17 shoulders and hips → the same H36M-17 joints; COCO-17 knees → H36M-17 knees
TRUNK_COCO_H36M = ((L_SHOULDER, 11), (R_SHOULDER, 14), (L_HIP, 4), (R_HIP, 1))
KNEES_COCO_H36M = ((L_KNEE, 5), (R_KNEE, 2))

POSTURES = ("standing", "sitting", "unknown")
#: Values of :attr:`ClassifierConfig.posture_source`.
POSTURE_SOURCES = ("2d", "3d", "2d+3d")
#: Values of :attr:`ClassifierConfig.gesture_source`.
GESTURE_SOURCES = ("2d", "2d+3d")
#: Rule sets of :attr:`ClassifierConfig.rules`.
RULE_SETS = ("default", "hafizas", "hands")
GESTURES = ("none", "hello", "stop")


def _gesture(raised: int) -> str:
    return ("none", "hello", "stop")[min(raised, 2)]


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between 2D/3D vectors ``a`` and ``b``; NaN if either has zero length."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))))


# ---------------------------------------------------------------------------------------------
# the reference rules

def hafizas_arm_raised(elbow: np.ndarray, wrist: np.ndarray) -> bool:
    """Reference arm rule: the wrist is above the elbow and the forearm's angle from the
    horizontal is in (30°, 150°). Points are (x, y) pixels, y down."""
    dx, dy = float(wrist[0] - elbow[0]), float(elbow[1] - wrist[1])  # dy > 0: wrist above
    angle = float(np.degrees(np.arctan2(dy, dx)))
    return dy > 0 and 30.0 < angle < 150.0


def hafizas_leg_sitting(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray) -> bool:
    """Reference leg rule: |knee–ankle| / |hip–knee| ≥ 1.5 (thigh foreshortened) or the
    thigh–shank angle at the knee is in (40°, 120°).

    The reference divides without a guard; here the division follows IEEE instead of raising:
    a zero-length thigh makes the ratio infinite (→ sitting), 0/0 is NaN (→ not sitting).
    """
    thigh, shank = float(np.linalg.norm(hip - knee)), float(np.linalg.norm(ankle - knee))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.float64(shank) / np.float64(thigh)
    angle = _angle(hip - knee, ankle - knee)
    return bool(ratio >= 1.5) or 40.0 < angle < 120.0


def hafizas_classify(keypoints: np.ndarray) -> tuple[str, str]:
    """The reference rules on one person's (17, 2) COCO-17 keypoints (pixels), every keypoint
    used whatever its score.

    Returns:
        ``(posture, gesture)``: posture ∈ {sitting, standing} (any sitting leg = sitting),
        gesture ∈ {none, hello, stop}.
    """
    raised = sum(hafizas_arm_raised(keypoints[e], keypoints[w]) for _, e, w in ARMS)
    sitting = any(hafizas_leg_sitting(keypoints[h], keypoints[k], keypoints[a]) for h, k, a in LEGS)
    return ("sitting" if sitting else "standing"), _gesture(raised)


# ---------------------------------------------------------------------------------------------
# the default rules

@dataclass(frozen=True)
class ClassifierConfig:
    """Classifier settings (``classify:`` in the YAML configs).

    Attributes:
        rules: ``default`` or ``hafizas`` (the reference, for comparison).
        keypoint_threshold: keypoints scoring below this are not used (``unknown`` if a rule
            lacks the keypoints it needs).
        min_forearm: a raised forearm is at least this many torso lengths long (wrist to elbow).
        elbow_above_hip: a raised arm's elbow is at least this many torso lengths above the hip
            centre (above the waist); it may be anywhere above that, shoulder height or higher.
        face_distance: a raised arm's hand, unless its wrist is above the eyes, is farther than
            this many torso lengths from every confident face keypoint (nose, eyes, ears): hands
            at the face are no gesture.
        hand_reach: the hand whose distance from the face is measured: the segment from the
            wrist to this many forearm lengths beyond it, along the forearm (in the image, so
            foreshortened alike). The hand is 0.74 of the forearm's length (Winter, Fig. 4.1:
            0.108 / 0.146 of the height); 0.4 reaches the knuckles. Chosen on the synthetic
            sweeps' bodies of seed 0 (``tools/classify_sweep.py --lifter`` and ``--procedural``;
            0.3-0.5 tried): the wrist of a hand at the mouth is a hand's span below it, where a
            wrist alone reads it raised beside the chin. 0: the wrist alone.
        wrist_below_shoulder: a raised arm's wrist is at most this many torso lengths below its
            shoulder (hands held in front of the chest are no gesture).
        hands_apart: two raised arms with both wrists below the eyes are stop only with the
            wrists at least this many torso lengths apart (a palms-out stop spreads them about a
            shoulder width, 0.6–0.8 torso; hands clasped or held together at the chin are no
            gesture; hands together above the head are still stop) ...
        hands_apart_shoulders: ... and closer than this many shoulder widths (in a side view the
            shoulders, and the hands, overlap in the image: no reading of "together" there).
        stand_thigh: a leg stands when its knee is below its hip by at least this fraction of the
            torso length (a thigh near vertical) ...
        stand_knee_angle: ... and its knee angle (hip–knee–ankle) is at least this, degrees.
        sit_thigh: a leg sits when its knee is less than this fraction of the torso below the hip
            (thigh level or foreshortened towards the camera) ...
        sit_knee_angle: ... or its knee is bent below this angle, degrees, with the thigh not
            vertical (knee less than ``stand_thigh`` below the hip) ...
        short_thigh: ... or its thigh is shorter than this many torso lengths ...
        short_thigh_shank: ... under a shank at least this many times longer (the thigh points
            at the camera: seated, facing it; the reference's shank/thigh ratio of 1.5).
        max_thigh: a thigh longer than this many torso lengths is implausible (a body guessed
            from a partial view) and that leg is not judged.
        stretched_leg_shank: one standing leg stands the person (walking is standing), unless
            its shank is at least this many times its thigh in the image (the thigh
            foreshortened: pointing at the camera) while the other knee is bent under
            ``sit_knee_angle``: a seated person with one leg stretched out towards the camera,
            seen from the front and a little above (CMU Panoptic's seated musicians,
            ``tools/eval_panoptic.py``; the reference reads any bent knee as sitting). With
            ``2d+3d`` a 3D pose that explains the 2D knees and reads standing overrules it. A
            walker's swinging knee bends as far, but the leg they stand on is seldom as
            foreshortened: 1.3 is the smallest of 1.1 / 1.2 / 1.3 that reads no frame of the
            mocap walks sitting through the cameras of seeds 0 and 100 (``tools/eval_walking.py
            [--near-high] --seed S --cameras 3|4``, cameras 2-21 deg down; 1.2 read 9 frames in
            each of 2 of seed 100's 148 views, 1.1 2 of seed 0's 54 views), where the bent knee
            alone reads 4 % of their frames sitting; none on held-out seed 200. From cameras
            mounted high (``--high``, 11-39 deg down, seeds 300 / 500 / 600 / 700, 288 views)
            it reads 84 of 27 504 frames sitting, against 44 without it. Panoptic band2 0.799
            -> 0.822 (1.1 / 1.2: 0.840 / 0.830).
        legs_only_tilt: a person whose torso is not seen (no shoulder or no hip: cut by the
            frame's top) stands when a leg's thigh is within this many degrees of vertical in
            the image, its knee straight and its thigh not foreshortened
            (:func:`legs_only_posture`); else ``unknown``. 30: the thighs of the legs the torso
            rules read standing in the shared clips (labelled and ``NEGATIVE_CLIPS``, 10 034
            legs) tilt 27.6 deg at the 99th percentile. Legs-only people were ``unknown`` before:
            5 of the 37 standing people of the shared COCO images whose hips and knees COCO marks.
        posture_source: ``2d`` (default rules on the 2D keypoints); ``3d``: the thigh angles of
            ``keypoints_3d`` decide, for people with at least one hip and knee seen in 2D (a lifter
            invents legs it cannot see) whose lift explains them (``knee_error_3d``), the 2D rules
            otherwise; ``2d+3d`` (the default): the 2D rules, except that a person they read
            standing is sitting when both thighs of ``keypoints_3d`` sit, and one with a leg seen
            whole (hip, knee, ankle) but read neither way takes the 3D reading (a seated person
            seen from above or facing the camera, thighs towards the lens, looks standing or
            ambiguous in 2D: only depth tells; ``knee_error_3d_ambiguous``); and a 2D "sitting"
            that only a stretched leg makes (``stretched_leg_shank``) is standing where the 3D
            pose reads standing. Without ``keypoints_3d``
            (no lifter) ``3d`` and ``2d+3d`` are ``2d``.
        gesture_source: ``2d``: the arm rules on the 2D keypoints alone; ``2d+3d`` (the
            default): the same, except for the tests depth can overturn. An elbow or wrist that
            2D puts too low, a hand that 2D puts at the face, and two wrists that 2D puts
            together are asked again in ``keypoints_3d`` (:func:`arm_depth`): seen from above,
            an elbow held forward at chest height is drawn at the waist; from the side, a hand
            raised in front of the chest, or held out to the far side, is drawn on the face,
            and two raised forearms on one another. The other way, a hand whose wrist 2D draws
            below the eyes but away from the face is at the face when 3D puts it near (a hand at the ear
            seen from above), and a forearm 2D draws raised is not when 3D puts it level
            (``forearm_rise_3d``: hands held forward seen from above or behind). The forearm must
            still point up in the image. The 2D test stands where there is no ``keypoints_3d``.
        face_distance_3d: 3D: a hand 2D draws at the face is away from it when it (the wrist
            and ``hand_reach`` forearm lengths beyond) is farther than this many 3D torso lengths
            (thorax to pelvis) from the neck/nose and the head top (the lifter puts a hand at
            the mouth or ear 0.14-0.82 from them on the sweep, a raised hand 0.66-1.27: 5th-95th
            percentiles of ``tools/classify_sweep.py --lifter --distances``) ...
        face_near_3d: ... and a hand closer than this is at the face wherever 2D draws its
            wrist below the eyes (a hand at the ear seen from above is drawn beside the head).
            Between the two, 2D decides. Both chosen on the synthetic sweep's bodies of seed 0
            (``tools/classify_sweep.py --lifter``; kept when the hand replaced the wrist: of 0.4-0.5
            and 0.6-0.85 they pass the most views there, 283, though 0.75-0.8 pass 4-6 more of
            the ``--procedural`` bodies and 2-4 fewer of these), checked on other bodies and the
            real clips.
        face_clear_forearm: 3D's "away from the face" overturns 2D's "at the face" only for a
            forearm drawn within this many degrees of vertical in the image (a hand raised beside
            the head and drawn over the face from the side); a forearm slanting further towards
            the face (elbow held forward or out, a cup or a bottle brought to the mouth) is at
            the face as 2D draws it: seen from 75-90 deg at or below eye level the lifter puts
            such a hand far enough from the head to read hello (``tools/classify_sweep.py
            --lifter [--set face_clear_forearm=180]``, the sweep's bodies of seed 0: 30-35 pass
            the most views there, 288, against 283 without the gate, 180; 60 or more is the same
            as 180, a raised forearm being 30-150 deg from horizontal).
        forearm_rise_3d: 3D: a forearm 2D draws raised is not raised when the lifter puts it
            less than this many degrees above the plane square to the torso's axis (under the
            definition's 30 deg, room left for the lifter's error): seen from above and behind, hands
            resting forward on a table are drawn above the elbows (intel-one-by-one-person's
            readers, read hello or stop in 18 % of their frames by 2D, their forearms lifted
            2 deg up in the median, 88 % under 20: ``tools/eval_classify.py --negatives
            --lift-checks``). First 20, the largest of 10 / 20 / 30 that cost no view of the
            synthetic sweep's bodies of seed 0 and no labelled clip's gestures then; on the
            sweep's corrected bodies with the lifter fine-tuned on them, 20 / 25 / 30 pass the
            same views of the three sweeps (``tools/classify_sweep.py --lifter [--mirrored |
            --procedural] --set forearm_rise_3d=X``) and read the labelled clips and their 200
            px recordings alike (``tools/eval_classify.py``); 25 keeps 5 deg under the
            definition's 30 for the lifter's error and takes away the readers' stops that lifter
            reads at 20 (0.010 of their frames; they found the fault, so that is no held-out
            figure). The arms 2D reads raised on the labelled clips rise 34 deg or more (1st
            percentile; ``tools/eval_classify.py --shared --lift-checks``).
        hands_apart_3d: 3D: two wrists 2D draws together are apart when this many 3D torso
            lengths apart. Not 2D's 0.4, which read clasped hands as stop on tfjs pose_1 and
            squats (``tools/eval_classify.py``); a stop's wrists are 1.30-1.90 apart on the
            sweep (5th-95th percentile, ``--distances`` as above).
        sit_thigh_angle_3d: 3D: a leg sits when its thigh is at least this many degrees from
            the torso's downward axis (thigh near horizontal when upright) ...
        stand_thigh_angle_3d: ... and stands when it is within this many degrees.
        knee_error_3d: ``keypoints_3d`` reads the posture (``3d``, ``2d+3d``) only where it
            explains the 2D legs: its knees, put on the image by the scale and shift that fit its
            shoulders and hips to the 2D ones (:func:`knee_reprojection`), land within this many
            torso lengths of the confident 2D knees. The lifter sometimes answers straight legs
            seen from a raised camera with seated thighs pointing sideways (opencv-vtest's
            standing pedestrians, whose lifts read sitting in 25 % of their frames, put the knees
            more than 0.5 torso away in 38 % of them, 1.51 at the 95th percentile); it lands them
            within 0.21-0.33 in 99 % of the synthetic sweeps' bodies of each pose (0.59 at most),
            seated ones read right from above included (``tools/classify_sweep.py --lifter
            --lift-checks``, ``--procedural``, ``--mirrored``), and within 0.20-0.26 in 95 % of
            the person-frames of six labelled clips (``tools/eval_classify.py --shared
            --lift-checks``); the seventh's, mediapipe-hand-reach's skeletons fitted to a hand in
            close-up (labelled unknown), 1.1 away in the median.
        knee_error_3d_ambiguous: with ``posture_source`` ``2d+3d``, the same check for a person
            whose legs 2D sees whole (hip, knee, ankle) but reads neither way: there the lift
            decides, sitting or standing, within this many torso lengths (instead of
            ``knee_error_3d``), about a 3D thigh's length (0.8-0.9 torso: the knee may be put on
            the wrong side of the hip, not further). ``posture_source`` ``3d`` keeps
            ``knee_error_3d`` for everyone. Seated facing a camera from the front and a little
            above, knees bent 125-145 deg in the image and thighs foreshortened, the lifter reads
            people sitting but lifts their thighs above level, so that its knees land 0.5-1.8
            torso off (CMU Panoptic band2's musicians, ``tools/eval_panoptic.py``: 66 of 1311
            readings). Where the 2D legs read standing the lift must pass ``knee_error_3d``.
            Chosen on band2 (0.5 / 0.75 / 1.0 / 1.5: 0.822 / 0.834 / 0.841 / 0.857 read
            sitting); 1.0 costs nothing measured where nobody sits: the walkers of
            ``tools/eval_walking.py``, opencv-vtest, intel-one-by-one-person, the labelled clips
            and their 150 / 200 px recordings and the three sweeps read as with 0.5.
        posture_hold, gesture_hold: a reported label changes only when the new reading has held
            (in at least 2/3 of the track's frames) for this many seconds, by the frames'
            timestamps. ``gesture_hold`` is the definition's 0.3 s (issue 14); ``posture_hold``
            and ``unknown_hold`` are what the leave-one-clip-out cross-validation of
            ``tools/eval_classify.py --cv`` chose on the shared labelled clips.
        gesture_release: seconds ``none`` must hold to end a gesture (a lowered arm ends it
            sooner than a raised one starts it; entering stays at ``gesture_hold``, so gestures
            cannot flicker faster than that).
        first_hold: seconds a track's first posture and gesture readings must hold (its
            initial ``unknown`` / ``none`` is no label to protect).
        arm_keypoint_threshold: elbows and wrists are judged from this score (they score lower
            than the trunk: small, fast, often blurred).
        arm_memory: seconds an arm that can no longer be judged (its elbow or wrist scoring low
            for a moment: blurred, crossing the body) keeps its last judged reading while the
            track reports a gesture, so that one lost elbow does not turn a held stop into hello;
            the same 1 s a lost track is kept for
            (:class:`~posestream.stream.track.tracker.TrackerConfig`). The memory keeps a
            gesture, it never starts one: one raised reading before the arm is lost is no hello
            (intel-one-by-one-person's readers, a forearm lifted 21 deg for a frame: hello 0.027
            -> 0.018 of their frames; opencv-vtest's pedestrians 0.012 -> 0.008; no labelled
            clip changes, as filmed or in a screen recording). An arm that leaves the frame is
            forgotten at once; one lowered behind the body keeps its gesture up to this long
            (the price of the memory). 0: no memory.
        unknown_hold: seconds ``unknown`` postures must hold to replace a standing or sitting
            label (legs unclear for a moment, e.g. mid-transition, are an abstention rather
            than a new posture).
        wave_window: ``hands`` rules: seconds of wrist motion looked at for waving ...
        wave_min_hz, wave_max_hz: ... a side-to-side rate in this range (cycles per second) ...
        wave_amplitude: ... swings of at least this many hand sizes (the hand's measured length,
            or ``hand_torso`` torso lengths where the hand is not seen).
        hand_torso: a hand's length in torso lengths where it is not measured (adult
            proportions: about 19 cm against 50 cm).
        stop_below_shoulder: ``hands`` rules: a flat palm towards the camera is stop from this
            many torso lengths below its shoulder up (a "stop" held at chest height counts).
    """

    rules: str = "default"
    keypoint_threshold: float = 0.5
    min_forearm: float = 0.2
    elbow_above_hip: float = 0.15
    face_distance: float = 0.25
    hand_reach: float = 0.4
    wrist_below_shoulder: float = 0.3
    hands_apart: float = 0.4
    hands_apart_shoulders: float = 0.9
    stand_thigh: float = 0.35
    stand_knee_angle: float = 145.0
    sit_thigh: float = 0.25
    sit_knee_angle: float = 120.0
    short_thigh: float = 0.55
    short_thigh_shank: float = 1.5
    max_thigh: float = 1.6
    stretched_leg_shank: float = 1.3
    legs_only_tilt: float = 30.0
    posture_source: str = "2d+3d"
    gesture_source: str = "2d+3d"
    face_distance_3d: float = 0.7
    face_near_3d: float = 0.45
    hands_apart_3d: float = 0.8
    forearm_rise_3d: float = 25.0
    face_clear_forearm: float = 35.0
    sit_thigh_angle_3d: float = 55.0
    stand_thigh_angle_3d: float = 30.0
    knee_error_3d: float = 0.5
    knee_error_3d_ambiguous: float = 1.0
    posture_hold: float = 0.3
    gesture_hold: float = 0.3
    gesture_release: float = 0.1
    first_hold: float = 0.0
    arm_keypoint_threshold: float = 0.3
    arm_memory: float = 1.0
    unknown_hold: float = 0.3
    wave_window: float = 1.5
    wave_min_hz: float = 1.0
    wave_max_hz: float = 4.0
    wave_amplitude: float = 0.5
    hand_torso: float = 0.4
    stop_below_shoulder: float = 0.5

    def __post_init__(self):
        if self.rules not in RULE_SETS:
            raise ValueError(f"classify: rules must be one of {', '.join(RULE_SETS)}, not {self.rules!r}")
        if self.posture_source not in POSTURE_SOURCES:
            raise ValueError(f"classify: posture_source must be one of {', '.join(POSTURE_SOURCES)}, "
                             f"not {self.posture_source!r}")
        if self.gesture_source not in GESTURE_SOURCES:
            raise ValueError(f"classify: gesture_source must be one of {', '.join(GESTURE_SOURCES)}, "
                             f"not {self.gesture_source!r}")
        if not -90 <= self.forearm_rise_3d <= 90:
            raise ValueError(f"classify: forearm_rise_3d is degrees from -90 to 90, not {self.forearm_rise_3d!r}")
        for name in ("knee_error_3d", "knee_error_3d_ambiguous"):
            if not getattr(self, name) > 0:
                raise ValueError(f"classify: {name} is torso lengths > 0, not {getattr(self, name)!r}")
        if min(self.posture_hold, self.gesture_hold, self.gesture_release, self.first_hold, self.arm_memory,
               self.unknown_hold) < 0:
            raise ValueError("classify: posture_hold, gesture_hold, gesture_release, first_hold, arm_memory and "
                             "unknown_hold are seconds ≥ 0")
        if not 0 <= self.face_clear_forearm <= 180:
            raise ValueError(f"classify: face_clear_forearm is degrees from 0 to 180, not {self.face_clear_forearm!r}")
        if not 0 <= self.legs_only_tilt <= 90:
            raise ValueError(f"classify: legs_only_tilt is degrees from 0 to 90, not {self.legs_only_tilt!r}")
        if not self.stretched_leg_shank > 0:
            raise ValueError(f"classify: stretched_leg_shank is a ratio > 0, not {self.stretched_leg_shank!r}")
        if not 0 <= self.hand_reach <= 2:
            raise ValueError(f"classify: hand_reach is forearm lengths from 0 to 2, not {self.hand_reach!r}")


def torso_length(keypoints: np.ndarray, ok: np.ndarray) -> float | None:
    """Distance from the shoulder centre to the hip centre, pixels, using whichever shoulders and
    hips are confident (None when no shoulder or no hip is, or the length is zero)."""
    shoulders = [i for i in (L_SHOULDER, R_SHOULDER) if ok[i]]
    hips = [i for i in (L_HIP, R_HIP) if ok[i]]
    if not shoulders or not hips:
        return None
    length = float(np.linalg.norm(keypoints[shoulders].mean(axis=0) - keypoints[hips].mean(axis=0)))
    return length if length > 0 else None


FACE = (0, 1, 2, 3, 4)  # COCO-17 nose, eyes, ears
IMAGE_UP = np.array([0.0, -1.0])  # image y is down
IMAGE_DOWN = -IMAGE_UP


def _torso_3d(keypoints_3d: np.ndarray | None) -> float | None:
    """Thorax-to-pelvis length of a (17, 3) H36M-17 pose, metres (None: no usable pose)."""
    if keypoints_3d is None or not np.all(np.isfinite(keypoints_3d)):
        return None
    length = float(np.linalg.norm(keypoints_3d[H36M_THORAX] - keypoints_3d[H36M_ROOT]))
    return length if length > 0 else None


def knee_reprojection(keypoints: np.ndarray, ok: np.ndarray, keypoints_3d: np.ndarray) -> float | None:
    """How far a lifted pose's knees land from the 2D knees, in 2D torso lengths.

    The (17, 3) H36M-17 ``keypoints_3d`` (metres, the lifter's camera frame: x right, y down,
    as VideoPose3D's) are put on the image by weak perspective: the scale and shift that best
    fit (least squares) the x, y of its shoulders and hips to the confident ones of the (17, 2)
    COCO-17 ``keypoints`` (pixels; ``ok`` (17,) bool). Returns the largest distance of a
    confident 2D knee from its projected 3D knee over the torso length
    (:func:`torso_length`); None without a torso (a confident shoulder and hip: the fit's two
    points at least) or a confident knee, and for a fit of zero or negative scale (a lift
    upside down against the picture explains nothing).
    """
    torso = torso_length(keypoints, ok)
    trunk = [(c, h) for c, h in TRUNK_COCO_H36M if ok[c]]
    knees = [(c, h) for c, h in KNEES_COCO_H36M if ok[c]]
    if torso is None or not knees:
        return None
    src = keypoints_3d[[h for _, h in trunk], :2].astype(np.float64)
    dst = keypoints[[c for c, _ in trunk]].astype(np.float64)
    src_c, dst_c = src - src.mean(axis=0), dst - dst.mean(axis=0)
    denom = float((src_c * src_c).sum())
    if denom == 0:
        return None
    scale = float((src_c * dst_c).sum()) / denom
    if not scale > 0:
        return None
    shift = dst.mean(axis=0) - scale * src.mean(axis=0)
    projected = scale * keypoints_3d[[h for _, h in knees], :2] + shift
    return float(np.linalg.norm(projected - keypoints[[c for c, _ in knees]], axis=1).max() / torso)


def hand_distance(points: np.ndarray, elbow: np.ndarray, wrist: np.ndarray, reach: float) -> float:
    """Least distance from (K, D) float ``points`` to the hand: the segment from the (D,)
    ``wrist`` to ``reach`` forearm lengths beyond it along elbow → wrist (the hand is 0.74 of the
    forearm's length, Winter, Fig. 4.1; ``reach`` 0 or a zero-length forearm: the wrist alone).
    D = 2 (pixels) or 3 (metres); the result is in the points' unit.

    Raises:
        ValueError: ``points`` is empty (K = 0).
    """
    ab = reach * (wrist - elbow)
    length = float(ab @ ab)
    t = np.zeros(len(points)) if length == 0 else np.clip((points - wrist) @ ab / length, 0.0, 1.0)
    return float(np.linalg.norm(points - (wrist + t[:, None] * ab), axis=1).min())


class ArmDepth(NamedTuple):
    """One arm's answers from the 3D pose to the tests a 2D view can get wrong (heights seen
    from above, the face seen from the side), in the same torso ratios as the 2D tests.

    Attributes:
        elbow_high: elbow at least ``elbow_above_hip`` torso lengths above the pelvis, along
            the torso's axis.
        wrist_high: wrist at most ``wrist_below_shoulder`` torso lengths below its shoulder.
        face_clear: hand (wrist to ``hand_reach`` forearm lengths beyond) at least
            ``face_distance_3d`` torso lengths from the neck/nose and head top.
        face_near: hand closer than ``face_near_3d`` torso lengths to them.
        forearm_low: forearm (elbow to wrist) less than ``forearm_rise_3d`` degrees above
            the plane square to the torso's axis: level, or pointing down (False for a
            zero-length forearm: 2D's reading stands).
    """

    elbow_high: bool
    wrist_high: bool
    face_clear: bool
    face_near: bool
    forearm_low: bool


def forearm_rise(keypoints_3d: np.ndarray) -> tuple[float, float]:
    """Each forearm's (right, left) rise in degrees above the plane square to the torso's axis
    (thorax - pelvis is up) of a (17, 3) H36M-17 pose (metres, any orientation): 90 points along
    the torso upwards, 0 level, negative down; NaN for a zero-length forearm or torso."""
    up = keypoints_3d[H36M_THORAX] - keypoints_3d[H36M_ROOT]
    right, left = (90.0 - _angle(keypoints_3d[wrist] - keypoints_3d[elbow], up) for _, elbow, wrist in H36M_ARMS)
    return right, left


def arm_depth(keypoints_3d: np.ndarray | None, config: ClassifierConfig) -> tuple[ArmDepth | None, ArmDepth | None]:
    """:class:`ArmDepth` of each arm (right, left) of a (17, 3) H36M-17 pose (metres, any
    orientation; the torso's axis thorax - pelvis is up); (None, None) without a usable pose."""
    torso = _torso_3d(keypoints_3d)
    if torso is None:
        return None, None
    up = (keypoints_3d[H36M_THORAX] - keypoints_3d[H36M_ROOT]) / torso
    head = keypoints_3d[list(H36M_HEAD)]
    rises = forearm_rise(keypoints_3d)
    out = []
    for (shoulder, elbow, wrist), rise in zip(H36M_ARMS, rises):
        s, e, w = keypoints_3d[shoulder], keypoints_3d[elbow], keypoints_3d[wrist]
        face = hand_distance(head, e, w, config.hand_reach)
        out.append(ArmDepth(
            elbow_high=bool((e - keypoints_3d[H36M_ROOT]) @ up >= config.elbow_above_hip * torso),
            wrist_high=bool((s - w) @ up <= config.wrist_below_shoulder * torso),
            face_clear=face >= config.face_distance_3d * torso, face_near=face < config.face_near_3d * torso,
            forearm_low=bool(rise < config.forearm_rise_3d)))  # NaN < x: False
    return out[0], out[1]


def arm_raised(shoulder: np.ndarray, elbow: np.ndarray, wrist: np.ndarray, hip_y: float, face: np.ndarray,
               torso: float, config: ClassifierConfig, depth: ArmDepth | None = None) -> bool:
    """One arm's reading (module text): (2,) pixel points, ``hip_y`` the hip centre's y, ``face``
    (K, 2) the confident face keypoints (K may be 0), ``torso`` in pixels. ``depth``: the 3D
    pose's answers (:func:`arm_depth`): an elbow or wrist 2D puts too low, or a hand 2D puts at
    the face, is asked again in 3D (a hand drawn on the face only with its forearm near vertical,
    ``face_clear_forearm``); a hand 2D draws below the eyes but away from the face is at
    the face when 3D puts it near (``face_near_3d``), and a forearm 3D puts level is not raised
    (``forearm_rise_3d``). The forearm itself must point up in the image; without face
    keypoints the face test is 2D's. None: 2D alone."""
    if not hafizas_arm_raised(elbow, wrist):
        return False
    if depth is not None and depth.forearm_low:
        return False  # drawn up, level in depth: a hand held forward, seen from above or behind
    if np.linalg.norm(wrist - elbow) < config.min_forearm * torso:
        return False
    if (hip_y - elbow[1]) < config.elbow_above_hip * torso and not (depth and depth.elbow_high):
        return False  # elbow at the waist or lower (from above, an elbow held forward is drawn low)
    if wrist[1] - shoulder[1] > config.wrist_below_shoulder * torso and not (depth and depth.wrist_high):
        return False  # hands held in front of the chest or belly
    if len(face) and wrist[1] >= face[:, 1].min():  # a hand above the eyes is never at the face
        at_face = hand_distance(face, elbow, wrist, config.hand_reach) < config.face_distance * torso
        if depth is not None:  # drawn on the face, the hand may be in front; drawn apart, at the ear
            upright = _angle(wrist - elbow, IMAGE_UP) <= config.face_clear_forearm
            at_face = depth.face_near or (at_face and not (depth.face_clear and upright))
        return not at_face
    return True


def arm_readings(keypoints: np.ndarray, scores: np.ndarray, config: ClassifierConfig,
                 keypoints_3d: np.ndarray | None = None) -> tuple[bool | None, bool | None]:
    """Each arm's reading (right, left) from one person's (17, 2) keypoints and (17,) scores:
    raised or not (:func:`arm_raised`), None where its shoulder, elbow or wrist is not confident
    or no torso can be measured (the arm cannot be judged). ``keypoints_3d``: (17, 3) H36M-17
    metres or None, used as ``gesture_source`` says."""
    ok = scores >= config.keypoint_threshold
    torso = torso_length(keypoints, ok)
    if torso is None:
        return None, None
    arm_ok = scores >= config.arm_keypoint_threshold
    ok[[L_ELBOW, R_ELBOW, L_WRIST, R_WRIST]] = arm_ok[[L_ELBOW, R_ELBOW, L_WRIST, R_WRIST]]
    hip_y = float(keypoints[[i for i in (L_HIP, R_HIP) if ok[i]], 1].mean())
    face = keypoints[[i for i in FACE if ok[i]]]
    depth = arm_depth(keypoints_3d, config) if config.gesture_source == "2d+3d" else (None, None)
    right, left = (bool(arm_raised(keypoints[s], keypoints[e], keypoints[w], hip_y, face, torso, config, d))
                   if ok[s] and ok[e] and ok[w] else None for (s, e, w), d in zip(ARMS, depth))
    return right, left


def default_gesture(keypoints: np.ndarray, scores: np.ndarray, config: ClassifierConfig,
                    remembered: tuple[bool | None, bool | None] = (None, None),
                    keypoints_3d: np.ndarray | None = None,
                    now: tuple[bool | None, bool | None] | None = None) -> str:
    """Gesture from one person's (17, 2) keypoints and (17,) scores: arms whose shoulder, elbow
    and wrist are all confident are judged (:func:`arm_readings`); an arm that cannot be judged
    now takes its ``remembered`` reading (right, left: its last judged one, kept by
    :class:`PoseClassifier` for ``arm_memory`` seconds; None: none). One raised is hello, two
    stop; ``none`` when none is raised or none can be judged. Two raised arms judged now with the
    hands together below the eyes are ``none`` (hands clasped, at the chin). ``keypoints_3d``
    ((17, 3) H36M-17 metres or None) settles the arms' heights, "at the face" and "together"
    as ``gesture_source`` says. ``now``: this frame's :func:`arm_readings` of the same inputs
    when the caller has them already (None: computed here)."""
    ok = scores >= config.keypoint_threshold
    torso = torso_length(keypoints, ok)
    if torso is None:
        return "none"
    now = arm_readings(keypoints, scores, config, keypoints_3d) if now is None else now
    readings = [r if r is not None else m for r, m in zip(now, remembered)]
    raised = sum(bool(r) for r in readings)
    if raised == 2 and None not in now:
        face = keypoints[[i for i in FACE if ok[i]]]
        spread = float(np.linalg.norm(keypoints[L_WRIST] - keypoints[R_WRIST]))
        shoulders = float(np.linalg.norm(keypoints[L_SHOULDER] - keypoints[R_SHOULDER]))
        above_eyes = len(face) and max(keypoints[L_WRIST, 1], keypoints[R_WRIST, 1]) < face[:, 1].min()
        together = spread < config.hands_apart * torso and spread < config.hands_apart_shoulders * shoulders
        torso_3d = _torso_3d(keypoints_3d) if config.gesture_source == "2d+3d" else None
        if together and torso_3d is not None:  # drawn together: depth may hold them apart (side view)
            wrists = keypoints_3d[[wrist for _, _, wrist in H36M_ARMS]]
            together = float(np.linalg.norm(wrists[0] - wrists[1])) < config.hands_apart_3d * torso_3d
        if together and not above_eyes:
            return "none"  # hands together below the eyes (clasped, at the chin): no gesture
    return _gesture(raised)


def hands_gesture(keypoints: np.ndarray, scores: np.ndarray, config: ClassifierConfig,
                  hands: np.ndarray | None = None, hand_ok: np.ndarray | None = None,
                  waving: tuple[bool, bool] = (False, False),
                  remembered: tuple[bool | None, bool | None] = (None, None),
                  keypoints_3d: np.ndarray | None = None,
                  now: tuple[bool | None, bool | None] | None = None) -> str:
    """Gesture from the hands first (the ``hands`` rules; module text), the arms where a hand is
    not seen well.

    Per arm (right, left): a hand seen well (``hand_ok``) is *up* when it is an open palm
    towards the camera no lower than ``stop_below_shoulder`` torso lengths under its shoulder
    and still (not waving), and *waving* when it waves open; a fist or a back of the hand is
    neither, whatever the arm does. A hand not seen well is *up* when its arm is raised
    (:func:`arm_raised`) and *waving* when its wrist waves. Where no hand is seen well, the arm
    rules' reading (:func:`default_gesture`) stands, and a waving wrist makes ``none`` hello.
    Otherwise two arms up is stop; else any waving is hello; else one arm up is stop when its
    hand is seen (a still flat palm held up) and, when it is not, hello unless the arm rules
    read nothing (hands clasped, at the face).

    Args:
        keypoints: (17, 2) pixels, COCO-17; scores: (17,).
        hands: (2, 21, 2) pixels of the left and right hand (HAND21), or None.
        hand_ok: (2,) bool, the hands seen well (status ``ok``), or None.
        waving: whether the right and left wrist wave (:class:`WaveDetector`, per track).
        remembered: the arms' last judged readings (right, left), as for :func:`default_gesture`.
        keypoints_3d, now: as for :func:`default_gesture`.

    Returns:
        ``none``, ``hello`` or ``stop``.
    """
    now = arm_readings(keypoints, scores, config, keypoints_3d) if now is None else now
    arms = default_gesture(keypoints, scores, config, remembered, keypoints_3d, now)  # the arm rules' reading
    ok = scores >= config.keypoint_threshold
    torso = torso_length(keypoints, ok)
    if torso is None:
        return "none"
    seen_any = hands is not None and hand_ok is not None and bool(np.any(hand_ok))
    if not seen_any:  # no hand seen well: the arm rules, and a waving wrist is hello
        return "hello" if arms == "none" and any(waving) else arms
    eyes = [i for i in (0, 1, 2) if ok[i]]
    eyes_y = float(keypoints[eyes, 1].min()) if eyes else None
    up, waves, seen = [False, False], [False, False], [False, False]
    for a, (s, _, _) in enumerate(ARMS):  # a = 0 right, 1 left; hands[1] is the right hand
        side = 1 - a
        if hand_ok[side] and ok[s]:
            seen[a] = True
            f = hand_features(hands[side], side == 1, keypoints[s], eyes_y, torso)
            waves[a] = bool(waving[a]) and f.open
            up[a] = f.open and f.palm and f.above_shoulder >= -config.stop_below_shoulder and not waves[a]
        else:
            waves[a] = bool(waving[a])
            up[a] = bool(now[a] if now[a] is not None else remembered[a])
    if all(up):
        return "stop"
    if any(waves):
        return "hello"
    if any(up):  # one arm up: a still flat palm seen is stop; an arm whose hand is not seen, the arm rules
        return "stop" if seen[up.index(True)] else ("none" if arms == "none" else "hello")
    return "none"


def default_posture_2d(keypoints: np.ndarray, scores: np.ndarray, config: ClassifierConfig,
                       judged: list | None = None) -> str:
    """Posture from one person's 2D keypoints: a leg stands (thigh near vertical, knee straight)
    or sits (thigh level or foreshortened — knee hardly below the hip, or a short thigh above a
    longer shank —, or knee bent with the thigh not vertical); legs with
    an implausibly long thigh (``max_thigh``) are not judged; one standing leg is enough to stand
    (a person on one leg stands), unless its thigh is foreshortened (``stretched_leg_shank``)
    and the other knee bent: a seated person's leg stretched out towards the camera; otherwise
    sitting needs every judged leg to sit; ``unknown`` when no leg can be judged. Without a torso, the
    legs alone (:func:`legs_only_posture`)."""
    ok = scores >= config.keypoint_threshold
    torso = torso_length(keypoints, ok)
    readings = [] if judged is None else judged
    if torso is None:
        return legs_only_posture(keypoints, ok, config, readings)
    bent = stretched = False  # a knee bent under sit_knee_angle; a standing leg whose thigh is foreshortened
    for hip, knee, ankle in LEGS:
        if not (ok[hip] and ok[knee]) or np.linalg.norm(keypoints[knee] - keypoints[hip]) > config.max_thigh * torso:
            continue
        drop = (keypoints[knee, 1] - keypoints[hip, 1]) / torso
        angle = _angle(keypoints[hip] - keypoints[knee], keypoints[ankle] - keypoints[knee]) if ok[ankle] else None
        thigh = float(np.linalg.norm(keypoints[knee] - keypoints[hip]))
        shank = float(np.linalg.norm(keypoints[ankle] - keypoints[knee])) if ok[ankle] else 0.0
        if thigh < config.short_thigh * torso and shank >= config.short_thigh_shank * thigh:
            readings.append("sitting")  # thigh towards the camera
        elif drop >= config.stand_thigh and (angle is None or angle >= config.stand_knee_angle):
            readings.append("standing" if angle is not None else "unknown")
            stretched = stretched or shank >= config.stretched_leg_shank * thigh
            continue  # a standing leg is not the other, bent knee
        elif drop < config.sit_thigh or (angle is not None and angle < config.sit_knee_angle):
            readings.append("sitting")
        else:
            readings.append("unknown")
        bent = bent or (angle is not None and angle < config.sit_knee_angle)
    if "standing" in readings:  # ... unless it is a seated person's leg stretched out towards the camera
        return "sitting" if bent and stretched else "standing"
    if readings and all(r == "sitting" for r in readings):
        return "sitting"
    return "unknown"


def legs_only_posture(keypoints: np.ndarray, ok: np.ndarray, config: ClassifierConfig,
                      readings: list | None = None) -> str:
    """Posture of a person whose torso is not seen (shoulders cut by the frame's top, or hidden),
    from the legs alone, with no torso to measure by: a leg whose hip, knee and ankle are seen
    stands when its thigh is within ``legs_only_tilt`` degrees of vertical in the image, its knee
    straight (``stand_knee_angle``) and its thigh not foreshortened (shank under
    ``stretched_leg_shank`` × thigh: a thigh pointing at the camera is a seated one's); one
    standing leg stands the person. Nothing else can be told without a scale: ``unknown``.

    Args:
        keypoints: (17, 2) pixels, COCO-17. ok: (17,) bool, the keypoints to use.
        readings: a list the legs' readings (``standing`` / ``unknown``) are appended to.
    """
    readings = [] if readings is None else readings
    for hip, knee, ankle in LEGS:
        if not (ok[hip] and ok[knee] and ok[ankle]):
            continue
        thigh, shank = keypoints[knee] - keypoints[hip], keypoints[ankle] - keypoints[knee]
        tilt = _angle(thigh, IMAGE_DOWN)  # from the image's downward vertical; NaN if zero length
        angle = _angle(-thigh, shank)
        upright = tilt <= config.legs_only_tilt and angle >= config.stand_knee_angle
        readings.append("standing" if upright and np.linalg.norm(shank) < config.stretched_leg_shank * np.linalg.norm(thigh)
                        else "unknown")
    return "standing" if "standing" in readings else "unknown"


def default_posture_3d(keypoints_3d: np.ndarray, config: ClassifierConfig) -> str:
    """Posture from one person's (17, 3) H36M-17 keypoints (metres, any orientation): the angle of
    each thigh (hip→knee) from the torso's downward axis (thorax→root); near 0° stands, near 90°
    sits. One standing leg is enough; both must sit to sit; ``unknown`` if degenerate."""
    down = keypoints_3d[H36M_ROOT] - keypoints_3d[H36M_THORAX]
    readings = []
    for hip, knee, ankle in H36M_LEGS:
        angle = _angle(keypoints_3d[knee] - keypoints_3d[hip], down)
        knee_angle = _angle(keypoints_3d[hip] - keypoints_3d[knee], keypoints_3d[ankle] - keypoints_3d[knee])
        if np.isnan(angle):
            readings.append("unknown")
        elif angle <= config.stand_thigh_angle_3d and not knee_angle < config.stand_knee_angle:
            readings.append("standing")
        elif angle >= config.sit_thigh_angle_3d:
            readings.append("sitting")
        else:
            readings.append("unknown")
    if "standing" in readings:
        return "standing"
    return "sitting" if all(r == "sitting" for r in readings) else "unknown"


def classify_instance(keypoints: np.ndarray, scores: np.ndarray, keypoints_3d: np.ndarray | None,
                      config: ClassifierConfig, hands: np.ndarray | None = None, hand_ok: np.ndarray | None = None,
                      waving: tuple[bool, bool] = (False, False),
                      remembered: tuple[bool | None, bool | None] = (None, None),
                      now: tuple[bool | None, bool | None] | None = None) -> tuple[str, str]:
    """One frame's reading for one person (no hysteresis): ``(posture, gesture)``.

    Args:
        keypoints: (17, 2) pixels, COCO-17. scores: (17,) in [0, 1].
        keypoints_3d: (17, 3) H36M-17 metres, or None; with ``posture_source`` ``3d`` it
            decides the posture when a leg is seen in 2D, with ``2d+3d`` where the 2D rules
            read standing or cannot tell (:attr:`ClassifierConfig.posture_source`), in both
            only where its knees explain the 2D ones (:func:`knee_reprojection`,
            ``knee_error_3d``; with ``2d+3d``, ``knee_error_3d_ambiguous`` for legs seen whole
            that 2D reads neither way).
        hands, hand_ok, waving: for the ``hands`` rules (:func:`hands_gesture`); unused by the others.
        remembered: the arms' last judged readings (right, left; :func:`default_gesture`).
        now: this frame's :func:`arm_readings`, when the caller has them (None: computed here).
    """
    if config.rules == "hafizas":
        return hafizas_classify(keypoints)
    ok = scores >= config.keypoint_threshold
    legs_seen = any(ok[hip] and ok[knee] for hip, knee, _ in LEGS)
    lifted = legs_seen and keypoints_3d is not None and bool(np.all(np.isfinite(keypoints_3d)))
    roughly = False  # the lift explains the 2D knees within knee_error_3d_ambiguous
    if lifted and config.posture_source != "2d":  # the lift must explain the legs 2D sees (knee_error_3d)
        error = knee_reprojection(keypoints, ok, keypoints_3d)
        roughly = error is not None and error <= config.knee_error_3d_ambiguous
        lifted = error is not None and error <= config.knee_error_3d
    if config.posture_source == "3d" and lifted:
        posture = default_posture_3d(keypoints_3d, config)
    else:
        judged: list[str] = []
        posture = default_posture_2d(keypoints, scores, config, judged)
        whole_leg = any(ok[hip] and ok[knee] and ok[ankle] for hip, knee, ankle in LEGS)
        ambiguous = posture == "unknown" and bool(judged) and whole_leg  # legs seen whole, read neither way
        stretched = posture == "sitting" and "standing" in judged  # a leg read standing, stretched out (stretched_leg_shank)
        if config.posture_source == "2d+3d" and (lifted and (posture == "standing" or stretched)
                                                 or roughly and ambiguous):
            deep = default_posture_3d(keypoints_3d, config)
            if deep == "sitting" or (posture != "standing" and deep == "standing"):
                posture = deep  # thighs towards the camera, seen from above: only depth tells
    if config.rules == "hands":
        return posture, hands_gesture(keypoints, scores, config, hands, hand_ok, waving, remembered, keypoints_3d, now)
    return posture, default_gesture(keypoints, scores, config, remembered, keypoints_3d, now)


class LabelHysteresis:
    """Holds a label until a different reading has held long enough: it changes to reading r at
    time t when the track's readings over [t − hold(r), t] start with r, are at least 2/3 r, and
    cover ``hold(r)`` seconds with each reading standing for the track's typical frame interval
    (by timestamps: alike at 10, 12, 29.97 and 60 fps; after a gap, the readings since it count).

    Args:
        hold: seconds a new label must hold (0: every reading is reported at once).
        initial: label reported before any holds.
        first_hold: the hold of a change from ``initial`` during the track's first ``hold``
            seconds (its first label: the initial one is no reading to protect), default ``hold``.
        release: {label: seconds} holds that differ from ``hold`` for some labels (e.g. a
            gesture ends faster than it starts: ``{"none": 0.1}``).
    """

    def __init__(self, hold: float, initial: str, first_hold: float | None = None, release: dict | None = None):
        self.hold, self.label = float(hold), initial
        self.first_hold = self.hold if first_hold is None else float(first_hold)
        self.release = {k: float(v) for k, v in (release or {}).items()}
        self.longest = max([self.hold, self.first_hold, *self.release.values()])
        self.changed = False
        self.start: float | None = None
        self.history: deque[tuple[float, str]] = deque()
        self.intervals: deque[float] = deque(maxlen=9)

    def __call__(self, reading: str, pts: float) -> str:
        """Add one frame's reading at ``pts`` seconds; return the label to report."""
        pts = float(pts)
        if self.start is None:
            self.start = pts
        if self.history:
            self.intervals.append(pts - self.history[-1][0])
        self.history.append((pts, reading))
        while self.history[0][0] < pts - self.longest - 1e-6:
            self.history.popleft()
        if reading == self.label:
            return self.label
        young = not self.changed and pts - self.start < self.hold  # the track's first moments
        hold = self.first_hold if young else self.release.get(reading, self.hold)
        if hold <= 0:
            self.label, self.changed = reading, True
            return reading
        if self.intervals:
            # each reading stands for its frame interval (the typical one: a gap in the track
            # holds nothing), so that any frame rate — 29.97, 12 fps — reaches the hold
            period = min(float(np.median(self.intervals)), hold)
            window = [(t, r) for t, r in self.history if t >= pts - hold - 1e-6]
            first_pts, first = window[0]
            votes = sum(r == reading for _, r in window)
            if first == reading and pts - first_pts + period >= hold - 1e-6 and 3 * votes >= 2 * len(window):
                self.label, self.changed = reading, True
        return self.label


@dataclass(frozen=True)
class LabelEvent:
    """A reported label changed.

    Attributes:
        track_id: the person. kind: ``posture`` or ``gesture``. label: the new label.
        previous: the label before. frame_id: 1-based frame. pts: seconds.
    """

    track_id: int
    kind: str
    label: str
    previous: str
    frame_id: int
    pts: float

    def to_json(self) -> dict:
        """The event as written in the JSON-lines ``events`` list (pts rounded to µs)."""
        return {"track_id": self.track_id, "kind": self.kind, "label": self.label, "previous": self.previous,
                "frame_id": self.frame_id, "pts": round(self.pts, 6)}


class PoseClassifier:
    """Labels every tracked person of a stream, frame by frame, with hysteresis per track.

    With ``rules: hafizas`` readings are reported as they are (the reference has no smoothing).
    Untracked input (``track_ids`` None, e.g. unrelated images) is classified frame by frame.

    Args:
        config: :class:`ClassifierConfig`.
    """

    def __init__(self, config: ClassifierConfig = ClassifierConfig()):
        self.config = config
        self._state: dict[int, tuple[LabelHysteresis, LabelHysteresis]] = {}
        self._waves: dict[int, tuple[WaveDetector, WaveDetector]] = {}  # ``hands`` rules: right, left wrist
        self._arms: dict[int, list[tuple[float, bool] | None]] = {}  # per track: (pts, raised) last judged, right/left

    def __call__(self, keypoints: np.ndarray, keypoint_scores: np.ndarray, track_ids: np.ndarray | None,
                 keypoints_3d: np.ndarray | None, frame_id: int, pts: float,
                 frame_size: tuple[int, int] | None = None, hand_keypoints: np.ndarray | None = None,
                 hand_status: np.ndarray | None = None) -> tuple[list[str], list[str], list[LabelEvent]]:
        """Classify one frame's people.

        Args:
            keypoints: (N, 17, 2) pixels. keypoint_scores: (N, 17). track_ids: (N,) or None.
            keypoints_3d: (N, 17, 3) metres or None. frame_id, pts: of the frame (for events).
            frame_size: (width, height) pixels; the default rules treat keypoints outside the
                frame as unseen, whatever their score (a model guessing the body beyond the
                picture).
            hand_keypoints: (N, 2, 21, 2) pixels of each person's left and right hand, and
            hand_status: (N, 2) their status (:attr:`~posestream.stream.results.FrameResult.hand_status`),
                for the ``hands`` rules (None: no hand seen; the arm rules decide, waving still
                read from the wrists of tracked people).

        Returns:
            ``(postures, gestures, events)``: N labels each, and the label changes of this frame.
        """
        postures, gestures, events = [], [], []
        smooth = self.config.rules != "hafizas" and track_ids is not None
        inside = None
        if frame_size is not None and self.config.rules != "hafizas" and len(keypoints):
            inside = ((keypoints >= 0) & (keypoints < np.asarray(frame_size, np.float32))).all(axis=-1)
            keypoint_scores = np.where(inside, keypoint_scores, 0.0)
        for i in range(len(keypoints)):
            extra = {}
            if self.config.rules == "hands":
                waving = self._waving(keypoints[i], keypoint_scores[i], None if track_ids is None else int(track_ids[i]),
                                      pts, None if hand_keypoints is None else hand_keypoints[i],
                                      None if hand_status is None else hand_status[i] == "ok")
                extra = {"hands": None if hand_keypoints is None else hand_keypoints[i],
                         "hand_ok": None if hand_status is None else hand_status[i] == "ok", "waving": waving}
            if smooth and self.config.arm_memory > 0:  # this frame's arm readings, computed once
                extra["now"] = arm_readings(keypoints[i], keypoint_scores[i], self.config,
                                            None if keypoints_3d is None else keypoints_3d[i])
                extra["remembered"] = self._remember_arms(int(track_ids[i]), extra["now"], pts,
                                                          None if inside is None else inside[i])
            posture, gesture = classify_instance(keypoints[i], keypoint_scores[i],
                                                 None if keypoints_3d is None else keypoints_3d[i], self.config, **extra)
            if smooth:
                tid = int(track_ids[i])
                if tid not in self._state:
                    c = self.config
                    self._state[tid] = (LabelHysteresis(c.posture_hold, "unknown", c.first_hold,
                                                        {"unknown": c.unknown_hold}),
                                        LabelHysteresis(c.gesture_hold, "none", c.first_hold,
                                                        {"none": c.gesture_release}))
                hold_posture, hold_gesture = self._state[tid]
                before = (hold_posture.label, hold_gesture.label)
                posture, gesture = hold_posture(posture, pts), hold_gesture(gesture, pts)
                for kind, old, new in (("posture", before[0], posture), ("gesture", before[1], gesture)):
                    if new != old:
                        events.append(LabelEvent(tid, kind, new, old, frame_id, pts))
            postures.append(posture)
            gestures.append(gesture)
        return postures, gestures, events

    def _remember_arms(self, track_id: int, now: tuple[bool | None, bool | None], pts: float,
                       inside: np.ndarray | None = None) -> tuple[bool | None, bool | None]:
        """Each arm's last judged reading (right, left) no older than ``arm_memory`` seconds,
        for arms that cannot be judged in this frame (None elsewhere, and where none is kept);
        this frame's judged readings (``now``, :func:`arm_readings`) are remembered. The memory
        keeps a gesture but never starts one: while the track reports ``none`` nothing is
        returned. An arm whose elbow or wrist is outside the
        frame (``inside``: (17,) bool, None: all inside) has left the picture: its memory is
        dropped rather than kept (a lowered arm out of view ends the gesture as usual)."""
        memory = self._arms.setdefault(track_id, [None, None])
        held = self._state.get(track_id)
        reporting = held is not None and held[1].label != "none"
        out = []
        for a, reading in enumerate(now):
            _, elbow, wrist = ARMS[a]
            if reading is not None:
                memory[a] = (pts, reading)
                out.append(None)
            elif inside is not None and not (inside[elbow] and inside[wrist]):
                memory[a] = None
                out.append(None)
            else:
                kept = memory[a]
                fresh = kept is not None and 0 <= pts - kept[0] <= self.config.arm_memory + 1e-6
                out.append(kept[1] if fresh and reporting else None)
        return out[0], out[1]

    def _waving(self, keypoints: np.ndarray, scores: np.ndarray, track_id: int | None, pts: float,
                hands: np.ndarray | None, hand_ok: np.ndarray | None) -> tuple[bool, bool]:
        """Whether each wrist (right, left) of a tracked person waves: its detector is fed while
        the wrist is above its elbow (both confident) and reset otherwise; hand size from the
        hand when seen well, else ``hand_torso`` torso lengths. Untracked people never wave."""
        if track_id is None:
            return False, False
        c = self.config
        if track_id not in self._waves:
            self._waves[track_id] = tuple(WaveDetector(c.wave_window, c.wave_min_hz, c.wave_max_hz, c.wave_amplitude)
                                          for _ in range(2))
        ok = scores >= c.keypoint_threshold
        torso = torso_length(keypoints, ok)
        out = []
        for a, (_, e, w) in enumerate(ARMS):
            detector = self._waves[track_id][a]
            if torso is None or not (scores[e] >= c.arm_keypoint_threshold and scores[w] >= c.arm_keypoint_threshold) \
                    or keypoints[w, 1] >= keypoints[e, 1]:
                detector.reset()
                out.append(False)
                continue
            side = 1 - a
            size = c.hand_torso * torso
            if hands is not None and hand_ok is not None and hand_ok[side]:
                size = hand_size(hands[side])
            out.append(detector(pts, float(keypoints[w, 0]), float(keypoints[e, 0]), max(size, 1.0)))
        return out[0], out[1]

    def forget(self, live_track_ids) -> None:
        """Drop the state of tracks not in ``live_track_ids`` (tracks that ended)."""
        live = {int(t) for t in live_track_ids}
        for tid in [t for t in self._state if t not in live]:
            del self._state[tid]
        for tid in [t for t in self._waves if t not in live]:
            del self._waves[tid]
        for tid in [t for t in self._arms if t not in live]:
            del self._arms[tid]
