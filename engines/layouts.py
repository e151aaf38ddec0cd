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

#: The trunk: left and right shoulder, left and right hip (COCO-17 indices), the keypoints a
#: person's limbs do not move.
COCO17_TRUNK: tuple[int, ...] = (5, 6, 11, 12)

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


def _wholebody_names() -> tuple[str, ...]:
    fingers = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")
    hand = lambda side: (f"{side}_hand_root",) + tuple(  # noqa: E731
        f"{side}_{finger}{j}" for finger in fingers for j in range(1, 5))
    feet = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
    return COCO17_NAMES + feet + tuple(f"face-{i}" for i in range(68)) + hand("left") + hand("right")


#: COCO-WholeBody's 133 keypoints (Jin et al., ECCV 2020; the names mmpose's ``coco_wholebody``
#: meta gives them): body 0–16 (COCO-17), feet 17–22, face 23–90 (the 68 iBUG points), left
#: hand 91–111 and right hand 112–132 (:data:`HAND21_NAMES` order each).
WHOLEBODY133_NAMES: tuple[str, ...] = _wholebody_names()
WHOLEBODY_FEET, WHOLEBODY_FACE, WHOLEBODY_LEFT_HAND, WHOLEBODY_RIGHT_HAND = 17, 23, 91, 112

#: Skeleton links: the 19 COCO links, each ankle to its foot's three points, and each hand's 20
#: links (:data:`HAND21_SKELETON`); the face has no links (as in mmpose's meta).
WHOLEBODY133_SKELETON: tuple[tuple[int, int], ...] = (
    COCO17_SKELETON
    + ((15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22))
    + tuple((a + WHOLEBODY_LEFT_HAND, b + WHOLEBODY_LEFT_HAND) for a, b in HAND21_SKELETON)
    + tuple((a + WHOLEBODY_RIGHT_HAND, b + WHOLEBODY_RIGHT_HAND) for a, b in HAND21_SKELETON)
)


def _face68_flip() -> list[int]:
    """Mirror of each iBUG-68 face point: jaw 0↔16, brows 17↔26, nose bridge 27–30 itself,
    nostrils 31↔35, eyes 36↔45 and 40↔47 (each eye's points run clockwise), mouth 48↔54,
    inner lips 60↔64 and 65↔67."""
    pairs = [(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)] + [(31, 35), (32, 34)]
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]
    flip = list(range(68))
    for a, b in pairs:
        flip[a], flip[b] = b, a
    return flip


#: Index of each WholeBody keypoint's mirror image.
WHOLEBODY133_FLIP_INDICES: tuple[int, ...] = tuple(
    list(COCO17_FLIP_INDICES) + [20, 21, 22, 17, 18, 19] + [WHOLEBODY_FACE + j for j in _face68_flip()]
    + list(range(WHOLEBODY_RIGHT_HAND, WHOLEBODY_RIGHT_HAND + 21)) + list(range(WHOLEBODY_LEFT_HAND, WHOLEBODY_LEFT_HAND + 21))
)

#: Per-keypoint OKS sigmas of COCO-WholeBody's evaluation (``myeval_wholebody.py`` of
#: jin-s13/COCO-WholeBody, as mmpose's ``coco_wholebody`` meta): body = COCO's, then feet,
#: face and hands (the same 21 for each hand). float64 (133,).
WHOLEBODY133_SIGMAS = np.array(
    list(COCO17_SIGMAS)
    + [0.068, 0.066, 0.066, 0.092, 0.094, 0.094]
    + [0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032, 0.037, 0.038, 0.043,
       0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013, 0.015, 0.009, 0.007, 0.007,
       0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011, 0.009, 0.007, 0.013, 0.008, 0.011,
       0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007,
       0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.010, 0.008]
    + [0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026, 0.017, 0.021,
       0.021, 0.032, 0.020, 0.019, 0.022, 0.031] * 2
)

#: WholeBody foot index filled from each BlazePose extra keypoint (:data:`FOOT_EXTRA_NAMES`):
#: heels to heels, foot tips (BlazePose's ``foot_index``, the front of the foot) to big toes.
#: The small toes have no BlazePose counterpart and stay absent (score 0).
FOOT_EXTRA_TO_WHOLEBODY: tuple[int, ...] = (19, 22, 17, 20)


