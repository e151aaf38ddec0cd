"""The screen-recording composite (offline/composite.py): where a clip's pixels land, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.offline.composite import PLAYER, SCREEN, placement, screen_frame, screen_frames
from posestream.stream.capture.files import Frame


def _bright_square(width=320, height=240, x=200, y=60, side=20):
    image = np.zeros((height, width, 3), np.uint8)
    image[y:y + side, x:x + side] = 255
    return image


def test_a_clip_point_lands_at_scale_times_it_plus_the_centred_offset():
    image = _bright_square()
    screen = screen_frame(image, 0.5, quality=100)
    assert screen.shape == (SCREEN[1], SCREEN[0], 3)
    # centred in the player's 1120 × 840 area at (40, 110): 40 + 480, 110 + 360
    assert PLAYER == (40, 110, 1120, 840)
    left, top = 520, 470
    assert placement(320, 240, 0.5) == (left, top, 160, 120)
    ys, xs = np.nonzero(screen[..., 0] > 200)
    inside = (xs >= left) & (xs < left + 160) & (ys >= top) & (ys < top + 120)
    # the 20 px square at (200, 60) is a 10 px square at (100, 30) of the half-size clip
    assert (xs[inside].min(), xs[inside].max()) == (left + 100, left + 109)
    assert (ys[inside].min(), ys[inside].max()) == (top + 30, top + 39)


def test_the_recording_is_lossy_but_keeps_the_picture():
    image = _bright_square()
    clean, lossy = screen_frame(image, 0.5, quality=100), screen_frame(image, 0.5, quality=60)
    assert not np.array_equal(clean, lossy)
    assert np.abs(clean.astype(int) - lossy.astype(int)).mean() < 4


def test_frame_ids_and_timestamps_are_kept():
    frames = [Frame(i + 1, i / 30, _bright_square()) for i in range(3)]
    out = list(screen_frames(frames, 0.25))
    assert [(f.frame_id, f.pts) for f in out] == [(1, 0.0), (2, 1 / 30), (3, 2 / 30)]


def test_an_enlarged_clip_is_smoothed_not_blocky():
    """Enlarged 3×, a one-pixel checkerboard becomes a smooth grey field as a player's bilinear
    scaling makes it, not 3 × 3 blocks (nearest neighbour)."""
    board = np.indices((40, 40)).sum(axis=0) % 2 * 255
    image = np.repeat(board[..., None], 3, axis=2).astype(np.uint8)
    left, top, w, h = placement(40, 40, 3.0)
    inner = screen_frame(image, 3.0, quality=100)[top + 10:top + h - 10, left + 10:left + w - 10, 0].astype(int)
    assert inner.std() < 60  # blocks of 0 and 255 would give a standard deviation near 127


@pytest.mark.parametrize("scale, quality, message", [(0.0, 85, "scale"), (float("nan"), 85, "scale"),
                                                      (5.0, 85, "larger than the player"), (0.5, 0, "quality")])
def test_bad_settings_are_refused_in_one_line(scale, quality, message):
    with pytest.raises(ValueError, match=message):
        screen_frame(_bright_square(), scale, quality)


def test_a_frame_that_is_not_colour_is_refused():
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        screen_frame(np.zeros((240, 320), np.uint8), 0.5)
