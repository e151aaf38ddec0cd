"""Coverage of a person cut by the left frame edge: shared clips cropped with a window that
slides in (the person enters) or stays (the person stays half outside).

    python tools/edge_coverage.py

Prints per case the fraction of frames with someone reported, of the first 30 frames, the number
of track ids, and one character per frame (count of people, '.' none). Reproduces the
"edge people" report: har-wave entering from 27 % visible is missed for its first 10 frames.
"""
import os
from pathlib import Path

import numpy as np

from posestream.stream.capture.files import Frame, open_source
from posestream.stream.config import RunConfig
from posestream.stream.pipeline import PosePipeline, PoseStream

SHARED = Path(os.environ.get("POSESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
config = RunConfig.from_yaml(None)
pipeline = PosePipeline.from_config(config.pipeline)


def entering(frames, start, stop, width, steps):
    out = []
    for i, f in enumerate(frames):
        x0 = int(round(start + (stop - start) * min(i / steps, 1.0)))
        out.append(Frame(f.frame_id, f.pts, np.ascontiguousarray(f.image[:, x0:x0 + width])))
    return out
for clip, cases in [("har-wave/wave.mp4", [(230, 100, 190, 30), (215, 215, 190, 1), (240, 240, 180, 1)]),
                    ("falldet-walk/walk.mp4", [(60, 60, 260, 1), (80, 80, 240, 1)]),
                    ("har-stand/stand.mp4", [(0, 0, 420, 1), (200, 200, 220, 1)])]:
    src = [f for f in open_source(SHARED / "media" / clip)]
    for c in cases:
        frames = entering(src, *c)
        stream = PoseStream(pipeline, config.tracking, classify=None)
        res = [stream(f) for f in frames]
        rep = np.array([len(r) for r in res])
        print(clip, c, "coverage", (rep > 0).mean().round(3), "first30", (rep[:30] > 0).mean().round(3), "ids", len({int(t) for r in res for t in r.track_ids}),
              "".join(str(min(x, 9)) if x else "." for x in rep[:100]), flush=True)
