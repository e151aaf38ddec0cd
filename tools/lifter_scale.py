#!/usr/bin/env python3
"""How the 3D lifter's error depends on the person's size in the frame, and what the lift
stage's enlargement of small people (``LiftStage(min_extent=…)``) does about it.

    python tools/lifter_scale.py [--lifter PATH] [--min-extent 0.15 0.2 0.3] [--cameras 4]

Data: the held-out mocap trials (:data:`posestream.offline.lifter_data.HOLDOUT`, never trained
on) through ``--cameras`` seeded cameras each (the views ``tools/train_lifter.py`` scores), with
its noisy 2D (noise in fractions of the person's height, so the same at every size). Each view's
2D is then scaled about the image centre, exactly what a longer or shorter lens does to a
pinhole camera's picture, so that the person's extent (the larger side of the keypoints' box,
median over the view) is each of :data:`EXTENTS` of the frame's width. The training views' people
span 0.13 / 0.24 / 0.41 of the width (5th / 50th / 95th percentiles); a person 150 px tall in a
1920 px screen recording is 0.08.

Prints MPJPE / N-MPJPE (mm, root-relative) per extent: the 2D as it is (VideoPose3D's
normalisation by the frame's width), and with people smaller than each ``--min-extent``
enlarged about their trunk to it (:func:`posestream.stream.lift.stage.lifter_zoom`).
Needs only NumPy (the runtime's lifter).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

#: Person extents (fraction of the frame's width) the views are scaled to.
EXTENTS = (0.04, 0.06, 0.08, 0.10, 0.13, 0.18, 0.24, 0.35, 0.5, 0.7, 0.9)


def main(argv=None) -> int:
    from posestream.offline.lifter_data import HOLDOUT, NoiseConfig, fixed_views
    from posestream.offline.lifter_train import evaluate_lifter
    from posestream.offline.mocap import load_mocap_cached
    from posestream.stream.lift.model import StreamingTemporalModel, load_lifter
    from posestream.stream.lift.stage import LiftConfig, enlarge, lifter_zoom

    shared = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lifter", default="default", help="lifter file (.safetensors) or default (the shipped one)")
    parser.add_argument("--min-extent", type=float, nargs="+", default=[0.15, 0.2, 0.3],
                        help="sizes small people are enlarged to (fractions of the frame's width)")
    parser.add_argument("--cameras", type=int, default=4, help="seeded cameras per held-out trial")
    parser.add_argument("--mocap", type=Path, default=shared / "mocap")
    parser.add_argument("--cache", type=Path, default=None, help="folder for the parsed mocap")
    args = parser.parse_args(argv)
    if any(not m >= 0 for m in args.min_extent):
        parser.error(f"--min-extent: fractions >= 0, got {args.min_extent}")

    clips = [c for c in load_mocap_cached(args.mocap, args.cache) if c.name in HOLDOUT]
    if not clips:
        parser.error(f"none of the held-out trials ({', '.join(HOLDOUT)}) under {args.mocap}")
    views = fixed_views(clips, args.cameras, seed=1, noise=NoiseConfig(sigma=0.01, outlier_rate=0.01))
    model = StreamingTemporalModel(load_lifter(LiftConfig(checkpoint=args.lifter).path))
    print(f"{len(views)} views of {len(clips)} held-out trials ({sum(len(x) for _, x, _ in views)} frames), "
          f"noisy 2D; MPJPE / N-MPJPE mm")
    header = f"{'extent':>7}  {'as is':>13}" + "".join(f"  {f'min_extent {m:g}':>15}" for m in args.min_extent)
    print(header)
    for extent in EXTENTS:
        scaled = []
        for name, x, y in views:
            # normalised coordinates are centred on the image centre and scale with the width:
            # scaling them is a zoom of the picture (extent = box side / width = ptp / 2)
            now = np.median(np.ptp(x, axis=1).max(axis=-1)) / 2
            scaled.append((name, (x * (extent / now)).astype(np.float32), y))
        row = [evaluate_lifter(model, scaled)]
        for m in args.min_extent:
            # each view's median extent: what the stage's smoothed extent of a track settles on
            zoomed = [(name, enlarge(x, np.full(len(x), lifter_zoom(np.median(np.ptp(x, axis=1).max(axis=-1)) / 2, m))),
                       y) for name, x, y in scaled]
            row.append(evaluate_lifter(model, zoomed))
        print(f"{extent:7.2f}" + "".join(f"  {r['mpjpe']:6.1f} / {r['n_mpjpe']:5.1f}" + " " * 2 * (k > 0)
                                         for k, r in enumerate(row)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
