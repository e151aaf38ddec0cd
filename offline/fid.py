"""FID and KID between two sets of feature vectors (numpy + scipy; no torch).

* FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium", NeurIPS 2017): the Fréchet (2-Wasserstein) distance between Gaussians fitted to
  the two sets, ``‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½)``.
* KID (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018): the unbiased estimate of the squared
  maximum mean discrepancy with the polynomial kernel ``k(x, y) = (x·y / d + 1)³``, averaged over
  random subsets (mean ± standard deviation).

With fewer samples than dimensions (2048 for Inception pool3) the covariances are rank-deficient
and FID is biased upwards (it falls as N grows); KID is unbiased at any N, which is why both are
reported with N (FOLLOW_YOUR_POSE.md §6).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy import linalg

log = logging.getLogger(__name__)

#: Below this many samples per side FID is biased (the pool3 feature dimension).
FID_MIN_SAMPLES = 2048


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature set.

    Args:
        features: (N, d) floats, N ≥ 2.

    Returns:
        ``mu`` float64 (d,), ``sigma`` float64 (d, d): the unbiased (N − 1) sample covariance, as
        pytorch-fid and the TF reference compute it (``np.cov(rowvar=False)``).

    Raises:
        ValueError: not (N, d) with N ≥ 2, or non-finite values.
    """
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need (N ≥ 2, d) features, got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features hold NaN or infinity")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁ Σ₂)^½)`` with the matrix square root of
    ``scipy.linalg.sqrtm``. Two numerical guards, as pytorch-fid's ``calculate_frechet_distance``
    has them:

    * a singular product (sqrtm returns non-finite values, as with N < d samples) is retried with
      ``eps`` added to both diagonals (``(Σ₁ + εI)(Σ₂ + εI)``);
    * sqrtm of a real non-symmetric product may come back complex with tiny imaginary parts from
      round-off: the real part is kept; an imaginary diagonal part above 1e-3 raises.

    Cost: sqrtm of a 2048 × 2048 matrix takes about 20 s on 2 CPU cores (measured here).

    Args:
        mu1, mu2: (d,) means. sigma1, sigma2: (d, d) covariances.
        eps: the diagonal offset of the singular case.

    Returns:
        The distance (≥ 0 up to round-off), float.

    Raises:
        ValueError: shapes that differ, or a square root with a large imaginary component.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"mismatched statistics: {mu1.shape} {sigma1.shape} vs {mu2.shape} {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():  # a singular product is expected below d samples: handled here
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.all(np.isfinite(covmean)):
            log.warning("FID: singular covariance product; adding %g to the diagonals", eps)
            offset = np.eye(len(mu1)) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.max(np.abs(np.diagonal(covmean).imag))
        if imaginary > 1e-3:
            raise ValueError(f"FID: matrix square root has an imaginary component of {imaginary:.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets ((N₁, d), (N₂, d), N ≥ 2 each). Biased upwards when
    N < :data:`FID_MIN_SAMPLES` (2048).

    With at least d + 1 samples on both sides: :func:`feature_statistics` then
    :func:`frechet_distance` (``sqrtm``, as pytorch-fid). With fewer — the usual case for one
    generated clip — the covariances are rank-deficient and ``sqrtm`` of a 2048² product is both
    slow (≈ 20 s here) and ill-conditioned, so the trace term is computed exactly from the
    centred features X₁, X₂ instead: the non-zero eigenvalues of Σ₁Σ₂ are the squared singular
    values of X₁X₂ᵀ / √((N₁−1)(N₂−1)), hence Tr (Σ₁Σ₂)^½ = ‖X₁X₂ᵀ‖_* / √((N₁−1)(N₂−1)) (nuclear
    norm of an N₁ × N₂ matrix), and Tr Σᵢ = ‖Xᵢ‖²_F / (Nᵢ − 1). Same quantity, no ε offset.

    Raises:
        ValueError: fewer than 2 samples, or feature sizes that differ; see :func:`frechet_distance`.
    """
    x1, x2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise ValueError(f"feature sets must be (N, d) with one d, got {x1.shape} and {x2.shape}")
    (n1, d), n2 = x1.shape, len(x2)
    if n1 < 2 or n2 < 2:
        raise ValueError(f"FID needs at least 2 samples on each side, got {n1} and {n2}")
    if min(n1, n2) > d:
        return frechet_distance(*feature_statistics(x1), *feature_statistics(x2))
    mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
    c1, c2 = x1 - mu1, x2 - mu2
    cross = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    trace1, trace2 = (c1 ** 2).sum() / (n1 - 1), (c2 ** 2).sum() / (n2 - 1)
    return float(max(((mu1 - mu2) ** 2).sum() + trace1 + trace2 - 2 * cross, 0.0))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(x·y / d + 1)³`` for all pairs: (n, d), (m, d) → float64 (n, m) (Bińkowski et al. 2018)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD with :func:`polynomial_kernel` between (m, d) and (n, d), m, n ≥ 2:
    mean of k(xᵢ, xⱼ) over i ≠ j + mean of k(yᵢ, yⱼ) over i ≠ j − 2 · mean of k(xᵢ, yⱼ)
    (Gretton et al. 2012, eq. 3; may be slightly negative).

    Raises:
        ValueError: fewer than 2 samples on a side, or different dimensions.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise ValueError(f"need (≥2, d) samples of one dimension, got {x.shape} and {y.shape}")
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def kid(features1: np.ndarray, features2: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID: :func:`mmd2_unbiased` over ``subsets`` random subsets, mean and standard deviation.

    Each subset draws ``min(subset_size, N₁, N₂)`` samples without replacement from each side
    (the protocol of Bińkowski et al. 2018 and torch-fidelity: 100 subsets of 1000). When the
    subsets are both whole sets, every subset is the same, so one is computed and the std is 0.

    Args:
        features1, features2: (N₁, d), (N₂, d), N ≥ 2 each.
        subsets: number of subsets (≥ 1). subset_size: samples per side per subset (≥ 2).
        seed: of the subset draws (numpy ``default_rng``).

    Returns:
        (mean, std) of the subset estimates; std with ddof 0 (population std over subsets).

    Raises:
        ValueError: fewer than 2 samples, ``subsets`` < 1 or ``subset_size`` < 2.
    """
    features1, features2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"KID needs subsets ≥ 1 and subset size ≥ 2, got {subsets}, {subset_size}")
    size = min(subset_size, len(features1), len(features2))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per side, got {len(features1)} and {len(features2)}")
    if size == len(features1) == len(features2):
        return mmd2_unbiased(features1, features2), 0.0
    rng = np.random.default_rng(seed)
    values = np.array([
        mmd2_unbiased(features1[rng.choice(len(features1), size, replace=False)],
                      features2[rng.choice(len(features2), size, replace=False)])
        for _ in range(subsets)])
    return float(values.mean()), float(values.std())
