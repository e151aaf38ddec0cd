"""The One-Euro filter (Casiez, Roussel, Vogel, CHI 2012), element-wise over keypoint arrays.

An adaptive low-pass filter: at low speed a low cutoff removes jitter, at high speed the cutoff
rises (by ``beta`` × speed) so fast motion is not lagged. Driven by real timestamps, so frames
that arrive late, are dropped, or come in bursts are filtered by the time that really passed.
"""

from __future__ import annotations

import math

import numpy as np


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Exponential smoothing factor ``α = 1 / (1 + τ / dt)`` with ``τ = 1 / (2π · cutoff)``.

    Args:
        cutoff: cutoff frequency, Hz (scalar or array). dt: seconds since the last sample (> 0).
    """
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over an array of any shape (e.g. one person's (17, 2) keypoints, pixels).

    Args:
        min_cutoff: cutoff at zero speed, Hz (default 1.0, as MMDeploy's PoseTracker).
        beta: cutoff increase per unit of speed (per pixel/second for pixel input; default 0.007).
        d_cutoff: cutoff of the speed estimate, Hz (default 1.0).
        max_gap: a gap longer than this many seconds restarts the filter from the new sample
            (a person lost and found again should not be dragged from where they were).

    The first sample passes through unchanged. Samples with a timestamp not after the last one
    (a repeated or out-of-order frame) return the last output and leave the state alone.
    Non-finite samples (NaN from a keypoint that was not found) keep the last output of those
    elements.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.007, d_cutoff: float = 1.0, max_gap: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("One-Euro cutoffs must be > 0 and beta ≥ 0")
        self.min_cutoff, self.beta, self.d_cutoff, self.max_gap = min_cutoff, beta, d_cutoff, max_gap
        self.reset()

    def reset(self) -> None:
        """Forget the past; the next sample passes through unchanged."""
        self._t: float | None = None
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter one sample.

        Args:
            x: array (float) of the same shape at every call. t: its timestamp, seconds.

        Returns:
            The filtered array, float64, same shape as ``x``.
        """
        x = np.asarray(x, np.float64)
        if self._x is None or self._x.shape != x.shape or t - self._t > self.max_gap:
            self._t, self._x, self._dx = t, np.where(np.isfinite(x), x, np.nan), np.zeros_like(x)
            return self._x.copy()
        dt = t - self._t
        if dt <= 0:
            return self._x.copy()
        finite = np.isfinite(x)
        update = finite & np.isfinite(self._x)  # elements with a past to filter against
        dx = np.where(update, (x - self._x) / dt, 0.0)
        dx_hat = self._dx + smoothing_factor(self.d_cutoff, dt) * (dx - self._dx)
        alpha = smoothing_factor(self.min_cutoff + self.beta * np.abs(dx_hat), dt)
        # filtered where possible; a first finite value is taken as is; a missing one keeps the last
        out = np.where(update, self._x + alpha * (x - self._x), np.where(finite, x, self._x))
        self._t, self._x, self._dx = t, out, dx_hat
        return out.copy()
