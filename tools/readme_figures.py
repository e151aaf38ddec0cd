"""Make the README's pictures of the offline outputs, from a scene this script draws itself.

    python tools/readme_figures.py [--out docs/img] [--fyp-model DIR]

No shared footage goes into the repository (its licences forbid it), so the "input" is a
synthetic clip: a waving mannequin drawn with OpenCV from hand-written COCO-17 keypoints on a
gradient background, 1280×720, 25 fps, 50 frames. Its keypoints become a ``posestream run``
JSON-lines file, and the real commands run on it: ``posestream skeleton`` (512² skeleton video),
``superimpose`` (the skeleton over the input), ``fyp generate`` on the tiny random model (built
here unless --fyp-model is given: its "generated" clip is noise-like, what random weights give)
and ``compare`` (input | skeleton | generated). One frame of each becomes a PNG in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS, FRAMES = 1280, 720, 25, 50


def mannequin_keypoints(i: int) -> np.ndarray:
    """(17, 2) float32 COCO-17 pixels of a person at the frame centre waving the right hand."""
    cx, top = 640.0, 160.0
    # facing the camera: the person's left side (odd indices) on the image's right
    pts = np.array([[0, 0], [12, -12], [-12, -12], [28, -4], [-28, -4],  # nose, eyes, ears
                    [70, 90], [-70, 90], [95, 210], [-95, 210], [100, 320], [-100, 320],  # arms
                    [45, 300], [-45, 300], [50, 440], [-50, 440], [55, 560], [-55, 560]], np.float32)
    pts += (cx, top)
    angle = 0.6 * np.sin(2 * np.pi * i / 25)  # the right arm (image left) raised and waving
    elbow = pts[6] + (-90, -60)
    pts[8] = elbow
    pts[10] = elbow + 120 * np.array([np.sin(angle), -np.cos(angle)], np.float32)
    return pts


def draw_mannequin(i: int) -> np.ndarray:
    """(720, 1280, 3) uint8 BGR frame: gradient backdrop, floor, a mannequin of filled limbs."""
    y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
    frame = ((1 - y) * np.array([200, 160, 120]) + y * np.array([90, 120, 150])).astype(np.uint8)
    frame = np.ascontiguousarray(np.broadcast_to(frame, (HEIGHT, WIDTH, 3)))
    cv2.rectangle(frame, (0, 640), (WIDTH, HEIGHT), (60, 90, 110), -1)
    k = mannequin_keypoints(i).astype(int)
    cloth, skin, trousers = (60, 60, 200), (150, 180, 230), (120, 70, 40)
    for a, b, colour, width in [(11, 13, trousers, 34), (13, 15, trousers, 30), (12, 14, trousers, 34),
                                (14, 16, trousers, 30), (5, 7, cloth, 30), (7, 9, skin, 24), (6, 8, cloth, 30),
                                (8, 10, skin, 24)]:
        cv2.line(frame, tuple(k[a]), tuple(k[b]), colour, width, cv2.LINE_AA)
    cv2.fillConvexPoly(frame, np.array([k[6], k[5], k[11], k[12]]), cloth, cv2.LINE_AA)
    cv2.circle(frame, tuple(k[0]), 42, skin, -1, cv2.LINE_AA)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img")
    parser.add_argument("--fyp-model", help="Follow-Your-Pose model folder (default: a fresh tiny model)")
    args = parser.parse_args()
    from posestream.offline.video_io import VideoWriter, read_frames
    from posestream.stream.cli import main as posestream

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    with VideoWriter(work / "mannequin.mp4", FPS) as writer:
        for i in range(FRAMES):
            writer.write(draw_mannequin(i))
    with open(work / "mannequin.jsonl", "w") as f:
        for i in range(FRAMES):
            k = mannequin_keypoints(i)
            x1, y1 = k.min(0) - 40
            x2, y2 = k.max(0) + 40
            f.write(json.dumps({"frame_id": i + 1, "pts": i / FPS, "width": WIDTH, "height": HEIGHT,
                                "instances": [{"bbox": [float(x1), float(y1), float(x2), float(y2)], "bbox_score": 1.0,
                                               "keypoints": k.round(2).tolist(), "keypoint_scores": [1.0] * 17,
                                               "track_id": 1}], "events": []}) + "\n")
    assert posestream(["skeleton", str(work / "mannequin.jsonl"), "--out", str(work), "--size", "512", "--quiet"]) == 0
    assert posestream(["superimpose", "--skeleton", str(work / "mannequin.jsonl"), "--on", str(work / "mannequin.mp4"),
                       "--out", str(work / "overlay.mp4")]) == 0
    model = args.fyp_model
    if model is None:
        from posestream.offline.fyp.tiny import make_tiny_fyp

        model = str(make_tiny_fyp(work / "tiny"))
    size = 512 if args.fyp_model else 64
    assert posestream(["fyp", "generate", "--model", model, "--skeleton", str(work / "mannequin_skeleton.mp4"),
                       "--prompt", "a person waving", "--out", str(work / "gen"), "--frames", "8", "--stride", "5",
                       "--steps", "10", "--size", str(size), "--quiet"]) == 0
    assert posestream(["compare", str(work / "mannequin.mp4"), str(work / "mannequin_skeleton.mp4"),
                       str(work / "gen" / "generated.gif"), "--captions", "input", "skeleton",
                       "generated (tiny random model)" if not args.fyp_model else "generated",
                       "--stride", "5", "--height", "192", "--out", str(work / "compare.gif")]) == 0
    picks = {"skeleton.png": (work / "mannequin_skeleton.mp4", 10), "superimpose.png": (work / "overlay.mp4", 10),
             "compare.png": (work / "compare.gif", 2)}
    for name, (path, index) in picks.items():
        frames, _, _ = read_frames(path)
        image = frames[min(index, len(frames) - 1)]
        if image.shape[1] > 640:
            image = cv2.resize(image, (640, round(image.shape[0] * 640 / image.shape[1])), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / name), image)
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
