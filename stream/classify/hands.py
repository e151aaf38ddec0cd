"""Gesture features read from the hand itself and from its motion (issue 17).

* Hand shape, from the 21 hand keypoints (:data:`posestream.engines.layouts.HAND21_NAMES`,
  pixels, y down): a finger is **extended** when it is nearly straight (the angles at its two
  middle joints small) and its tip is farther from the wrist than its base knuckle; a hand is
  **open** with at least 3 of the 4 long fingers extended. The **palm faces the camera** when,
  for the person's right hand, the index knuckle lies clockwise-before the pinky knuckle as seen
  from the wrist (the 2D cross product of wrist → middle knuckle and pinky → index knuckle is
  positive with y down) and the opposite for the left hand: a palm shown to the camera mirrors
  the back of the hand. Which hand it is comes from the body pose (the wrist it was cropped
  from); the hand model's own handedness is reported beside it.
* Hand height: the hand's centre relative to its shoulder and to the eyes, in torso lengths.
* **Waving** (:class:`WaveDetector`): the wrist moving side to side, periodically, over a window
  of seconds (by timestamps): at least ``min_reversals`` reversals of its horizontal direction,
  each swing at least ``amplitude`` × the hand's size, at a rate of ``min_hz``–``max_hz``
  (reversals / 2 per second), the wrist above its elbow meanwhile.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

#: (base knuckle, middle joint, end joint, tip) of the long fingers, HAND21 indices.
LONG_FINGERS = ((5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))


def _bend(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Bend at ``b`` in degrees (0: a, b, c in a straight line); NaN for a zero-length segment."""
    u, v = b - a, c - b
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu == 0 or nv == 0:
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(np.dot(u, v) / (nu * nv), -1.0, 1.0))))


def fingers_extended(hand: np.ndarray, max_bend: float = 35.0) -> np.ndarray:
    """Which long fingers (index, middle, ring, pinky) are extended.

    Args:
        hand: (21, 2) float pixels, HAND21 order.
        max_bend: largest bend (degrees) at each of the finger's two middle joints.

    Returns:
        (4,) bool.
    """
    hand = np.asarray(hand, np.float64)
    wrist = hand[0]
    out = np.zeros(4, bool)
    for f, (base, mid, end, tip) in enumerate(LONG_FINGERS):
        bends = (_bend(hand[base], hand[mid], hand[end]), _bend(hand[mid], hand[end], hand[tip]))
        straight = all(b <= max_bend for b in bends)  # NaN compares false: not extended
        out[f] = straight and np.linalg.norm(hand[tip] - wrist) > np.linalg.norm(hand[base] - wrist)
    return out


def open_hand(hand: np.ndarray, min_fingers: int = 3) -> bool:
    """An open hand: at least ``min_fingers`` of the 4 long fingers extended (:func:`fingers_extended`)."""
    return int(fingers_extended(hand).sum()) >= min_fingers


def palm_facing_camera(hand: np.ndarray, right: bool) -> bool:
    """Whether the palm faces the camera (module text): the sign of cross(wrist → middle knuckle,
    pinky knuckle → index knuckle), y down, positive for a right palm, negative for a left one.

    Args:
        hand: (21, 2) float pixels. right: the person's right hand (else left).
    """
    hand = np.asarray(hand, np.float64)
    up, across = hand[9] - hand[0], hand[5] - hand[17]
    cross = up[0] * across[1] - up[1] * across[0]
    return bool(cross > 0) if right else bool(cross < 0)


def hand_size(hand: np.ndarray) -> float:
    """The hand's length, pixels: wrist to middle knuckle plus the middle finger's three bones."""
    hand = np.asarray(hand, np.float64)
    chain = hand[[0, 9, 10, 11, 12]]
    return float(np.linalg.norm(np.diff(chain, axis=0), axis=1).sum())


@dataclass(frozen=True)
class HandFeatures:
    """What one hand shows in one frame.

    Attributes:
        open: fingers extended (:func:`open_hand`). palm: palm towards the camera (:func:`palm_facing_camera`).
        above_shoulder: the hand's centre's height above its shoulder, torso lengths (negative: below).
        above_eyes: its height above the eyes (the highest confident eye or nose point), torso lengths, or NaN.
        size: :func:`hand_size`, pixels.
    """

    open: bool
    palm: bool
    above_shoulder: float
    above_eyes: float
    size: float


def hand_features(hand: np.ndarray, right: bool, shoulder: np.ndarray, eyes_y: float | None, torso: float) -> HandFeatures:
    """:class:`HandFeatures` of one (21, 2) pixel hand; ``shoulder`` (2,) pixels of its side,
    ``eyes_y`` the eyes' height in pixels (None: unseen), ``torso`` pixels (> 0)."""
    hand = np.asarray(hand, np.float64)
    centre_y = float(hand[:, 1].mean())
    return HandFeatures(open_hand(hand), palm_facing_camera(hand, right), (float(shoulder[1]) - centre_y) / torso,
                        float("nan") if eyes_y is None else (eyes_y - centre_y) / torso, hand_size(hand))


def count_reversals(xs: np.ndarray, step: float) -> int:
    """Reversals of direction of the sequence ``xs``, each after a swing of at least ``step``
    from the last turning point (a zig-zag filter: smaller back-and-forth jitter is ignored)."""
    direction, low, high, count = 0, float(xs[0]), float(xs[0]), 0
    for x in map(float, xs):
        if direction == 0:
            low, high = min(low, x), max(high, x)
            if x - low >= step:
                direction, high = 1, x
            elif high - x >= step:
                direction, low = -1, x
        elif direction > 0:
            if x > high:
                high = x
            elif high - x >= step:
                direction, low, count = -1, x, count + 1
        else:
            if x < low:
                low = x
            elif x - low >= step:
                direction, high, count = 1, x, count + 1
    return count


class WaveDetector:
    """Side-to-side waving of one wrist over time (module text).

    Args:
        window: seconds of history looked at.
        min_hz, max_hz: rate of the waving, back-and-forth cycles per second.
        amplitude: smallest swing between two reversals, in hand sizes.
        min_reversals: reversals of direction needed in the window.
    """

    def __init__(self, window: float = 1.5, min_hz: float = 1.0, max_hz: float = 4.0, amplitude: float = 0.5,
                 min_reversals: int = 3):
        self.window, self.min_hz, self.max_hz = window, min_hz, max_hz
        self.amplitude, self.min_reversals = amplitude, min_reversals
        self.samples: deque[tuple[float, float, float]] = deque()  # (pts, x relative to the elbow, hand size)

    def reset(self) -> None:
        """Forget the history (the arm came down or was lost)."""
        self.samples.clear()

    def __call__(self, pts: float, wrist_x: float, elbow_x: float, size: float) -> bool:
        """Add one frame (wrist and elbow x in pixels, the hand's size in pixels, > 0) at ``pts``
        seconds; return whether the wrist is waving now."""
        self.samples.append((float(pts), float(wrist_x - elbow_x), float(size)))
        while self.samples and self.samples[0][0] < pts - self.window - 1e-9:
            self.samples.popleft()
        if len(self.samples) < 4:
            return False
        times, xs, sizes = (np.array(a) for a in zip(*self.samples))
        reversals = count_reversals(xs, self.amplitude * float(np.median(sizes)))
        if reversals < self.min_reversals:
            return False
        span = max(times[-1] - times[0], 1e-6)
        rate = reversals / 2 / span
        return bool(self.min_hz <= rate <= self.max_hz)
