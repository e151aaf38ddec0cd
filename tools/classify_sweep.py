"""Posture and gesture rules over the synthetic viewpoint sweep (posestream.offline.classify_sweep).

    python tools/classify_sweep.py [--rules default|hafizas] [--count 20]

Prints, for each pose, the fraction of bodies read right at each yaw (columns) and pitch (rows),
posture for standing/sitting, gesture for the arm poses, and the share of views where it is ≥ 0.9.
"""

from __future__ import annotations

import argparse

import numpy as np

from posestream.offline.classify_sweep import PITCHES, POSES, YAWS, sweep
from posestream.stream.classify.rules import ClassifierConfig, classify_instance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default="default", choices=("default", "hafizas"))
    parser.add_argument("--count", type=int, default=20, help="bodies per view and focal length")
    args = parser.parse_args()
    config = ClassifierConfig(rules=args.rules)
    ones = np.ones(17, np.float32) * 0.9
    table = sweep(lambda k: classify_instance(k, ones, None, config), count=args.count)
    passed = total = 0
    for pose, (posture, gesture) in POSES.items():
        column = 0 if pose in ("standing", "sitting") else 1
        print(f"\n{pose} ({posture if column == 0 else gesture}), {args.rules} rules: yaw → ")
        print("pitch " + "".join(f"{y:>6d}" for y in YAWS))
        for pitch in PITCHES:
            cells = [table[pose, yaw, pitch][column] for yaw in YAWS]
            passed += sum(c >= 0.9 for c in cells)
            total += len(cells)
            print(f"{pitch:5d} " + "".join(f"{c:6.2f}" for c in cells))
    print(f"\nviews read right in ≥ 90% of bodies: {passed}/{total}")


if __name__ == "__main__":
    main()
