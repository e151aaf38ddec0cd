"""Drawing results on frames: boxes, COCO-17 skeletons, hands, track ids and labels; 3D poses beside them.

Stateless, one call shape (``annotate(image, result) -> image``) as in supervision's annotators.
"""

from __future__ import annotations

import cv2
import numpy as np

from posestream.engines.layouts import COCO17_SKELETON, HAND21_SKELETON

from posestream.stream.results import PIXEL_DECIMALS, SCORE_DECIMALS, FrameResult

# BGR colours: left limbs orange, right limbs blue, centre/face green (mmpose's convention)
_LEFT, _RIGHT, _CENTRE = (0, 128, 255), (255, 128, 0), (0, 200, 0)
_LEFT_IDS, _RIGHT_IDS = {1, 3, 5, 7, 9, 11, 13, 15}, {2, 4, 6, 8, 10, 12, 14, 16}


def _written(array: np.ndarray, decimals: int) -> np.ndarray:
    """``array`` as the JSON lines write it (:data:`~posestream.stream.results.PIXEL_DECIMALS`,
    ``SCORE_DECIMALS``): the drawing shows what the file says, not float noise below it (a
    keypoint score of 0.29996 in one run and 0.30004 in another is 0.3 in both files)."""
    return np.round(np.asarray(array, np.float64), decimals)


def _colour(a: int, b: int) -> tuple[int, int, int]:
    if a in _LEFT_IDS and b in _LEFT_IDS:
        return _LEFT
    if a in _RIGHT_IDS and b in _RIGHT_IDS:
        return _RIGHT
    return _CENTRE


def label_font(image_shape: tuple[int, ...]) -> tuple[float, int]:
    """OpenCV Hershey font scale and stroke width for labels on a frame of ``image_shape``
    (H, W, ...): text about 1/40 of the frame's shorter side high (18 px at 720 p), at least 10 px.

    Returns:
        ``(font_scale, thickness)`` for ``cv2.putText`` with ``FONT_HERSHEY_SIMPLEX`` (whose
        capital letters are about 22 px high at scale 1).
    """
    height = max(10.0, min(image_shape[:2]) / 40)
    scale = height / 22
    return scale, max(1, round(scale * 2))


def draw_label(canvas: np.ndarray, text: str, corner: tuple[int, int], colour=(0, 255, 0)) -> None:
    """Draw ``text`` above the pixel ``corner`` (a box's top-left, x, y), inside the frame, sized by
    :func:`label_font`, outlined in black so it reads on any background. Draws in place."""
    scale, thick = label_font(canvas.shape)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x = int(min(max(corner[0], 0), max(canvas.shape[1] - w, 0)))
    y = int(min(max(corner[1] - base - 2, h + 2), canvas.shape[0] - base))
    # the outline: the text in black shifted by `thick` px in the 8 directions (OpenCV's text
    # renderers differ in how they widen strokes; offsets work with every one)
    for dx, dy in ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)):
        cv2.putText(canvas, text, (x + dx * thick, y + dy * thick), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick,
                    cv2.LINE_AA)
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


#: BGR colour of each finger's links (thumb, index, middle, ring, pinky), OpenPose's hand palette.
FINGER_COLOURS: tuple[tuple[int, int, int], ...] = ((0, 0, 255), (0, 200, 255), (0, 200, 0), (255, 160, 0), (255, 0, 200))


