"""Posture and gesture rules over the synthetic viewpoint sweep (posestream.offline.classify_sweep).

    python tools/classify_sweep.py [--rules default|hafizas] [--count 20] [--lifter [PATH]] [--posture-source 2d+3d]
        [--gesture-source 2d+3d]

Prints, for each pose, the fraction of bodies read right at each yaw (columns) and pitch (rows),
posture for standing/sitting, gesture for the arm poses, and the share of views where it is ≥ 0.9.
With ``--lifter`` each view is also lifted (the shipped lifter unless a file is given; the view
held still for the lifter's receptive field) and the posture and gesture read as
``--posture-source`` and ``--gesture-source`` say (default ``2d+3d`` both, as shipped; posture
``3d``: the 3D thigh angles alone; gesture ``2d``: the 2D arm rules alone).
"""

from __future__ import annotations

import argparse

import numpy as np

from posestream.offline.classify_sweep import IMAGE_SIZE, PITCHES, POSES, YAWS, sweep
from posestream.stream.classify.rules import GESTURE_SOURCES, POSTURE_SOURCES, ClassifierConfig, classify_instance


def still_lifter(path: str):
    """``keypoints (17, 2) px → (17, 3) metres``: the lifter's output for a person held still
    (the view repeated for its whole receptive field)."""
    from posestream.stream.lift.model import StreamingTemporalModel, load_lifter, normalize_screen_coordinates
    from posestream.stream.lift.stage import LiftConfig

    lifter = load_lifter(LiftConfig(checkpoint=path).path)
    model = StreamingTemporalModel(lifter)

    def lift(keypoints: np.ndarray) -> np.ndarray:
        x = normalize_screen_coordinates(keypoints, *IMAGE_SIZE)
        state = model.start(x)
        for _ in range(lifter.architecture.receptive_field):
            out = model.step([state], x[None])
        return out[0]
    return lift


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
    args = parser.parse_args()
    config = ClassifierConfig(rules=args.rules, posture_source=args.posture_source if args.lifter else "2d",
                              gesture_source=args.gesture_source if args.lifter else "2d")
    ones = np.ones(17, np.float32) * 0.9
    lift = still_lifter(args.lifter) if args.lifter else lambda k: None
    table = sweep(lambda k: classify_instance(k, ones, lift(k), config), count=args.count)
    passed = total = 0
    for pose, (posture, gesture) in POSES.items():
        column = 0 if pose in ("standing", "sitting") else 1
        source = (f", posture {config.posture_source} and gesture {config.gesture_source} with the lifter"
                  if args.lifter else ", 2d")
        print(f"\n{pose} ({posture if column == 0 else gesture}), {args.rules} rules{source}: yaw → ")
        print("pitch " + "".join(f"{y:>6d}" for y in YAWS))
        for pitch in PITCHES:
            cells = [table[pose, yaw, pitch][column] for yaw in YAWS]
            passed += sum(c >= 0.9 for c in cells)
            total += len(cells)
            print(f"{pitch:5d} " + "".join(f"{c:6.2f}" for c in cells))
    print(f"\nviews read right in ≥ 90% of bodies: {passed}/{total}")


if __name__ == "__main__":
    main()
