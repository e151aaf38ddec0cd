"""Posture and gesture rules over the synthetic viewpoint sweep (posestream.offline.classify_sweep).

    python tools/classify_sweep.py [--rules default|hafizas] [--count 20] [--lifter [PATH]] [--posture-source 2d+3d]
        [--gesture-source 2d+3d] [--distances] [--procedural] [--mirrored] [--lift-checks]
        [--seed 0] [--set KEY=VALUE ...]

Prints, for each pose, the fraction of bodies read right at each yaw (columns) and pitch (rows),
posture for standing/sitting, gesture for the arm poses, and the share of views where it is ≥ 0.9.
With ``--lifter`` each view is also lifted (the shipped lifter unless a file is given; the view
held still for the lifter's receptive field) and the posture and gesture read as
``--posture-source`` and ``--gesture-source`` say (default ``2d+3d`` both, as shipped; posture
``3d``: the 3D thigh angles alone; gesture ``2d``: the 2D arm rules alone). ``--distances``
(with ``--lifter``) also prints what the 3D face and hands-apart thresholds are set against:
percentiles of the lifted hand's distance to the head for each gesture pose's posed arms, and
of the wrists' spread for stop, in 3D torso lengths, over every view. ``--procedural`` sweeps
the bodies of the lifter's procedural motion instead of the sweep's own (``procedural_body``:
another geometry, e.g. a hand at the mouth with the elbow low and out; no hand at the ear).
``--mirrored`` puts the cameras on the person's right (yaw 0 to −90°): the one-armed poses'
arm (the right) is then on the near side, where yaw 0–90° sees it across the body.
``--seed`` draws other bodies (the published figures are seed 0's); ``--set KEY=VALUE``
overrides a numeric classifier setting (``configs/run.yaml``'s ``classify`` keys), e.g.
``--set face_clear_forearm=180`` to sweep the rules without that gate.
``--lift-checks`` (with ``--lifter``) also prints, per pose over the same bodies, what the
default rules' checks on the 3D pose measure: the knee error (torso lengths; the 3D pose reads
the posture up to ``knee_error_3d``) and, for hello and stop, the 3D rise of the posed arms 2D
reads raised (degrees; not raised under ``forearm_rise_3d``).
"""

from __future__ import annotations

import argparse

import numpy as np

from posestream.offline.classify_sweep import (FOCALS, MIRRORED_YAWS, PITCHES, POSES, PROCEDURAL_POSES, YAWS, Camera,
                                               body, numeric_overrides, procedural_body, still_lifter, sweep,
                                               sweep_views, view_seed)
from posestream.stream.classify.rules import (GESTURE_SOURCES, H36M_ARMS, H36M_HEAD, H36M_ROOT, H36M_THORAX,
                                              POSTURE_SOURCES, ClassifierConfig, arm_readings, classify_instance,
                                              forearm_rise, hand_distance, knee_reprojection)

#: The arms each gesture pose of the sweep poses (0 right, 1 left; offline/classify_sweep.body).
POSED_ARMS = {"hello": (0,), "stop": (0, 1), "drinking": (0,), "phoning": (0,)}


def every_view(pose: str, count: int, yaws, make_body, seed_of):
    """(17, 2) keypoints of ``count`` bodies in ``pose`` for each yaw, pitch and focal length
    (:func:`sweep_views`); ``seed_of(yaw, pitch, focal)`` is each view's seed."""
    for yaw in yaws:
        for pitch in PITCHES:
            for focal in FOCALS:
                yield from sweep_views(pose, Camera(yaw, pitch, focal), count, seed_of(yaw, pitch, focal),
                                       make_body=make_body)


def print_depth_distances(lift, count: int, config: ClassifierConfig, make_body=body, poses=tuple(POSES),
                          yaws=YAWS) -> None:
    """5th / 50th / 95th percentiles of the lifted posed hands' distance to the neck/nose and
    head top (the hand as the rules measure it: wrist to ``config.hand_reach`` forearm lengths
    beyond), and of the wrists' spread, in 3D torso lengths (thorax to pelvis), over every view."""
    print("\nlifted distances in 3D torso lengths, 5th / 50th / 95th percentile over every view:")
    for p_index, (pose, arms) in enumerate(POSED_ARMS.items()):
        if pose not in poses:
            continue
        face, spread = [], []
        for keypoints in every_view(pose, count, yaws, make_body, lambda y, p, f: view_seed(7000, p_index, y, p)):
            k3 = lift(keypoints)
            torso = np.linalg.norm(k3[H36M_THORAX] - k3[H36M_ROOT])
            wrists = [k3[H36M_ARMS[a][2]] for a in (0, 1)]
            face += [hand_distance(k3[list(H36M_HEAD)], k3[H36M_ARMS[a][1]], wrists[a], config.hand_reach) / torso
                     for a in arms]
            spread.append(np.linalg.norm(wrists[0] - wrists[1]) / torso)
        f, s = np.percentile(face, [5, 50, 95]), np.percentile(spread, [5, 50, 95])
        print(f"  {pose:9s} posed hand to head {f[0]:.2f} / {f[1]:.2f} / {f[2]:.2f}   wrists apart {s[0]:.2f} / {s[1]:.2f} / {s[2]:.2f}")


