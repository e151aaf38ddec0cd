"""How often the detector's second look (``tracking.verify_zoom``) finds the people of the shared
clips again, and the one known non-person (the sofa armrest at har-stand's left edge).

    python tools/second_look_eval.py [--zooms 1.5 2.5 3.5] [--every 5] [--clips vtest har-stand ...]

Tracks each clip with the second look off (every birth as without it), and every ``--every``
frames looks again at every reported person's box at each zoom
(:func:`posestream.stream.detect.second_look.second_look`). Prints per clip and zoom the people
(tracks), the looks, the fraction of looks that found a person, and the tracks refused at their
first look and at every look; then the same for the armrest. The tracker refuses a birth while the
look fails and looks again every ``verify_seconds``, so a person refused at every look is never
reported, one refused at some looks is reported late.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from posestream.stream.capture.files import open_source
from posestream.stream.config import RunConfig
from posestream.stream.detect.second_look import second_look
from posestream.stream.pipeline import PosePipeline, PoseStream
from person_cues import CLIPS  # the shared clips with people (this folder)


def is_object(clip: str, box: np.ndarray) -> bool:
    """The shared clips' one known non-person: har-stand's sofa armrest, boxed left of x 80
    (the man stands at x 105-250)."""
    return clip == "har-stand" and (box[0] + box[2]) / 2 < 80


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zooms", nargs="+", type=float, default=[1.5, 2.5, 3.5])
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    args = parser.parse_args()
    shared = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    config = RunConfig.from_yaml(None)
    pipeline = PosePipeline.from_config(config.pipeline)
    tracking = dataclasses.replace(config.tracking, verify_zoom=0.0)
    objects = defaultdict(list)  # zoom → found, one per look at the armrest
    totals = defaultdict(lambda: [0, 0, 0, 0])  # zoom → people, looks, found, people never found
    print(f"{'clip':12s} {'zoom':>4s} {'people':>6s} {'looks':>5s} {'found':>6s} {'refused first':>13s} "
          f"{'refused always':>14s}")
    for clip in args.clips:
        stream = PoseStream(pipeline, tracking, classify=None)
        looks = defaultdict(lambda: defaultdict(list))  # zoom → track → found per look
        sizes = defaultdict(list)  # track → box w, h, pixels, per look
        for i, frame in enumerate(open_source(shared / "media" / CLIPS[clip])):
            result = stream(frame)
            if i % args.every or not len(result):
                continue
            for zoom in args.zooms:
                found = second_look(pipeline.detector, frame.image, result.bboxes, zoom, tracking.bbox_padding)
                if zoom == args.zooms[0]:
                    for box, track in zip(result.bboxes, result.track_ids):
                        sizes[int(track)].append(box[2:] - box[:2])
                for box, track, person in zip(result.bboxes, result.track_ids, found):
                    (objects[zoom] if is_object(clip, box) else looks[zoom][int(track)]).append(bool(person))
        for zoom in args.zooms:
            tracks = looks[zoom]
            if not tracks:
                continue
            every = np.concatenate([v for v in tracks.values()])
            first = sum(not v[0] for v in tracks.values())
            always = sum(not any(v) for v in tracks.values())
            never = ", ".join(f"{track} ({len(v)} looks, {w:.0f}×{h:.0f} px)" for track, v in tracks.items() if not any(v)
                              for w, h in [np.median(sizes[track], axis=0)])
            total = totals[zoom]
            total[0], total[1], total[2], total[3] = (total[0] + len(tracks), total[1] + len(every),
                                                      total[2] + int(every.sum()), total[3] + always)
            print(f"{clip:12s} {zoom:4.1f} {len(tracks):6d} {len(every):5d} {every.mean():6.3f} {first:13d} {always:14d}"
                  + (f"  never found: track {never}" if never else ""), flush=True)
    for zoom in args.zooms:
        people, n, found, never = totals[zoom]
        print(f"all clips at zoom {zoom}: {people} people, found in {found} of {n} looks ({found / max(n, 1):.1%}), "
              f"{never} never found")
    for zoom in args.zooms:
        print(f"armrest (har-stand) at zoom {zoom}: found in {sum(objects[zoom])} of {len(objects[zoom])} looks")


if __name__ == "__main__":
    main()
