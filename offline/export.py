"""``posestream export-npz``: one person's track from a run's JSON lines → VideoPose3D npz files.

Writes ``data_2d_custom_<name>.npz`` (VideoPose3D's custom 2D dataset, DESIGN.md §3: COCO-17
pixels, ``positions_2d = {name: {'custom': [(T, 17, 2)]}}`` and its ``metadata``) and, when the
run lifted, ``<name>_3d.npz`` with ``positions_3d`` (T, 17, 3) float32 H36M-17 metres
(root-relative, camera axes). T is every frame of the video; frames where the person is missing
are linearly interpolated (held at the ends), as VideoPose3D's ``prepare_data_2d_custom`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.engines.files import write_npz_atomic

#: VideoPose3D's COCO symmetry lists (left, right), as its custom-dataset metadata writes them.
COCO_SYMMETRY = [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]


def custom_2d_metadata(sizes: dict[str, tuple[int, int]]) -> dict:
    """The ``metadata`` of a VideoPose3D custom 2D dataset (COCO layout) for videos of the given
    (width, height) pixel sizes, as its ``prepare_data_2d_custom.py`` writes it."""
    return {"layout_name": "coco", "num_joints": 17, "keypoints_symmetry": COCO_SYMMETRY,
            "video_metadata": {name: {"w": int(w), "h": int(h)} for name, (w, h) in sizes.items()}}


@dataclass
class PersonSequence:
    """One person over a whole video.

    Attributes:
        keypoints: (T, 17, 2) float32 pixels, interpolated where ``found`` is False.
        keypoints_3d: (T, 17, 3) float32 metres, interpolated alike, or None if the run did not lift.
        found: (T,) bool, the frames where the person was in the results.
        width, height: video size, pixels. track_id: the person's track, or None (best per frame).
    """

    keypoints: np.ndarray
    keypoints_3d: np.ndarray | None
    found: np.ndarray
    width: int
    height: int
    track_id: int | None


def _interpolate(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    frames = np.arange(len(values))
    flat = values.reshape(len(values), -1)
    out = np.empty_like(flat)
    for k in range(flat.shape[1]):
        out[:, k] = np.interp(frames, frames[found], flat[found, k])
    return out.reshape(values.shape)


def read_person(jsonl: str | Path, track_id: int | None = None) -> PersonSequence:
    """Collect one person from a ``posestream run`` JSON-lines file.

    Args:
        jsonl: the run's ``<name>.jsonl``.
        track_id: the person to take; None: in each frame the instance with the highest mean
            keypoint score (VideoPose3D's custom-video recipe takes the best box).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line is not a JSON record of a frame, or the person is in no frame.
    """
    records = []
    with open(jsonl) as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
                records.append((int(record["frame_id"]), int(record["width"]), int(record["height"]), record["instances"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{jsonl}:{number}: not a posestream JSON-lines frame record ({exc})") from exc
    if not records:
        raise ValueError(f"{jsonl}: no frames")
    frames = len(records)
    keypoints = np.zeros((frames, 17, 2), np.float32)
    keypoints_3d = np.zeros((frames, 17, 3), np.float32)
    found = np.zeros(frames, bool)
    lifted = True
    for t, (_, _, _, instances) in enumerate(records):
        if track_id is not None:
            candidates = [i for i in instances if i.get("track_id") == track_id]
        else:
            candidates = sorted(instances, key=lambda i: -float(np.mean(i["keypoint_scores"])))
        if not candidates:
            continue
        best = candidates[0]
        keypoints[t] = best["keypoints"]
        found[t] = True
        if best.get("keypoints_3d") is None:
            lifted = False
        else:
            keypoints_3d[t] = best["keypoints_3d"]
    if not found.any():
        raise ValueError(f"{jsonl}: {'track ' + str(track_id) if track_id is not None else 'nobody'} found in any frame")
    _, width, height, _ = records[0]
    return PersonSequence(_interpolate(keypoints, found), _interpolate(keypoints_3d, found) if lifted else None,
                          found, width, height, track_id)


def export_npz(jsonl: str | Path, out_dir: str | Path, name: str | None = None,
               track_id: int | None = None) -> list[Path]:
    """Write the npz files of the module docstring for one person of a run; returns their paths.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_person`.
    """
    jsonl = Path(jsonl)
    name = name or jsonl.stem
    person = read_person(jsonl, track_id)
    out_dir = Path(out_dir)
    written = [write_npz_atomic(out_dir / f"data_2d_custom_{name}.npz", positions_2d={name: {"custom": [person.keypoints]}},
                                metadata=custom_2d_metadata({name: (person.width, person.height)}))]
    if person.keypoints_3d is not None:
        written.append(write_npz_atomic(out_dir / f"{name}_3d.npz", positions_3d=person.keypoints_3d,
                                        found=person.found))
    return written
