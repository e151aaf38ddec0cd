"""3D pose errors, in the units of the inputs (the lifter reports millimetres).

MPJPE: mean Euclidean distance per joint (Protocol #1 of Human3.6M papers). P-MPJPE: after the
similarity transform (rotation, uniform scale, translation) that best aligns each predicted pose to
its target (Procrustes; Protocol #2). N-MPJPE: after the least-squares uniform scale only
(Rhodin et al. 2018), as VideoPose3D reports it.
"""

from __future__ import annotations

import numpy as np


def mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean per-joint position error of (..., J, 3) arrays of the same shape."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    if predicted.shape != target.shape:
        raise ValueError(f"shapes differ: {predicted.shape} vs {target.shape}")
    return float(np.linalg.norm(predicted - target, axis=-1).mean())


def n_mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """MPJPE after scaling each (J, 3) prediction by the scalar that minimises its squared error."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    scale = (predicted * target).sum(axis=(-1, -2), keepdims=True) / (predicted ** 2).sum(axis=(-1, -2), keepdims=True)
    return mpjpe(scale * predicted, target)


def procrustes_align(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each (J, 3) pose of ``predicted`` (..., J, 3) moved by the similarity transform that best
    fits it to ``target`` in the least-squares sense (Umeyama 1991; reflections excluded)."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    mu_p, mu_t = predicted.mean(axis=-2, keepdims=True), target.mean(axis=-2, keepdims=True)
    p, t = predicted - mu_p, target - mu_t
    u, s, vt = np.linalg.svd(np.swapaxes(p, -1, -2) @ t)  # (..., 3, 3)
    sign = np.sign(np.linalg.det(u @ vt))
    s[..., -1] *= sign
    u[..., :, -1] *= sign[..., None]
    rotation = u @ vt
    scale = s.sum(axis=-1)[..., None, None] / (p ** 2).sum(axis=(-1, -2), keepdims=True)
    return scale * p @ rotation + mu_t


def p_mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """MPJPE after :func:`procrustes_align`."""
    return mpjpe(procrustes_align(predicted, target), target)
