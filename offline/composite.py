"""Small people in a large frame: a clip scaled and pasted into a screen recording.

Footage people share is often a screen recording: a video player showing the camera's picture
beside other windows, each person 100–200 px tall in a 1920×1080 frame, and the whole
compressed again. :func:`screen_frame` makes one such frame from a clip's frame: the frame
scaled by ``scale`` (area interpolation to shrink, as a player shrinks video; linear to
enlarge, blurred as a player enlarges it) into a player window on the left of a desktop, a
terminal window of static text on the right, the whole JPEG-encoded once (the recorder's
loss). Nothing moves but the clip, so a labelled clip keeps its labels: the people keep their
left-to-right order, and frame ids and timestamps are unchanged (:func:`screen_frames`).
``tools/eval_classify.py --composite PX`` scores the rules on the labelled shared clips so made.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Iterator

import cv2
import numpy as np

from posestream.stream.capture.files import Frame

#: The recording's size in pixels (width, height).
SCREEN = (1920, 1080)
#: The player window's video area: left, top, width, height in pixels.
PLAYER = (40, 110, 1120, 840)
#: JPEG quality of the recording's one lossy encoding (a screen recorder's usual loss).
QUALITY = 85
#: Colours (BGR): desktop, window chrome, the player's letterbox, the terminal's text.
DESKTOP, CHROME, LETTERBOX, TEXT = (48, 40, 36), (62, 62, 62), (0, 0, 0), (200, 210, 200)


@lru_cache(maxsize=1)
def _desktop() -> np.ndarray:
    """The still part of the recording: desktop, player window, terminal of log lines."""
    screen = np.full((SCREEN[1], SCREEN[0], 3), DESKTOP, np.uint8)
    x, y, w, h = PLAYER
    cv2.rectangle(screen, (x - 8, y - 40), (x + w + 8, y + h + 60), CHROME, -1)  # title bar and controls
    screen[y:y + h, x:x + w] = LETTERBOX
    cv2.rectangle(screen, (x + 20, y + h + 25), (x + w - 20, y + h + 31), (150, 150, 150), -1)  # seek bar
    left = x + w + 60
    cv2.rectangle(screen, (left, 70), (SCREEN[0] - 40, SCREEN[1] - 70), (20, 20, 20), -1)
    for line in range(36):
        text = f"$ posestream run clip_{line:03d}.mp4 --out results/  # frame {line * 37:05d}  people {line % 4}"
        cv2.putText(screen, text[: 12 + (line * 7) % 60], (left + 16, 100 + 25 * line), cv2.FONT_HERSHEY_PLAIN, 1.1,
                    TEXT, 1, cv2.LINE_AA)
    return screen


def screen_frame(image: np.ndarray, scale: float, quality: int = QUALITY) -> np.ndarray:
    """One frame of the recording.

    Args:
        image: (H, W, 3) uint8 BGR, the clip's frame.
        scale: recording pixels per clip pixel, > 0 (< 1 shrinks); the scaled frame is centred
            in the player's video area (:data:`PLAYER`) and must fit in it.
        quality: JPEG quality of the recording's one lossy encoding, 1–100 (100: none).

    Returns:
        (1080, 1920, 3) uint8 BGR. A clip point (x, y) is at about
        ``(x * scale + left, y * scale + top)`` with ``left, top, w, h`` = :func:`placement`
        (exactly at ``x * w / W``, the scaled size being rounded to whole pixels).

    Raises:
        ValueError: ``image`` not (H, W, 3) uint8, ``scale`` not > 0, the scaled frame larger
            than the player, ``quality`` out of 1–100, or the JPEG encoding failing.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"composite: quality is 1-100, not {quality!r}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"composite: frames must be (H, W, 3) uint8 BGR, not {image.shape} {image.dtype}")
    left, top, w, h = placement(image.shape[1], image.shape[0], scale)
    screen = _desktop().copy()
    shrink = w <= image.shape[1]
    screen[top:top + h, left:left + w] = cv2.resize(image, (w, h),
                                                    interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if quality < 100:
        ok, data = cv2.imencode(".jpg", screen, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise ValueError("composite: the JPEG encoding failed")
        screen = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return screen


def placement(width: int, height: int, scale: float) -> tuple[int, int, int, int]:
    """Where a clip lands in the recording.

    Args:
        width, height: the clip's frame size, pixels. scale: recording pixels per clip pixel.

    Returns:
        (left, top, width, height) in recording pixels: the scaled size rounded to whole
        pixels (at least 1), centred in :data:`PLAYER`.

    Raises:
        ValueError: ``scale`` not > 0 (or not finite), or the scaled clip does not fit the player.
    """
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"composite: scale must be > 0, not {scale!r}")
    x, y, pw, ph = PLAYER
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    if w > pw or h > ph:
        raise ValueError(f"composite: a {width}x{height} clip at scale {scale:g} is {w}x{h}, larger than the "
                         f"player's {pw}x{ph}")
    return x + (pw - w) // 2, y + (ph - h) // 2, w, h


def screen_frames(frames: Iterable[Frame], scale: float, quality: int = QUALITY) -> Iterator[Frame]:
    """:func:`screen_frame` of each frame, with its frame id and timestamp kept (a bad
    ``scale`` or ``quality`` raises its ``ValueError`` at the first frame; check with
    :func:`placement` first to refuse before any work)."""
    for frame in frames:
        yield Frame(frame.frame_id, frame.pts, screen_frame(frame.image, scale, quality), frame.name)
