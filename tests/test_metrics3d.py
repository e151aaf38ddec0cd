"""MPJPE, P-MPJPE and N-MPJPE against known transforms and hand-computed values."""

import numpy as np
from scipy.spatial.transform import Rotation

from posestream.offline.metrics3d import mpjpe, n_mpjpe, p_mpjpe, procrustes_align


def test_mpjpe_hand_computed():
    target = np.zeros((2, 3, 3))
    predicted = target.copy()
    predicted[0, 0] = [3, 4, 0]  # one joint 5 away, the other five exact
    assert mpjpe(predicted, target) == 5 / 6


def test_p_mpjpe_removes_a_similarity_transform_and_nothing_else():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(4, 17, 3))
    rotations = Rotation.random(4, random_state=1).as_matrix()
    moved = 0.7 * np.einsum("bij,bkj->bki", rotations, target) + rng.normal(size=(4, 1, 3))
    assert p_mpjpe(moved, target) < 1e-9
    np.testing.assert_allclose(procrustes_align(moved, target), target, atol=1e-9)
    # a mirror image is not a rotation: it must not be aligned away
    assert p_mpjpe(target * np.array([-1, 1, 1]), target) > 0.1


def test_n_mpjpe_removes_scale_only():
    rng = np.random.default_rng(2)
    target = rng.normal(size=(3, 17, 3))
    assert n_mpjpe(2.5 * target, target) < 1e-12
    shifted = target + np.array([0.1, 0, 0])
    assert n_mpjpe(shifted, target) > 0.05
