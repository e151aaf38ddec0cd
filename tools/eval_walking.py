"""Walking people must read standing: mocap walks through room cameras, read over time.

    python tools/eval_walking.py [--words walk] [--cameras 6] [--fps 30] [--lifter [PATH]]
        [--near-high | --high] [--set KEY=VALUE ...] [--seed 0]

Plays the shared CMU motion capture's clips whose description holds one of ``--words``
(default ``walk``: 18 walks, slow, brisk and on uneven ground; ``run`` for the jog) through
``--cameras`` seeded cameras each (offline/motion_sweep.py; the lifter's default camera range,
0.3-2.5 m above the floor and 2.5-8 m away, or ``--near-high``: webcams and room cameras
1.5-4 m away, 1.5-3.5 m up; or ``--high``: 3.5-6 m up, looking down up to about 40 deg), with
the sweep's 3 % torso jitter, at ``--fps``; lifts them with the real lift stage and reads them
with the real classifier, hysteresis included. Prints, per rule variant (default, default on
2D alone, the reference rules), the share of reported person-frames read sitting, by camera
pitch (10 deg bands), and of views where any frame is.
Nobody sits in these clips: every *sitting* is wrong. ``--set`` applies to the default rules.
The lifter was trained on most of these clips (all but ``HOLDOUT``'s 007_04 and 131_03); the
rules never were.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from posestream.offline.classify_sweep import numeric_overrides, rule_variants
from posestream.offline.lifter_data import NEAR_HIGH, CameraRange
from posestream.offline.mocap import load_mocap_cached
from posestream.offline.motion_sweep import clips_like, motion_views, read_motion
from posestream.stream.lift.model import load_lifter
from posestream.stream.lift.stage import LiftConfig, LiftStage

#: Cameras mounted high (CCTV over a door or a hall): 3.5-6 m up, 1.5-4 m away, looking down at
#: walkers up to about 40 deg.
HIGH = CameraRange(fov=(60.0, 90.0), distance=(1.5, 4.0), height=(3.5, 6.0), log_distance=True)


def main() -> None:
    shared = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mocap", type=Path, default=shared / "mocap")
    parser.add_argument("--words", default="walk", help="comma-separated words of the clips' descriptions")
    parser.add_argument("--cameras", type=int, default=6, help="cameras per clip")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--near-high", action="store_true", help="webcams and room cameras (NEAR_HIGH)")
    parser.add_argument("--high", action="store_true", help="cameras mounted high (HIGH: 3.5-6 m up, 1.5-4 m away)")
    parser.add_argument("--lifter", default="default", metavar="PATH")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a numeric classifier setting of the default rules (repeatable)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "posestream")
    args = parser.parse_args()
    try:
        overrides = numeric_overrides(args.set)
        variants = rule_variants(overrides)
    except (TypeError, ValueError) as exc:
        parser.error(f"--set: {exc}")
    if not args.mocap.is_dir():
        parser.error(f"no mocap folder {args.mocap} (set POSESTREAM_SHARED)")
    clips = clips_like(load_mocap_cached(args.mocap, args.cache), tuple(args.words.split(",")))
    if not clips:
        parser.error(f"no clip's description holds {args.words!r}")
    lifter = load_lifter(LiftConfig(checkpoint=args.lifter).path)
    cameras = HIGH if args.high else NEAR_HIGH if args.near_high else CameraRange()
    table = {name: defaultdict(lambda: [0, 0, 0]) for name in variants}  # pitch band → sitting, unknown, frames
    views_sitting = dict.fromkeys(variants, 0)
    views = [v for i, clip in enumerate(clips)
             for v in motion_views(clip, args.cameras, args.seed + i, args.fps, camera_range=cameras)]
    for view in views:
        for name, config in variants.items():
            stage = LiftStage(lifter) if config.rules == "default" and config.posture_source != "2d" else None
            postures = [p for p in read_motion(view, config, stage) if p is not None]
            band = int(np.floor(view.pitch / 10) * 10)
            cell = table[name][band]
            cell[0] += postures.count("sitting")
            cell[1] += postures.count("unknown")
            cell[2] += len(postures)
            views_sitting[name] += "sitting" in postures
    frames = sum(len(v.pts) for v in views)
    print(f"{len(clips)} clips ({', '.join(c.name for c in clips)}), {len(views)} views, {frames} frames at "
          f"{args.fps:g} fps; cameras {min(v.pitch for v in views):.0f} to {max(v.pitch for v in views):.0f} deg "
          "down (the camera's axis)")
    for name, bands in table.items():
        total = [sum(c[k] for c in bands.values()) for k in range(3)]
        print(f"\n{name}: sitting {total[0] / max(total[2], 1):.4f} ({total[0]} frames), unknown "
              f"{total[1] / max(total[2], 1):.4f} of {total[2]} person-frames; views with any sitting frame "
              f"{views_sitting[name]} of {len(views)}")
        for band in sorted(bands):
            s, u, n = bands[band]
            print(f"  pitch {band:4d}-{band + 10:<4d} sitting {s / max(n, 1):.4f}  unknown {u / max(n, 1):.4f}  ({n})")


if __name__ == "__main__":
    main()
