"""Coverage of a person cut by the left frame edge: shared clips cropped with a window that
slides in (the person enters) or stays (the person stays half outside).

    python tools/edge_coverage.py

Prints per case the fraction of frames with someone reported, of the first 30 frames, the number
of track ids, and one character per frame (count of people, '.' none). Reproduces the
"edge people" report: har-wave entering from 27 % visible was missed for its first 10 frames,
7 since the tracker compares boxes cut to the frame (README, "Tracking").
"""
import argparse
import os
from pathlib import Path

import numpy as np

from posestream.stream.capture.files import Frame, open_source
from posestream.stream.config import RunConfig
from posestream.stream.pipeline import PosePipeline, PoseStream

#: (clip, [(x start, x end, window width, frames to slide over), ...]) of the measured cases.
CASES = [("har-wave/wave.mp4", [(230, 100, 190, 30), (215, 215, 190, 1), (240, 240, 180, 1)]),
         ("falldet-walk/walk.mp4", [(60, 60, 260, 1), (80, 80, 240, 1)]),
         ("har-stand/stand.mp4", [(0, 0, 420, 1), (200, 200, 220, 1)])]


def entering(frames: list, start: int, stop: int, width: int, steps: int) -> list:
    """Frames cut to a ``width``-pixel window whose left edge slides from x ``start`` to ``stop``
    over ``steps`` frames (then stays): the part of the picture left of it is outside the frame."""
    out = []
    for i, f in enumerate(frames):
        x0 = int(round(start + (stop - start) * min(i / steps, 1.0)))
        out.append(Frame(f.frame_id, f.pts, np.ascontiguousarray(f.image[:, x0:x0 + width])))
    return out


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    shared = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    config = RunConfig.from_yaml(None)
    pipeline = PosePipeline.from_config(config.pipeline)
    for clip, cases in CASES:
        source = list(open_source(shared / "media" / clip))
        for case in cases:
            stream = PoseStream(pipeline, config.tracking, classify=None)
            results = [stream(f) for f in entering(source, *case)]
            people = np.array([len(r) for r in results])
            ids = len({int(t) for r in results for t in r.track_ids})
            print(clip, case, "coverage", (people > 0).mean().round(3), "first30", (people[:30] > 0).mean().round(3),
                  "ids", ids, "".join(str(min(x, 9)) if x else "." for x in people[:100]), flush=True)


if __name__ == "__main__":
    main()
