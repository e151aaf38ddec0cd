"""The One-Euro filter against values computed by hand from Casiez et al. (2012)."""

import math

import numpy as np
import pytest

from posestream.stream.track.smoothing import OneEuroFilter, smoothing_factor


def test_smoothing_factor_formula():
    # tau = 1 / (2 pi fc); alpha = 1 / (1 + tau / dt)
    assert smoothing_factor(1.0, 0.1) == pytest.approx(1 / (1 + 1 / (2 * math.pi) / 0.1))


def test_step_response_by_hand():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    assert f(np.array([0.0]), 0.0) == pytest.approx([0.0])  # first sample passes through
    alpha = 1 / (1 + (1 / (2 * math.pi)) / 0.1)  # 0.38586
    first = alpha * 10
    assert f(np.array([10.0]), 0.1) == pytest.approx([first])
    assert f(np.array([10.0]), 0.2) == pytest.approx([first + alpha * (10 - first)])


def test_speed_raises_the_cutoff():
    """With beta > 0 the derivative estimate raises the cutoff: dx_hat = a_d * 100, cutoff = 1 + beta * dx_hat."""
    f = OneEuroFilter(min_cutoff=1.0, beta=0.1, d_cutoff=1.0)
    f(np.array([0.0]), 0.0)
    a_d = 1 / (1 + (1 / (2 * math.pi)) / 0.1)
    cutoff = 1.0 + 0.1 * abs(a_d * (10.0 / 0.1))
    alpha = 1 / (1 + (1 / (2 * math.pi * cutoff)) / 0.1)
    assert f(np.array([10.0]), 0.1) == pytest.approx([alpha * 10])
    assert alpha * 10 > 5  # follows fast motion much more than the beta=0 filter (3.86)


def test_constant_signal_is_unchanged_and_timestamps_drive_it():
    f = OneEuroFilter()
    x = np.arange(34, dtype=np.float64).reshape(17, 2)
    for t in np.arange(0, 1, 0.033):
        assert f(x, t) == pytest.approx(x)
    slow, fast = OneEuroFilter(beta=0), OneEuroFilter(beta=0)
    slow(np.zeros(1), 0.0), fast(np.zeros(1), 0.0)
    # the same step after a longer real interval moves the output further
    assert fast(np.ones(1), 0.5)[0] > slow(np.ones(1), 0.05)[0]


def test_repeated_timestamp_gap_and_missing_values():
    f = OneEuroFilter(max_gap=1.0)
    f(np.array([0.0, 0.0]), 0.0)
    out = f(np.array([10.0, 10.0]), 0.1)
    assert f(np.array([99.0, 99.0]), 0.1) == pytest.approx(out)  # same time: no update, no division by zero
    assert f(np.array([50.0, 50.0]), 5.0) == pytest.approx([50.0, 50.0])  # long gap: restart
    held = f(np.array([np.nan, 60.0]), 5.1)
    assert held[0] == pytest.approx(50.0) and 50.0 < held[1] < 60.0  # a missing value keeps the last output
    f.reset()
    assert f(np.array([7.0, 8.0]), 9.0) == pytest.approx([7.0, 8.0])


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)