def wholebody_dataset_meta() -> dict:
    """The COCO-WholeBody meta in the layout mmpose writes as ``meta_info`` (as
    :func:`coco17_dataset_meta`; ``dataset_name`` ``coco_wholebody``, 133 keypoints, ``body_ids``
    … ``right_hand_ids`` beside mmpose's upper/lower body split of the 23 body and foot points)."""
    names = list(WHOLEBODY133_NAMES)
    flips = WHOLEBODY133_FLIP_INDICES
    return {
        "dataset_name": "coco_wholebody",
        "num_keypoints": len(names),
        "keypoint_id2name": {str(i): n for i, n in enumerate(names)},
        "keypoint_name2id": {n: i for i, n in enumerate(names)},
        "upper_body_ids": list(range(0, 11)),
        "lower_body_ids": list(range(11, 23)),
        "body_ids": list(range(0, 17)), "foot_ids": list(range(17, 23)), "face_ids": list(range(23, 91)),
        "left_hand_ids": list(range(91, 112)), "right_hand_ids": list(range(112, 133)),
        "flip_indices": list(flips),
        "flip_pairs": [[i, j] for i, j in enumerate(flips) if i < j],
        "num_skeleton_links": len(WHOLEBODY133_SKELETON),
        "skeleton_links": [list(link) for link in WHOLEBODY133_SKELETON],
        "sigmas": WHOLEBODY133_SIGMAS.tolist(),
    }


def to_wholebody(keypoints: np.ndarray, scores: np.ndarray, extra: np.ndarray | None = None,
                 extra_scores: np.ndarray | None = None, hands: np.ndarray | None = None,
                 hand_scores: np.ndarray | None = None, wholebody: np.ndarray | None = None,
                 wholebody_scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Assemble COCO-WholeBody keypoints of N people from what the pipeline measures.

    Args:
        keypoints: (N, 17, 2) COCO-17 pixels; scores: (N, 17).
        extra: (N, 4, 2) BlazePose heels and foot tips (:data:`FOOT_EXTRA_NAMES`) or None;
            extra_scores: (N, 4) or None.
        hands: (N, 2, 21, 2) left and right hand pixels (NaN: none) or None; hand_scores: (N, 2, 21) or None.
        wholebody: (N, 133, 2) pixels of a whole-body model (RTMW, DWPose) or None, with
            ``wholebody_scores`` (N, 133): where given, the start (face and feet from it), its
            body replaced by ``keypoints`` (tracked and smoothed) and its hands by ``hands``.

    Returns:
        ``(points, scores)``: (N, 133, 2) float32 pixels and (N, 133) float32. Points the pipeline
        does not measure (the face; the small toes; feet without BlazePose; hands not found) are
        (0, 0) with score 0.
    """
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, 17, 2)
    n = len(keypoints)
    points = np.zeros((n, 133, 2), np.float32)
    out = np.zeros((n, 133), np.float32)
    if wholebody is not None and wholebody_scores is not None:
        points[:], out[:] = np.asarray(wholebody, np.float32).reshape(n, 133, 2), np.reshape(wholebody_scores, (n, 133))
    points[:, :17], out[:, :17] = keypoints, np.asarray(scores, np.float32).reshape(n, 17)
    if extra is not None and extra_scores is not None and np.shape(extra)[1:] == (4, 2):
        points[:, list(FOOT_EXTRA_TO_WHOLEBODY)] = extra
        out[:, list(FOOT_EXTRA_TO_WHOLEBODY)] = extra_scores
    if hands is not None and hand_scores is not None:
        hands = np.asarray(hands, np.float32).reshape(n, 2, 21, 2)
        hand_scores = np.asarray(hand_scores, np.float32).reshape(n, 2, 21)
        for s, start in enumerate((WHOLEBODY_LEFT_HAND, WHOLEBODY_RIGHT_HAND)):
            found = np.isfinite(hands[:, s]).all(axis=2)
            points[:, start:start + 21] = np.where(found[..., None], hands[:, s], 0.0)
            out[:, start:start + 21] = np.where(found, hand_scores[:, s], 0.0)
    return points, out
