"""Posture and gesture rules on real seated people seen through real cameras (CMU Panoptic Studio).

    python tools/eval_panoptic.py [--lifter [PATH]] [--scene DIR ...] [--draws 3] [--set KEY=VALUE ...]

The shared mmpose test data holds two Panoptic scenes (``160906_band1``, ``160906_band2``) of
three seated musicians each, reconstructed in 3D, and the calibration of the dome's 479 VGA and
31 HD cameras (offline/panoptic.py). Every person is projected into every camera that sees
their shoulders, hips, knees and ankles, with the synthetic sweep's 2D noise, and read by the
default rules (with the lifter's depth, as shipped: posture and gestures ``2d+3d``), the default
rules on 2D alone and the reference (hafizas) rules. Everyone is seated and nobody gestures, so
every *standing* or *unknown*, and every *hello* or *stop*, is wrong. ``--set`` applies to the
default rules only (the reference has no settings).

Prints, per rule variant, the share read *sitting* by the camera's pitch (rows, 10° bands; the
camera looking down at the chest) and the person's yaw to it (columns: 0–30° their front, …,
90–180° from behind), and, per scene, the shares read sitting / standing / unknown and gesture
*none*. ``--set KEY=VALUE`` overrides a numeric classifier setting (as classify_sweep.py).
band1's first musician has a left ankle and its third a right hip not reconstructed, so they
are left out; its second leans far forward over his instrument (his trunk 56–58° from
vertical). band2's three are the clean ones. Also printed: the cameras' heights and distances.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from posestream.offline.classify_sweep import numeric_overrides, rule_variants, still_lifter
from posestream.offline.panoptic import SHARED_SCENES, readings
from posestream.stream.classify.rules import classify_instance

YAW_BANDS = ((0, 30), (30, 60), (60, 90), (90, 181))


def main() -> None:
    shared = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", action="append", type=Path,
                        help="Panoptic scene folder (default: the shared mmpose test data's two)")
    parser.add_argument("--lifter", default="default", metavar="PATH",
                        help="the lifter for the default rules' depth (default: the shipped one)")
    parser.add_argument("--draws", type=int, default=3, help="noisy draws per view")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a numeric classifier setting (repeatable)")
    args = parser.parse_args()
    scenes = args.scene or [shared / "media/mmpose-testdata/panoptic_body3d" / s for s in SHARED_SCENES]
    try:
        overrides = numeric_overrides(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        variants = rule_variants(overrides)
    except (TypeError, ValueError) as exc:
        parser.error(f"--set: {exc}")
    missing = [str(s) for s in scenes if not s.is_dir()]
    if missing:
        parser.error(f"no Panoptic scene folder {', '.join(missing)} (set POSESTREAM_SHARED)")
    lift = still_lifter(args.lifter)
    table = {name: [] for name in variants}
    for scene in scenes:
        for name, config in variants.items():
            uses_depth = config.rules == "default" and config.posture_source != "2d"

            def classify(keypoints, scores, size, config=config, uses_depth=uses_depth):
                return classify_instance(keypoints, scores, lift(keypoints, size) if uses_depth else None, config)

            for row in readings(scene, classify, draws=args.draws):
                table[name].append({**row, "scene": scene.name})
    rows = table["default"]  # every variant reads the same views
    print(f"cameras {min(r['height'] for r in rows):.1f}-{max(r['height'] for r in rows):.1f} m above the floor, "
          f"{min(r['distance'] for r in rows):.1f}-{max(r['distance'] for r in rows):.1f} m from the chest")
    for name, rows in table.items():
        print(f"\n{name}: share read sitting by pitch (rows, degrees) and yaw (columns), readings in brackets")
        print("pitch " + "".join(f"{f'{lo}-{min(hi, 180)}':>14s}" for lo, hi in YAW_BANDS))
        cells = defaultdict(list)
        for r in rows:
            band = next(i for i, (lo, hi) in enumerate(YAW_BANDS) if lo <= abs(r["yaw"]) < hi)
            cells[int(np.floor(r["pitch"] / 10) * 10), band].append(r["posture"] == "sitting")
        for pitch in sorted({p for p, _ in cells}):
            line = "".join(f"{np.mean(cells[pitch, b]):8.2f} ({len(cells[pitch, b]):3d})" if cells[pitch, b]
                           else f"{'-':>14s}" for b in range(len(YAW_BANDS)))
            print(f"{pitch:5d} {line}")
        for scene in sorted({r["scene"] for r in rows}):
            mine = [r for r in rows if r["scene"] == scene]
            shares = [np.mean([r["posture"] == p for r in mine]) for p in ("sitting", "standing", "unknown")]
            none = np.mean([r["gesture"] == "none" for r in mine])
            print(f"{scene}: {len(mine)} readings, sitting {shares[0]:.3f} standing {shares[1]:.3f} "
                  f"unknown {shares[2]:.3f}; gesture none {none:.3f}")


if __name__ == "__main__":
    main()