def draw_hand(canvas: np.ndarray, points: np.ndarray, visible: np.ndarray, thickness: int = 1) -> None:
    """Draw one hand's skeleton (:data:`posestream.engines.layouts.HAND21_SKELETON`) in place.

    Args:
        canvas: (H, W, 3) uint8 BGR image, drawn on.
        points: (21, 2) float pixels (HAND21 order). visible: (21,) bool, the points to draw.
        thickness: line width, pixels.
    """
    for j, (a, b) in enumerate(HAND21_SKELETON):
        if visible[a] and visible[b]:
            cv2.line(canvas, tuple(points[a].round().astype(int)), tuple(points[b].round().astype(int)),
                     FINGER_COLOURS[j // 4], thickness, cv2.LINE_AA)
    for k in np.flatnonzero(visible):
        cv2.circle(canvas, tuple(points[k].round().astype(int)), thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)


class SkeletonAnnotator:
    """Draws boxes, skeletons, hands (where the result has ``ok`` hands) and labels.

    Args:
        keypoint_threshold: keypoints with a score below this are not drawn (nor their links).
        thickness: line thickness in pixels (scaled up for large frames).
    """

    def __init__(self, keypoint_threshold: float = 0.3, thickness: int = 2):
        self.keypoint_threshold = keypoint_threshold
        self.thickness = thickness

    def annotate(self, image: np.ndarray, result: FrameResult) -> np.ndarray:
        """Return a copy of the BGR uint8 ``image`` with ``result`` drawn on it, from the values
        as the JSON lines write them (pixels to 0.01, scores to 1e-4)."""
        canvas = image.copy()
        scale = max(1, round(max(image.shape[:2]) / 720))
        thick = self.thickness * scale
        for i in range(len(result)):
            x1, y1, x2, y2 = _written(result.bboxes[i], PIXEL_DECIMALS).round().astype(int)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), max(1, thick // 2))
            label = [f"{_written(result.bbox_scores[i], SCORE_DECIMALS):.2f}"]
            if result.track_ids is not None:
                label.insert(0, f"#{int(result.track_ids[i])}")
            for labels in (result.postures, result.gestures):
                if labels is not None and labels[i] not in (None, "none", "unknown"):
                    label.append(labels[i])
            draw_label(canvas, " ".join(label), (x1, y1))
            points = _written(result.keypoints[i], PIXEL_DECIMALS)
            visible = _written(result.keypoint_scores[i], SCORE_DECIMALS) >= self.keypoint_threshold
            for a, b in COCO17_SKELETON:
                if visible[a] and visible[b]:
                    cv2.line(canvas, tuple(points[a].round().astype(int)), tuple(points[b].round().astype(int)),
                             _colour(a, b), thick, cv2.LINE_AA)
            for k in np.flatnonzero(visible):
                cv2.circle(canvas, tuple(points[k].round().astype(int)), thick + 1, (0, 0, 255), -1, cv2.LINE_AA)
            if result.hand_keypoints is not None:
                for side in range(2):
                    if result.hand_status[i, side] == "ok":
                        draw_hand(canvas, _written(result.hand_keypoints[i, side], PIXEL_DECIMALS),
                                  _written(result.hand_keypoint_scores[i, side], SCORE_DECIMALS)
                                  >= self.keypoint_threshold, max(1, thick // 2))
        return canvas


class Pose3DAnnotator:
    """The annotated frame beside each person's 3D skeleton (as VideoPose3D's ``--viz-output``).

    ``keypoints_3d`` (H36M-17, camera axes x right, y down, z away) is drawn with matplotlib in a
    panel as tall as the frame, one 3D plot per person (the ``max_people`` largest boxes, by
    track id), Z up, ±``radius`` metres around the root. People without 3D are skipped.

    Args:
        radius: half the side of each plot's cube, metres. max_people: plots per frame.
        azimuth, elevation: matplotlib view angles, degrees.
    """

    def __init__(self, radius: float = 1.0, max_people: int = 3, azimuth: float = -70.0, elevation: float = 15.0):
        try:
            import matplotlib  # noqa: F401  (checked here, before any frame is processed)
        except ImportError as exc:
            raise ImportError("the 3D view needs matplotlib: pip install 'posestream[view]'") from exc
        self.skeleton = SkeletonAnnotator()
        self.radius, self.max_people, self.azimuth, self.elevation = radius, max_people, azimuth, elevation

    def annotate(self, image: np.ndarray, result: FrameResult) -> np.ndarray:
        """Return the BGR uint8 frame with the 2D drawing, widened by the 3D panel on its right."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from posestream.engines.layouts import H36M17_NAMES, H36M17_PARENTS

        left = self.skeleton.annotate(image, result)
        height = image.shape[0]
        rows = [] if result.keypoints_3d is None else [i for i in range(len(result))
                                                       if np.all(np.isfinite(result.keypoints_3d[i]))]
        rows = sorted(rows, key=lambda i: -float(np.prod(result.bboxes[i, 2:] - result.bboxes[i, :2])))[: self.max_people]
        rows = sorted(rows, key=lambda i: int(result.track_ids[i]) if result.track_ids is not None else i)
        panels = max(len(rows), 1)
        fig = Figure(figsize=(panels * height / 100, height / 100), dpi=100)
        for p in range(panels):
            ax = fig.add_subplot(1, panels, p + 1, projection="3d")
            ax.view_init(elev=self.elevation, azim=self.azimuth)
            r = self.radius
            ax.set_xlim3d(-r, r), ax.set_ylim3d(-r, r), ax.set_zlim3d(-r, r)
            ax.set_box_aspect((1, 1, 1))
            ax.set_xticklabels([]), ax.set_yticklabels([]), ax.set_zticklabels([])
            if p >= len(rows):
                ax.set_title("no 3D pose")
                continue
            i = rows[p]
            pose = result.keypoints_3d[i]
            x, y, z = pose[:, 0], pose[:, 2], -pose[:, 1]  # camera → plot: right, away, up
            for j, parent in enumerate(H36M17_PARENTS):
                if parent < 0:
                    continue
                colour = "tab:orange" if H36M17_NAMES[j].startswith("left") else (
                    "tab:blue" if H36M17_NAMES[j].startswith("right") else "tab:green")
                ax.plot([x[j], x[parent]], [y[j], y[parent]], [z[j], z[parent]], color=colour, linewidth=2)
            if result.track_ids is not None:
                ax.set_title(f"#{int(result.track_ids[i])}")
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        panel = np.asarray(canvas.buffer_rgba())[..., 2::-1]  # RGBA → BGR
        panel = cv2.resize(panel, (panel.shape[1] * height // panel.shape[0], height))
        return np.concatenate([left, panel], axis=1)
