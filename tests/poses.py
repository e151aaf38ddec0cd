"""Hand-built COCO-17 poses (pixels, y down) for tests: a template and simple edits of it."""

import numpy as np

#: A person facing the camera, standing, arms down; units of body height, origin at the hip
#: centre, y down. The person's left is the image right.
_STANDING = np.array([
    [0.00, -0.45],                  # 0 nose
    [0.02, -0.47], [-0.02, -0.47],  # 1 l_eye, 2 r_eye
    [0.05, -0.46], [-0.05, -0.46],  # 3 l_ear, 4 r_ear
    [0.10, -0.33], [-0.10, -0.33],  # 5 l_shoulder, 6 r_shoulder
    [0.12, -0.17], [-0.12, -0.17],  # 7 l_elbow, 8 r_elbow
    [0.13, -0.02], [-0.13, -0.02],  # 9 l_wrist, 10 r_wrist
    [0.06, 0.00], [-0.06, 0.00],    # 11 l_hip, 12 r_hip
    [0.06, 0.25], [-0.06, 0.25],    # 13 l_knee, 14 r_knee
    [0.06, 0.50], [-0.06, 0.50],    # 15 l_ankle, 16 r_ankle
])


def person(cx: float = 200, cy: float = 200, height: float = 300, arms_up: int = 0, sitting: bool = False) -> np.ndarray:
    """(17, 2) float32 keypoints of a person whose hip centre is at (cx, cy).

    arms_up: raise the right arm (1) or both (2) straight above the shoulders.
    sitting: thighs level (knees forward at hip height), shins vertical.
    """
    k = _STANDING.copy()
    if arms_up >= 1:
        k[8], k[10] = [-0.12, -0.50], [-0.12, -0.66]
    if arms_up >= 2:
        k[7], k[9] = [0.12, -0.50], [0.12, -0.66]
    if sitting:
        k[13], k[14] = [0.20, 0.01], [-0.20, 0.01]
        k[15], k[16] = [0.20, 0.26], [-0.20, 0.26]
    return (k * height + [cx, cy]).astype(np.float32)
