"""Aligning two videos of one motion, in space and in time.

Space: Follow-Your-Pose eats square frames: every frame (input and skeleton) is resized so that
its *shorter* side is ``size`` pixels and centre-cropped to ``size`` × ``size``
(FOLLOW_YOUR_POSE.md §2). :class:`ResizeCrop` is that transform, for images and for keypoints,
both ways, so that a skeleton of a 1280×720 input lands on the right pixels of a 512×512
generated clip and back; it is written beside each skeleton video as JSON.

Time: a generated clip of F frames was driven by skeleton frames 0, s, 2s, … (stride s, 5 in
the public sampling code): :func:`stride_frames`. Videos of different rates are matched by
presentation time: :func:`nearest_frames`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class ResizeCrop:
    """Resize (shorter side → ``size``) and centre-crop to ``size`` × ``size``.

    Attributes:
        width, height: source frame size, pixels.
        size: side of the square output, pixels (512 for Follow-Your-Pose).

    Raises:
        ValueError: a size that is not positive.
    """

    width: int
    height: int
    size: int

    def __post_init__(self):
        if min(self.width, self.height, self.size) <= 0:
            raise ValueError(f"ResizeCrop needs positive sizes, got {self.width}x{self.height} → {self.size}")

    @property
    def scale(self) -> float:
        """Output pixels per source pixel."""
        return self.size / min(self.width, self.height)

    @property
    def offset(self) -> np.ndarray:
        """(2,) float64: pixels cut from the left and top of the resized frame."""
        return np.array([(self.width * self.scale - self.size) / 2, (self.height * self.scale - self.size) / 2])

    def forward(self, points: np.ndarray) -> np.ndarray:
        """Source pixels → output pixels, (..., 2) float32 (points outside the crop fall outside [0, size))."""
        return (np.asarray(points, np.float64) * self.scale - self.offset).astype(np.float32)

    def inverse(self, points: np.ndarray) -> np.ndarray:
        """Output pixels → source pixels, (..., 2) float32."""
        return ((np.asarray(points, np.float64) + self.offset) / self.scale).astype(np.float32)

    def image(self, image: np.ndarray) -> np.ndarray:
        """Apply to an (H, W, C) uint8 image of the source size: (size, size, C) uint8
        (area interpolation when shrinking, bicubic when enlarging)."""
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"expected a {self.width}x{self.height} frame, got {image.shape[1]}x{image.shape[0]}")
        new_w, new_h = round(self.width * self.scale), round(self.height * self.scale)
        interpolation = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_CUBIC
        resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
        x0, y0 = (new_w - self.size) // 2, (new_h - self.size) // 2
        return np.ascontiguousarray(resized[y0:y0 + self.size, x0:x0 + self.size])

    def matrix(self, inverse: bool = False) -> np.ndarray:
        """The transform as a (2, 3) float64 affine matrix for ``cv2.warpAffine`` /
        ``cv2.transform``: source pixels → output pixels (``inverse``: output → source). The same
        map as :meth:`forward` / :meth:`inverse` (a scale and a shift, no rotation)."""
        s, (ox, oy) = self.scale, self.offset
        if inverse:
            return np.array([[1 / s, 0, ox / s], [0, 1 / s, oy / s]], np.float64)
        return np.array([[s, 0, -ox], [0, s, -oy]], np.float64)

    def to_json(self) -> dict:
        return {"transform": "resize_shorter_side_then_center_crop", **asdict(self)}

    @classmethod
    def from_json(cls, data: dict) -> "ResizeCrop":
        """Read :meth:`to_json`'s form.

        Raises:
            ValueError: not such a transform.
        """
        if data.get("transform") != "resize_shorter_side_then_center_crop":
            raise ValueError(f"not a resize-and-crop transform: {data!r}")
        return cls(int(data["width"]), int(data["height"]), int(data["size"]))

    def save(self, path: str | Path) -> Path:
        from posestream.engines.files import atomic_output

        path = Path(path)
        with atomic_output(path) as tmp:
            Path(tmp).write_text(json.dumps(self.to_json()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ResizeCrop":
        return cls.from_json(json.loads(Path(path).read_text()))


def stride_frames(count: int, stride: int, start: int = 0) -> np.ndarray:
    """Indices (0-based) of the skeleton frames that drove ``count`` generated frames sampled
    with ``stride`` from ``start``: start, start + stride, … (int64, (count,)).

    Raises:
        ValueError: count < 0 or stride < 1.
    """
    if count < 0 or stride < 1:
        raise ValueError(f"need count ≥ 0 and stride ≥ 1, got {count}, {stride}")
    return start + stride * np.arange(count, dtype=np.int64)


def longest_clip(frames: int, stride: int) -> int:
    """Most generated frames a skeleton video of ``frames`` frames can drive at ``stride``
    (frame 0, stride, … must all exist): ⌈frames / stride⌉."""
    return 0 if frames <= 0 else (frames - 1) // stride + 1


def nearest_frames(times: np.ndarray, reference_times: np.ndarray) -> np.ndarray:
    """For each time in ``times`` (seconds, (N,)), the index of the nearest time in the sorted
    ``reference_times`` ((M,), seconds) — matching videos of different frame rates. int64 (N,)."""
    reference_times = np.asarray(reference_times, np.float64)
    times = np.asarray(times, np.float64)
    right = np.clip(np.searchsorted(reference_times, times), 1, max(len(reference_times) - 1, 1))
    left = right - 1
    choose_right = np.abs(reference_times[np.minimum(right, len(reference_times) - 1)] - times) < np.abs(
        reference_times[left] - times)
    return np.where(choose_right, right, left).astype(np.int64)


def require_clip(count: int, stride: int, frames: int, what: str = "the skeleton video") -> np.ndarray:
    """:func:`stride_frames` of a ``count``-frame clip at ``stride``, checked against the
    ``frames`` that ``what`` holds (the check whose absence makes the public Follow-Your-Pose
    code fail with an IndexError, FOLLOW_YOUR_POSE.md §4).

    Returns:
        int64 (count,) frame indices 0, stride, 2·stride, ….

    Raises:
        ValueError: ``what`` is too short, naming the longest clip it can drive.
    """
    indices = stride_frames(count, stride)
    if count and indices[-1] >= frames:
        raise ValueError(f"{what} has {frames} frames: at stride {stride} it drives a clip of at most "
                         f"{longest_clip(frames, stride)} frames, not {count} (needs {indices[-1] + 1} frames)")
    return indices


def frame_period(times: np.ndarray) -> float:
    """Median interval between consecutive presentation times (seconds, (N,)), 0 for one frame."""
    times = np.asarray(times, np.float64)
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.0


def covering_frames(times: np.ndarray, reference_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_frames` of ``times`` in ``reference_times`` (seconds), and whether each time
    lies within the reference clip: from half a frame before its first frame to half a frame
    after its last (its median frame interval), so that a longer video is not drawn with the
    last frame of a shorter one repeated.

    Returns:
        ``(indices, inside)``: int64 (N,) and bool (N,).
    """
    times = np.asarray(times, np.float64)
    reference_times = np.asarray(reference_times, np.float64)
    half = frame_period(reference_times) / 2 + 1e-6
    inside = (times >= reference_times[0] - half) & (times <= reference_times[-1] + half)
    return nearest_frames(times, reference_times), inside
