"""Keypoint layouts as data: names, skeleton links, OKS sigmas and index maps.

Sources: COCO keypoint task (Lin et al. 2014, ``person_keypoints`` categories; sigmas from
``cocoeval.py``), MediaPipe BlazePose 33-landmark topology (Bazarevsky et al. 2020), and the
DESIGN.md §2 mapping from BlazePose-33 to COCO-17. "Left" is always the person's left.
"""

from __future__ import annotations

import numpy as np

COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

#: Skeleton links (0-based), as in the COCO ``skeleton`` field minus one.
COCO17_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)

#: Index of each keypoint's mirror image (horizontal flip).
COCO17_FLIP_INDICES: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

#: Per-keypoint OKS sigmas (COCO ``cocoeval.py``), float64 (17,).
COCO17_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
) / 10.0

#: BlazePose-33 index of each COCO-17 keypoint (DESIGN.md §2).
BLAZEPOSE33_TO_COCO17: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

#: BlazePose keypoints kept beside COCO-17 as ``extra_keypoints`` (heels and foot tips).
FOOT_EXTRA_NAMES: tuple[str, ...] = ("left_heel", "right_heel", "left_foot_index", "right_foot_index")
BLAZEPOSE33_TO_FOOT_EXTRA: tuple[int, ...] = (29, 30, 31, 32)


def coco17_dataset_meta() -> dict:
    """Return the COCO-17 dataset meta in the layout mmpose writes as ``meta_info``.

    Keys follow mmpose's ``dataset_meta`` (``dataset_name``, ``num_keypoints``,
    ``keypoint_id2name``, ``keypoint_name2id``, ``flip_indices``, ``skeleton_links``,
    ``sigmas``...) so that tools reading mmpose ``--save-predictions`` files read ours.
    """
    names = list(COCO17_NAMES)
    return {
        "dataset_name": "coco",
        "num_keypoints": len(names),
        "keypoint_id2name": {str(i): n for i, n in enumerate(names)},
        "keypoint_name2id": {n: i for i, n in enumerate(names)},
        "upper_body_ids": list(range(0, 11)),
        "lower_body_ids": list(range(11, 17)),
        "flip_indices": list(COCO17_FLIP_INDICES),
        "flip_pairs": [[i, j] for i, j in enumerate(COCO17_FLIP_INDICES) if i < j],
        "num_skeleton_links": len(COCO17_SKELETON),
        "skeleton_links": [list(link) for link in COCO17_SKELETON],
        "sigmas": COCO17_SIGMAS.tolist(),
    }


#: Human3.6M 17-joint order as VideoPose3D uses it (DESIGN.md §3); "left" is the person's left.
H36M17_NAMES: tuple[str, ...] = (
    "hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck_nose", "head", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)

#: Parent of each H36M-17 joint (-1 for the root), VideoPose3D's ``h36m_skeleton`` reduced to 17.
H36M17_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

#: Index of each H36M-17 joint's mirror image.
H36M17_FLIP_INDICES: tuple[int, ...] = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)

#: COCO-17 index of the H36M-17 joints that exist in COCO (-1: built from several, see
#: :func:`coco17_to_h36m17`).
COCO17_TO_H36M17: tuple[int, ...] = (-1, 12, 14, 16, 11, 13, 15, -1, -1, 0, -1, 5, 7, 9, 6, 8, 10)


def coco17_to_h36m17(keypoints: np.ndarray) -> np.ndarray:
    """Map COCO-17 points to H36M-17 (DESIGN.md §3): root = mid-hips, thorax = mid-shoulders,
    spine = mid(root, thorax), neck/nose = nose, head = mid-eyes; the limbs one to one.

    Args:
        keypoints: (..., 17, D) float array, COCO-17 order, any units.

    Returns:
        (..., 17, D) array of the same dtype, H36M-17 order.
    """
    keypoints = np.asarray(keypoints)
    out = keypoints[..., [max(i, 0) for i in COCO17_TO_H36M17], :].copy()
    out[..., 0, :] = (keypoints[..., 11, :] + keypoints[..., 12, :]) / 2
    out[..., 8, :] = (keypoints[..., 5, :] + keypoints[..., 6, :]) / 2
    out[..., 7, :] = (out[..., 0, :] + out[..., 8, :]) / 2
    out[..., 10, :] = (keypoints[..., 1, :] + keypoints[..., 2, :]) / 2
    return out


#: The 21 hand keypoints, in the order of MediaPipe's hand landmark model, which is also
#: COCO-WholeBody's and OpenPose's hand order (DESIGN.md §2): wrist, then 4 per finger from the
#: base (CMC/MCP) to the tip, thumb to pinky.
HAND21_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)

#: Hand skeleton links (0-based, :data:`HAND21_NAMES`): each finger a chain from the wrist.
HAND21_SKELETON: tuple[tuple[int, int], ...] = tuple(
    link for base in (1, 5, 9, 13, 17) for link in ((0, base), (base, base + 1), (base + 1, base + 2), (base + 2, base + 3))
)

#: BlazePose-33 indices of each hand's wrist, index and pinky points (left hand, right hand):
#: what MediaPipe Holistic builds a hand crop from (DESIGN.md §2).
BLAZEPOSE33_HAND_POINTS: tuple[tuple[int, int, int], tuple[int, int, int]] = ((15, 19, 17), (16, 20, 18))

#: Sides of :attr:`posestream.stream.results.FrameResult.hand_keypoints`' second axis.
HAND_SIDES: tuple[str, str] = ("left", "right")