def print_lift_checks(lift, count: int, config: ClassifierConfig, make_body=body, poses=tuple(POSES),
                      yaws=YAWS, seed: int = 0) -> None:
    """Per pose, over the sweep's own bodies (``sweep``'s seeds, ``count`` a view and focal
    length): 50th / 99th percentile and maximum of the knee error (:func:`knee_reprojection`,
    torso lengths), and for hello and stop the 1st / 50th percentile of the 3D rise of the posed
    arms 2D reads raised (:func:`forearm_rise`, degrees)."""
    ok, ones = np.ones(17, bool), np.ones(17, np.float32)
    flat = ClassifierConfig(**{**config.__dict__, "gesture_source": "2d"})
    print("\nwhat the checks on the 3D pose measure, over every view:")
    for p_index, pose in enumerate(POSES):
        if pose not in poses:
            continue
        errors, rises = [], []
        for keypoints in every_view(pose, count, yaws, make_body,
                                    lambda y, p, f: view_seed(seed + int(f), p_index, y, p)):  # sweep()'s seeds
            k3 = lift(keypoints)
            errors.append(knee_reprojection(keypoints, ok, k3))
            raised = arm_readings(keypoints, ones, flat)
            rises += [forearm_rise(k3)[a] for a in POSED_ARMS.get(pose, ()) if raised[a]]
        e = np.percentile(errors, [50, 99])
        line = f"  {pose:9s} knee error 50th / 99th / max {e[0]:.2f} / {e[1]:.2f} / {max(errors):.2f}"
        if pose in ("hello", "stop") and rises:
            r = np.percentile(rises, [1, 50])
            line += f"   posed arms read raised: 3D rise 1st / 50th {r[0]:.0f} / {r[1]:.0f} deg"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default="default", choices=("default", "hafizas"))
    parser.add_argument("--count", type=int, default=20, help="bodies per view and focal length")
    parser.add_argument("--lifter", nargs="?", const="default", metavar="PATH",
                        help="posture from the 3D lifter (default: the shipped one)")
    parser.add_argument("--posture-source", choices=POSTURE_SOURCES, default="2d+3d",
                        help="with --lifter: how the 3D pose reads the posture (default 2d+3d)")
    parser.add_argument("--gesture-source", choices=GESTURE_SOURCES, default="2d+3d",
                        help="with --lifter: whether the 3D pose settles what 2D draws wrong (default 2d+3d)")
    parser.add_argument("--distances", action="store_true",
                        help="with --lifter: percentiles of the lifted hand-head and wrist-wrist distances per gesture pose")
    parser.add_argument("--seed", type=int, default=0, help="other bodies (published figures: 0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a numeric classifier setting (repeatable)")
    parser.add_argument("--lift-checks", action="store_true",
                        help="with --lifter: the knee error and forearm rise the checks on the 3D pose read, per pose")
    parser.add_argument("--procedural", action="store_true",
                        help="bodies of the lifter's procedural motion instead of the sweep's own")
    parser.add_argument("--mirrored", action="store_true",
                        help="cameras on the person's right (yaw 0 to -90): the one-armed poses' arm on the near side")
    args = parser.parse_args()
    if (args.distances or args.lift_checks) and not args.lifter:
        parser.error("--distances and --lift-checks need --lifter")
    try:
        overrides = numeric_overrides(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        config = ClassifierConfig(rules=args.rules, posture_source=args.posture_source if args.lifter else "2d",
                                  gesture_source=args.gesture_source if args.lifter else "2d", **overrides)
    except (TypeError, ValueError) as exc:  # an unknown key or a value out of range: one line
        parser.error(f"--set: {exc}")
    ones = np.ones(17, np.float32) * 0.9
    lift = still_lifter(args.lifter) if args.lifter else lambda k: None
    make_body, poses = (procedural_body, PROCEDURAL_POSES) if args.procedural else (body, tuple(POSES))
    yaws = MIRRORED_YAWS if args.mirrored else YAWS
    table = sweep(lambda k: classify_instance(k, ones, lift(k), config), count=args.count, seed=args.seed, yaws=yaws,
                  make_body=make_body, poses=poses)
    passed = total = 0
    for pose, (posture, gesture) in POSES.items():
        if pose not in poses:
            continue
        column = 0 if pose in ("standing", "sitting") else 1
        source = (f", posture {config.posture_source} and gesture {config.gesture_source} with the lifter"
                  if args.lifter else ", 2d")
        print(f"\n{pose} ({posture if column == 0 else gesture}), {args.rules} rules{source}: yaw → ")
        print("pitch " + "".join(f"{y:>6d}" for y in yaws))
        for pitch in PITCHES:
            cells = [table[pose, yaw, pitch][column] for yaw in yaws]
            passed += sum(c >= 0.9 for c in cells)
            total += len(cells)
            print(f"{pitch:5d} " + "".join(f"{c:6.2f}" for c in cells))
    print(f"\nviews read right in ≥ 90% of bodies: {passed}/{total}")
    if args.distances:
        print_depth_distances(lift, max(1, args.count // 4), config, make_body, poses, yaws)
    if args.lift_checks:
        print_lift_checks(lift, args.count, config, make_body, poses, yaws, args.seed)


if __name__ == "__main__":
    main()
